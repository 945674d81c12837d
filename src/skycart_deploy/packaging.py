"""Packaging a release for the root stack: the Lambda zips and the nested templates, in the artifact bucket.

Every key is content-addressed: the nested templates go to `templates/<sha256>/` (one hash over all of
them) and each zip to `lambdas/<name>-<sha256>.zip`. An unchanged template or zip keeps its key, so
CloudFormation leaves its nested stack or function alone; a changed one is a new key, which is a
property change. Zips are reproducible (fixed timestamps, modes and file order), so the same sources
give the same bytes, and a key that already exists is not uploaded again.

A zip holds the `skycart_deploy` modules its handler imports (followed through the source, never by
importing it) and the distributions it bundles, copied from the installed ones. The Lambda runtime
provides the standard library and boto3; any other import that runs when the handler is imported
fails the build, so the CLI's own dependencies (typer, rich, PyYAML) can never slip into a function.
An import inside a function runs only when it is called: that is how a shared module keeps a
dependency out of the Lambdas (`openapi.app_document` imports the app that way).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import importlib.util
import io
import re
import sys
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from skycart_deploy.cfn import load_template

PACKAGE = "skycart_deploy"
# What the python3.12 Lambda runtime has besides the standard library (boto3 and what it depends on).
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3"})
# The earliest time a zip entry can carry; the same for every entry of every build.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
TEMPLATE_URL = re.compile(r"\$\{TemplateBaseUrl\}/([^/${}]+)")
AWS_HOST = re.compile(r"(^|\.)amazonaws\.com(\.cn)?$")


class PackagingError(RuntimeError):
    """The release cannot be packaged: a handler imports what its zip lacks, or a template is missing."""


@dataclass(frozen=True)
class LambdaFunction:
    """One of the stack's functions: its zip's name, its handler module, the root parameter naming its key."""

    name: str
    module: str
    parameter: str
    # Installed distributions copied into the zip (pure Python: the zip is built on any platform).
    bundled: tuple[str, ...] = ()


LAMBDAS = (
    LambdaFunction("api-deployer", f"{PACKAGE}.lambdas.api_deployer", "ApiDeployerCodeKey"),
    LambdaFunction(
        "db-secret-rotation", f"{PACKAGE}.lambdas.db_secret_rotation", "SecretRotationCodeKey", bundled=("PyMySQL",)
    ),
)

# The root stack parameters a release sets.
PARAMETERS = ("TemplateBaseUrl", "ArtifactBucket", *(function.parameter for function in LAMBDAS))


@dataclass(frozen=True)
class Artifact:
    """One object to put in the artifact bucket."""

    key: str
    body: bytes = field(repr=False)
    content_type: str


@dataclass(frozen=True)
class Release:
    """Everything one release uploads, and the root stack parameters that point at it."""

    bucket: str
    template_base_url: str
    artifacts: tuple[Artifact, ...]
    code_keys: Mapping[str, str]

    @property
    def parameters(self) -> dict[str, str]:
        """TemplateBaseUrl, ArtifactBucket and one code key per function, as the root template names them."""
        return {"TemplateBaseUrl": self.template_base_url, "ArtifactBucket": self.bucket, **self.code_keys}


@dataclass
class Uploaded:
    """What `upload` did: the keys it put (would put, in a dry run) and those that were there already."""

    put: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    dry_run: bool = False


def sha256(data: bytes) -> str:
    """Hex SHA-256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def nested_templates(*, root_template: Path) -> dict[str, bytes]:
    """The templates the root's nested stacks load from `${TemplateBaseUrl}/<file>`, read from the root's folder."""
    template = load_template(root_template)
    found: dict[str, bytes] = {}
    for logical_id, resource in (template.get("Resources") or {}).items():
        if resource.get("Type") != "AWS::CloudFormation::Stack":
            continue
        url = (resource.get("Properties") or {}).get("TemplateURL")
        if isinstance(url, dict) and "Fn::Sub" in url:
            url = url["Fn::Sub"][0] if isinstance(url["Fn::Sub"], list) else url["Fn::Sub"]
        match = TEMPLATE_URL.fullmatch(url) if isinstance(url, str) else None
        if match is None:
            continue
        path = root_template.parent / match[1]
        if not path.is_file():
            raise PackagingError(f"{logical_id} loads {match[1]}, which is not in {root_template.parent}")
        found[match[1]] = path.read_bytes()
    return found


