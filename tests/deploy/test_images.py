"""`image build` and `image push`: builder command lines, the ECR login, digests, against moto server.

This machine has the docker CLI but no engine. Where a run must succeed, a stand-in builder (a small
script taking docker's arguments) records what it was given and, on `push`, stores a manifest in moto's
ECR the way a registry push would; the real docker CLI is used where it must fail.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from skycart_deploy import images
from skycart_deploy.cli import app

SHA = "0123abcd4567ef890123abcd4567ef890123abcd"
WIDE = {"COLUMNS": "250", "NO_COLOR": "1"}
STAND_IN_BUILDER = f"""#!{sys.executable}
import json, os, sys
stdin = sys.stdin.read() if sys.argv[1] == "login" else None
with open(os.environ["BUILDER_LOG"], "a") as log:
    log.write(json.dumps({{"argv": sys.argv[1:], "stdin": stdin}}) + "\\n")
if sys.argv[1] == "push":
    import boto3
    reference = sys.argv[2]
    name, tag = reference.split("/", 1)[1].rsplit(":", 1)
    manifest = {{
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {{"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1, "digest": "sha256:1"}},
        "layers": [{{"mediaType": "layer", "size": 1, "digest": "sha256:" + tag.ljust(64, "0")}}],
    }}
    ecr = boto3.client("ecr", endpoint_url=os.environ["REGISTRY_ENDPOINT"])
    ecr.put_image(repositoryName=name, imageManifest=json.dumps(manifest), imageTag=tag)
"""


def manifest(layer: str) -> str:
    """An image manifest with one layer, as a registry push would store it."""
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1, "digest": "sha256:1"},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 1, "digest": layer}],
        }
    )


@pytest.fixture
def ecr(fresh_moto: str) -> Any:
    return boto3.client("ecr", endpoint_url=fresh_moto)


@pytest.fixture
def repository(ecr: Any) -> dict[str, Any]:
    return ecr.create_repository(repositoryName="skycart/dev", imageTagMutability="IMMUTABLE")["repository"]


@pytest.fixture
def builder(tmp_path: Path, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The stand-in builder; what it was run with lands in `builder.log` next to it."""
    script = tmp_path / "builder"
    script.write_text(STAND_IN_BUILDER)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("BUILDER_LOG", str(tmp_path / "builder.log"))
    monkeypatch.setenv("REGISTRY_ENDPOINT", moto_endpoint)
    return script


def runs(builder: Path) -> list[dict[str, Any]]:
    log = builder.parent / "builder.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_build_command_tags_by_commit_and_labels_the_revision() -> None:
    command = images.build_command(
        builder="podman",
        image=f"repo.example/skycart/dev:{SHA}",
        context=Path("."),
        dockerfile=Path("Dockerfile"),
        revision=SHA,
    )

    assert command == [
        "podman", "build", "--tag", f"repo.example/skycart/dev:{SHA}", "--format", "docker", "--file", "Dockerfile",
        "--platform", "linux/amd64", "--label", f"org.opencontainers.image.revision={SHA}", ".",
    ]  # fmt: skip
    docker = images.build_command(builder="docker", image="skycart:1", context=Path("."))
    assert "--format" not in docker  # Docker builds its own format, HEALTHCHECK included


def test_login_command_takes_the_password_on_stdin_only() -> None:
    command = images.login_command(builder="buildah", registry="123456789012.dkr.ecr.eu-central-1.amazonaws.com")

    assert command == [
        "buildah",
        "login",
        "--username",
        "AWS",
        "--password-stdin",
        "123456789012.dkr.ecr.eu-central-1.amazonaws.com",
    ]


def test_push_command_pushes_the_tagged_image() -> None:
    assert images.push_command(builder="docker", image="r.example/skycart/dev:0123abc") == [
        "docker",
        "push",
        "r.example/skycart/dev:0123abc",
    ]


@pytest.mark.parametrize("tag", ["latest", "v1.2.3", "0123ab", "0123abcd4567ef890123abcd4567ef890123abcd0", "g123abcd"])
def test_a_tag_that_is_not_a_commit_sha_is_refused(tag: str) -> None:
    with pytest.raises(images.InvalidTag):
        images.check_tag(tag)


def test_allow_any_tag_still_refuses_what_no_registry_accepts() -> None:
    assert images.check_tag("release-2026.12", allow_any=True) == "release-2026.12"
    assert images.check_tag("0123abc") == "0123abc"
    with pytest.raises(images.InvalidTag):
        images.check_tag("has space", allow_any=True)


def test_ecr_token_decodes_to_user_password_and_registry(ecr: Any) -> None:
    login = images.registry_login(ecr)

    assert (login.username, login.password) == ("AWS", "123456789012-auth-token")
    assert login.registry == "123456789012.dkr.ecr.eu-central-1.amazonaws.com"
    assert login.password not in repr(login)


def test_digest_is_read_back_from_ecr_after_put_image(ecr: Any, repository: dict[str, Any]) -> None:
    stored = ecr.put_image(repositoryName="skycart/dev", imageManifest=manifest("sha256:" + "a" * 64), imageTag=SHA)
    found = images.resolve_repository(ecr, name_or_uri=repository["repositoryUri"])

    digest = images.image_digest(ecr, repository=found, tag=SHA)

    assert digest == stored["image"]["imageId"]["imageDigest"]
    assert digest.startswith("sha256:") and len(digest) == len("sha256:") + 64
    assert images.image_digest(ecr, repository=found, tag="feedbee") is None


def test_build_dry_run_prints_the_command_and_runs_nothing(builder: Path) -> None:
    result = CliRunner(env=WIDE).invoke(
        app,
        ["image", "build", "--repository", "r.example/skycart/dev", "--tag", SHA, "--builder", str(builder),
         "--file", "Dockerfile", "--dry-run"],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert f"would run: {builder} build --tag r.example/skycart/dev:{SHA} --file Dockerfile" in result.output
    assert runs(builder) == []


def test_build_refuses_a_tag_that_is_not_a_commit(builder: Path) -> None:
    result = CliRunner(env=WIDE).invoke(
        app, ["image", "build", "--repository", "r.example/skycart/dev", "--tag", "latest", "--builder", str(builder)]
    )

    assert result.exit_code == 2
    assert "not a commit SHA" in result.output
    assert runs(builder) == []


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI")
def test_build_with_docker_but_no_engine_fails_with_a_message_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")

    result = CliRunner(env=WIDE).invoke(
        app, ["image", "build", "--repository", "r.example/skycart/dev", "--tag", SHA, "--context", str(tmp_path)]
    )

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "image build failed" in result.output and "exited with 1" in result.output
    assert "Traceback" not in result.output + capfd.readouterr().err


def test_a_builder_that_is_not_installed_is_named_in_the_error() -> None:
    result = CliRunner(env=WIDE).invoke(
        app, ["image", "build", "--repository", "r.example/skycart/dev", "--tag", SHA, "--builder", "no-such-builder"]
    )

    assert result.exit_code == 1
    assert "no-such-builder is not installed or not on PATH" in result.output


def test_push_logs_in_on_stdin_pushes_and_prints_the_digest(
    builder: Path, ecr: Any, repository: dict[str, Any], moto_endpoint: str
) -> None:
    uri = repository["repositoryUri"]

    result = CliRunner(env=WIDE).invoke(
        app,
        ["image", "push", "--repository", "skycart/dev", "--tag", SHA, "--builder", str(builder),
         "--endpoint-url", moto_endpoint],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    login, push = runs(builder)
    assert login == {
        "argv": ["login", "--username", "AWS", "--password-stdin", uri.split("/")[0]],
        "stdin": "123456789012-auth-token",
    }
    assert push["argv"] == ["push", f"{uri}:{SHA}"]
    (stored,) = ecr.describe_images(repositoryName="skycart/dev")["imageDetails"]
    assert result.output.splitlines()[-1] == f"{uri}@{stored['imageDigest']}"
    assert "auth-token" not in result.output


def test_push_of_a_tag_already_in_ecr_runs_nothing_and_prints_its_digest(
    builder: Path, ecr: Any, repository: dict[str, Any], moto_endpoint: str
) -> None:
    layer = "sha256:" + hashlib.sha256(b"layer").hexdigest()
    stored = ecr.put_image(repositoryName="skycart/dev", imageManifest=manifest(layer), imageTag=SHA)

    result = CliRunner(env=WIDE).invoke(
        app,
        ["image", "push", "--repository", repository["repositoryUri"], "--tag", SHA, "--builder", str(builder),
         "--endpoint-url", moto_endpoint],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "already in ECR" in result.output
    assert (
        result.output.splitlines()[-1] == f"{repository['repositoryUri']}@{stored['image']['imageId']['imageDigest']}"
    )
    assert runs(builder) == []


def test_push_dry_run_prints_login_and_push_and_runs_nothing(
    builder: Path, ecr: Any, repository: dict[str, Any], moto_endpoint: str
) -> None:
    result = CliRunner(env=WIDE).invoke(
        app,
        ["image", "push", "--repository", "skycart/dev", "--tag", SHA, "--builder", str(builder), "--dry-run",
         "--endpoint-url", moto_endpoint],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "--password-stdin" in result.output and f"push {repository['repositoryUri']}:{SHA}" in result.output
    assert "auth-token" not in result.output
    assert runs(builder) == []
    assert ecr.describe_images(repositoryName="skycart/dev")["imageDetails"] == []


def test_push_to_a_missing_repository_exits_non_zero(builder: Path, moto_endpoint: str) -> None:
    result = CliRunner(env=WIDE).invoke(
        app,
        ["image", "push", "--repository", "skycart/nope", "--tag", SHA, "--builder", str(builder),
         "--endpoint-url", moto_endpoint],
    )  # fmt: skip

    assert result.exit_code == 1
    assert "no ECR repository 'skycart/nope'" in result.output
    assert runs(builder) == []


def test_a_failed_login_stops_before_the_push(tmp_path: Path, repository: dict[str, Any], moto_endpoint: str) -> None:
    calls = tmp_path / "calls"
    failing = tmp_path / "failing-builder"
    failing.write_text(
        f"#!{sys.executable}\nimport sys\nopen({str(calls)!r}, 'a').write(sys.argv[1] + '\\n')\n"
        "print('denied', file=sys.stderr)\nsys.exit(3)\n"
    )
    failing.chmod(failing.stat().st_mode | stat.S_IXUSR)

    result = CliRunner(env=WIDE).invoke(
        app,
        ["image", "push", "--repository", "skycart/dev", "--tag", SHA, "--builder", str(failing),
         "--endpoint-url", moto_endpoint],
    )  # fmt: skip

    assert result.exit_code == 1
    assert "login" in result.output and "exited with 3: denied" in result.output
    assert "auth-token" not in result.output
    assert calls.read_text().split() == ["login"]
