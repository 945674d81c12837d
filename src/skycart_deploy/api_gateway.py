"""Deploy the app's OpenAPI document to the environment's API Gateway REST API, only when it changed.

One function, `deploy_api`, shared by the deployer Lambda and `skycart-deploy api deploy`: convert the
document to OpenAPI 3.0 (`skycart_deploy.openapi`), inject the gateway parameters (the integration
through the VPC link to the ALB, API key security, request validation), hash the canonical result with
the stage variables, and compare with the hash of what the stage serves. Only a different hash is
archived to S3, imported (`PutRestApi`, mode overwrite) and deployed.

The hash lives in the description of the deployment the stage points at (`sha256:<hex> ...`), as
infra/README.md says: it is written by the same call that creates the deployment, so the record can
never disagree with what the stage serves, and it needs no write right beyond the API itself.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, TypeVar, cast

from botocore.exceptions import ClientError

from skycart_deploy.openapi import METHODS, to_openapi30

T = TypeVar("T")

MAX_IMPORT_BYTES = 6 * 1024 * 1024  # API Gateway's limit for an imported OpenAPI document
STAGE_VPC_LINK = "${stageVariables.vpcLinkV2Id}"  # api.yaml sets this stage variable to the VPC link
API_KEY_SCHEME = "api_key"
DEFAULT_VALIDATOR = "params"
PROCESSED_PREFIX = "processed/"
THROTTLED = "TooManyRequestsException"
_HASH_IN_DESCRIPTION = re.compile(r"\bsha256:([0-9a-f]{64})\b")
_PATH_PARAMETER = re.compile(r"{([^{}+]+)\+?}")
# Media types API Gateway must pass through as bytes; JSON, text and forms stay text.
_TEXT_MEDIA = re.compile(r"^(text/.*|application/(.+\+)?json|application/x-www-form-urlencoded)$")


@dataclass(frozen=True)
class DeployResult:
    """What one run did: `deployment_id` is the deployment serving this document (None in a dry run)."""

    deployed: bool
    sha256: str
    deployment_id: str | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON-ready fields."""
        return asdict(self)


class SpecTooLarge(ValueError):
    """The processed document exceeds what API Gateway imports."""


@dataclass(frozen=True)
class Backend:
    """Where the gateway sends requests: the ALB behind the VPC link, by its HTTPS host name."""

    base_url: str
    vpc_link_id: str = STAGE_VPC_LINK
    integration_target_arn: str | None = None


def gateway_document(document: Mapping[str, Any], *, backend: Backend) -> dict[str, Any]:
    """The app's document as OpenAPI 3.0 with every API Gateway extension injected."""
    doc = to_openapi30(document)
    components = doc.setdefault("components", {})
    header_schemes = _api_key_schemes(components.get("securitySchemes") or {})
    components["securitySchemes"] = {
        API_KEY_SCHEME: {"type": "apiKey", "name": "x-api-key", "in": "header"},
    }
    root_security = doc.pop("security", None)  # API Gateway applies security per operation only
    base_url = backend.base_url.rstrip("/")
    for path, item in (doc.get("paths") or {}).items():
        shared = item.get("parameters") or []
        for method in METHODS:
            if isinstance(item.get(method), dict):
                operation = item[method]
                requirements = operation.get("security", root_security)
                operation.pop("security", None)
                if requirements:
                    operation["security"] = _gateway_security(requirements, header_schemes, f"{path} {method}")
                operation["x-amazon-apigateway-integration"] = _integration(
                    path, method, [*shared, *(operation.get("parameters") or [])], base_url, backend
                )
    doc["x-amazon-apigateway-api-key-source"] = "HEADER"
    doc["x-amazon-apigateway-request-validators"] = {
        # Bodies are the app's to validate: API Gateway's draft-4 models ignore `nullable` and would reject nulls.
        DEFAULT_VALIDATOR: {"validateRequestParameters": True, "validateRequestBody": False},
        "all": {"validateRequestParameters": True, "validateRequestBody": True},
    }
    doc["x-amazon-apigateway-request-validator"] = DEFAULT_VALIDATOR
    binary = sorted(_binary_media_types(doc))
    if binary:
        doc["x-amazon-apigateway-binary-media-types"] = binary
    return doc


def _api_key_schemes(schemes: Mapping[str, Any]) -> set[str]:
    names = set()
    for name, scheme in schemes.items():
        if scheme.get("type") != "apiKey" or scheme.get("in") != "header":
            raise ValueError(f"security scheme {name!r}: API Gateway checks only an API key in the x-api-key header")
        names.add(name)
    return names


def _gateway_security(
    requirements: list[dict[str, Any]], header_schemes: set[str], where: str
) -> list[dict[str, list[str]]]:
    gateway: list[dict[str, list[str]]] = []
    for requirement in requirements:
        unknown = set(requirement) - header_schemes
        if unknown:
            raise ValueError(f"{where}: security {sorted(unknown)} names no header API key scheme")
        gateway.append({API_KEY_SCHEME: []} if requirement else {})
    return gateway


def _integration(
    path: str, method: str, parameters: list[dict[str, Any]], base_url: str, backend: Backend
) -> dict[str, Any]:
    declared = {parameter.get("name") for parameter in parameters if parameter.get("in") == "path"}
    names = _PATH_PARAMETER.findall(path)
    missing = sorted(set(names) - declared)
    if missing:
        raise ValueError(f"{path} {method}: path parameters {missing} are not declared")
    integration: dict[str, Any] = {
        "type": "http_proxy",
        "httpMethod": method.upper(),
        "uri": base_url + path,
        "connectionType": "VPC_LINK",
        "connectionId": backend.vpc_link_id,
        "passthroughBehavior": "when_no_match",
        "requestParameters": {f"integration.request.path.{name}": f"method.request.path.{name}" for name in names},
    }
    if backend.integration_target_arn:
        integration["integrationTarget"] = backend.integration_target_arn  # the ALB, for a VPC link v2
    return integration