def templates_digest(templates: Mapping[str, bytes]) -> str:
    """One SHA-256 over all templates: the hash of their `sha256sum` listing, in name order."""
    listing = "".join(f"{sha256(templates[name])}  {name}\n" for name in sorted(templates))
    return sha256(listing.encode())


def lambda_zip(function: LambdaFunction) -> bytes:
    """The function's zip: the package modules its handler reaches and its bundled distributions, reproducibly."""
    modules, imported = module_closure(function.module)
    allowed = RUNTIME_PROVIDED.union(*(top_level_modules(name) for name in function.bundled))
    missing = sorted(imported - allowed)
    if missing:
        raise PackagingError(
            f"{function.module} imports {', '.join(missing)}: not in the Lambda runtime, not bundled in the zip"
        )
    entries = {name: path.read_bytes() for name, path in modules.items()}
    for distribution in function.bundled:
        entries.update(distribution_files(distribution))
    return reproducible_zip(entries)


def module_closure(module: str) -> tuple[dict[str, Path], set[str]]:
    """The package's modules that importing `module` loads (zip name -> file), and the other names it imports."""
    root = _package_root()
    modules: dict[str, Path] = {}
    imported: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        path = _module_path(root, name)
        if path is None:
            raise PackagingError(f"no module {name} in {root}")
        arcname = path.relative_to(root.parent).as_posix()
        if arcname in modules:
            continue
        modules[arcname] = path
        parts = name.split(".")
        todo += [".".join(parts[:end]) for end in range(1, len(parts))]
        for target in _imports(path.read_text(encoding="utf-8"), name, is_package=path.name == "__init__.py"):
            top = target.partition(".")[0]
            if top == PACKAGE:
                todo += [target] if _module_path(root, target) else []
            elif top not in sys.stdlib_module_names:
                imported.add(top)
    return modules, imported


def top_level_modules(distribution: str) -> set[str]:
    """The importable top-level names an installed distribution provides."""
    names = set()
    for file in _files(distribution):
        first = file.parts[0]
        if first == ".." or first.endswith((".dist-info", ".data")) or first == "__pycache__":
            continue
        if len(file.parts) > 1 or first.endswith(".py"):
            names.add(first.removesuffix(".py"))
    return names


def distribution_files(distribution: str) -> dict[str, bytes]:
    """An installed distribution's modules, its METADATA and licences (zip name -> bytes), without bytecode."""
    entries: dict[str, bytes] = {}
    for file in _files(distribution):
        first = file.parts[0]
        if first == ".." or "__pycache__" in file.parts or file.suffix == ".pyc":
            continue
        if first.endswith(".dist-info"):
            # INSTALLER, RECORD and direct_url.json differ between installs; METADATA and licences do not.
            if file.name != "METADATA" and "licenses" not in file.parts and not file.name.startswith("LICENSE"):
                continue
        elif first.endswith(".data"):
            continue
        entries[file.as_posix()] = Path(file.locate()).read_bytes()
    return entries


def reproducible_zip(entries: Mapping[str, bytes]) -> bytes:
    """A zip of `entries` whose bytes depend on names and contents only: sorted, fixed time and mode."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            archive.writestr(info, entries[name], compresslevel=9)
    return buffer.getvalue()


def bucket_url(s3: Any, *, bucket: str) -> str:
    """The bucket's https URL in its own region; under the client's endpoint when that is not AWS (moto, LocalStack)."""
    endpoint = s3.meta.endpoint_url.rstrip("/")
    if not AWS_HOST.search(urlsplit(endpoint).hostname or ""):
        return f"{endpoint}/{bucket}"
    return aws_bucket_url(bucket=bucket, region=bucket_region(s3, bucket=bucket))


def aws_bucket_url(*, bucket: str, region: str) -> str:
    """The virtual-hosted https URL of a bucket in `region`, as CloudFormation's TemplateURL takes it."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://{bucket}.s3.{region}.{suffix}"


def bucket_region(s3: Any, *, bucket: str) -> str:
    """The bucket's region from HeadBucket: it needs s3:ListBucket, which the pipeline role has."""
    try:
        response = s3.head_bucket(Bucket=bucket)
    except ClientError as error:
        # A bucket in another region answers 301 and still names its region.
        response = error.response
        if "x-amz-bucket-region" not in response.get("ResponseMetadata", {}).get("HTTPHeaders", {}):
            raise
    return response["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"]


def build_release(
    *, root_template: Path, bucket: str, bucket_base_url: str, functions: Iterable[LambdaFunction] = LAMBDAS
) -> Release:
    """Build every zip and collect the nested templates; no AWS call."""
    templates = nested_templates(root_template=root_template)
    folder = f"templates/{templates_digest(templates)}"
    artifacts = [
        Artifact(f"{folder}/{name}", body, "application/json" if name.endswith(".json") else "text/yaml")
        for name, body in sorted(templates.items())
    ]
    code_keys = {}
    for function in functions:
        body = lambda_zip(function)
        key = f"lambdas/{function.name}-{sha256(body)}.zip"
        artifacts.append(Artifact(key, body, "application/zip"))
        code_keys[function.parameter] = key
    return Release(
        bucket=bucket,
        template_base_url=f"{bucket_base_url}/{folder}",
        artifacts=tuple(artifacts),
        code_keys=code_keys,
    )


def upload(
    s3: Any,
    *,
    release: Release,
    dry_run: bool = False,
    on_artifact: Callable[[Artifact, bool], None] | None = None,
) -> Uploaded:
    """Put every artifact whose key is not in the bucket yet; `on_artifact(artifact, put)` after each one."""
    done = Uploaded(dry_run=dry_run)
    for artifact in release.artifacts:
        exists = object_exists(s3, bucket=release.bucket, key=artifact.key)
        if not exists and not dry_run:
            s3.put_object(
                Bucket=release.bucket, Key=artifact.key, Body=artifact.body, ContentType=artifact.content_type
            )
        (done.present if exists else done.put).append(artifact.key)
        if on_artifact is not None:
            on_artifact(artifact, not exists)
    return done


def package_release(
    s3: Any,
    *,
    root_template: Path,
    bucket: str,
    dry_run: bool = False,
    on_artifact: Callable[[Artifact, bool], None] | None = None,
) -> tuple[Release, Uploaded]:
    """Build the release and upload what the bucket lacks (nothing when `dry_run`)."""
    release = build_release(root_template=root_template, bucket=bucket, bucket_base_url=bucket_url(s3, bucket=bucket))
    return release, upload(s3, release=release, dry_run=dry_run, on_artifact=on_artifact)


def object_exists(s3: Any, *, bucket: str, key: str) -> bool:
    """Whether the bucket holds `key`."""
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def _package_root() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise PackagingError(f"{PACKAGE} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _module_path(root: Path, name: str) -> Path | None:
    parts = name.split(".")[1:]
    package = root.joinpath(*parts, "__init__.py")
    if package.is_file():
        return package
    module = root.joinpath(*parts[:-1], f"{parts[-1]}.py") if parts else None
    return module if module is not None and module.is_file() else None


def _imports(source: str, module: str, *, is_package: bool) -> set[str]:
    """Every module name an import statement in `source` may load (a `from` import's names may be submodules)."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names if alias.name != "*"}
    return found


def _runtime_nodes(tree: ast.AST) -> Iterable[ast.AST]:
    """The nodes that run when the module is imported: not function bodies, not `if TYPE_CHECKING:` blocks."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            todo += node.orelse
            continue
        todo += ast.iter_child_nodes(node)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _files(distribution: str) -> list[importlib.metadata.PackagePath]:
    try:
        files = importlib.metadata.distribution(distribution).files
    except importlib.metadata.PackageNotFoundError as missing:
        raise PackagingError(f"{distribution} is not installed here, so it cannot be bundled") from missing
    if files is None:
        raise PackagingError(f"{distribution} lists no files (no RECORD), so it cannot be bundled")
    return list(files)