def _binary_media_types(doc: Mapping[str, Any]) -> set[str]:
    found: set[str] = set()
    for item in (doc.get("paths") or {}).values():
        for method in METHODS:
            operation = item.get(method) if isinstance(item.get(method), dict) else {}
            holders = [operation.get("requestBody") or {}, *(operation.get("responses") or {}).values()]
            found.update(media for holder in holders for media in holder.get("content") or {})
    return {media for media in found if not _TEXT_MEDIA.match(media)}


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: one byte string per document, whatever produced it."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def spec_sha256(document: Mapping[str, Any], stage_variables: Mapping[str, str]) -> str:
    """SHA-256 of the processed document together with the stage variables it is deployed with."""
    return hashlib.sha256(canonical_json({"document": document, "stageVariables": dict(stage_variables)})).hexdigest()


def deployed_sha256(*, apigateway: Any, rest_api_id: str, stage: str) -> tuple[str | None, str | None]:
    """(hash, deployment id) of what the stage serves; no hash for a stage deployed some other way."""
    try:
        deployment_id = apigateway.get_stage(restApiId=rest_api_id, stageName=stage).get("deploymentId")
    except apigateway.exceptions.NotFoundException:
        return None, None
    if not deployment_id:
        return None, None
    description = apigateway.get_deployment(restApiId=rest_api_id, deploymentId=deployment_id).get("description")
    found = _HASH_IN_DESCRIPTION.search(description or "")
    return (found.group(1) if found else None), deployment_id


def with_backoff(
    call: Callable[[], T],
    *,
    sleep: Callable[[float], None] = time.sleep,
    attempts: int = 6,
    first_delay: float = 5.0,
    max_delay: float = 40.0,
) -> T:
    """`call()`, again after a growing pause while API Gateway answers TooManyRequests; at most `attempts` calls."""
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != THROTTLED or attempt == attempts:
                raise
            # API Gateway's TooManyRequestsException carries the Retry-After header, parsed as a string.
            retry_after = cast("str | None", error.response.get("retryAfterSeconds"))
            sleep(min(max_delay, float(retry_after)) if retry_after else delay)
            delay = min(max_delay, delay * 2)
    raise AssertionError("unreachable: the last attempt returns or raises")


def read_spec(*, s3: Any, bucket: str, key: str, version_id: str | None = None) -> dict[str, Any]:
    """The OpenAPI document stored at s3://bucket/key (that version, when given)."""
    extra = {"VersionId": version_id} if version_id else {}
    body = s3.get_object(Bucket=bucket, Key=key, **extra)["Body"].read()
    return json.loads(body)


def deploy_api(
    *,
    s3: Any,
    apigateway: Any,
    rest_api_id: str,
    stage: str,
    bucket: str,
    backend: Backend,
    spec_key: str | None = None,
    spec_version: str | None = None,
    spec: Mapping[str, Any] | None = None,
    stage_variables: Mapping[str, str] | None = None,
    dry_run: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> DeployResult:
    """Deploy the document (`spec`, or s3://bucket/spec_key) to the stage unless it serves it already."""
    if (spec is None) == (spec_key is None):
        raise ValueError("give exactly one of spec and spec_key")
    source = "document given" if spec is not None else f"s3://{bucket}/{spec_key}"
    raw = spec if spec is not None else read_spec(s3=s3, bucket=bucket, key=spec_key or "", version_id=spec_version)
    variables = dict(stage_variables or {})
    document = gateway_document(raw, backend=backend)
    body = canonical_json(document)
    if len(body) > MAX_IMPORT_BYTES:
        raise SpecTooLarge(
            f"the processed OpenAPI document is {len(body):,} bytes; API Gateway imports at most 6 MB "
            f"({MAX_IMPORT_BYTES:,} bytes): split the API or trim the document"
        )
    sha256 = spec_sha256(document, variables)
    current, current_deployment = deployed_sha256(apigateway=apigateway, rest_api_id=rest_api_id, stage=stage)
    if current == sha256:
        reason = f"unchanged: stage {stage} already serves sha256 {sha256} (deployment {current_deployment})"
        return DeployResult(False, sha256, current_deployment, reason)
    serving = f"sha256 {current}" if current else "a deployment without a recorded hash"
    if dry_run:
        return DeployResult(
            False, sha256, None, f"dry run: would deploy sha256 {sha256}; stage {stage} serves {serving}"
        )
    s3.put_object(Bucket=bucket, Key=f"{PROCESSED_PREFIX}{sha256}.json", Body=body, ContentType="application/json")
    with_backoff(
        lambda: apigateway.put_rest_api(restApiId=rest_api_id, mode="overwrite", failOnWarnings=False, body=body),
        sleep=sleep,
    )
    deployment = with_backoff(
        lambda: apigateway.create_deployment(
            restApiId=rest_api_id,
            stageName=stage,
            description=f"sha256:{sha256} from {source}",
            **({"variables": variables} if variables else {}),
        ),
        sleep=sleep,
    )
    return DeployResult(True, sha256, deployment["id"], f"deployed: stage {stage} served {serving} before")
