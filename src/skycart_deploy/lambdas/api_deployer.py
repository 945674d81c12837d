"""API deployer Lambda (`api_deployer.handler`): an OpenAPI document landed in the spec bucket; deploy it if it changed.

Triggered by EventBridge's S3 "Object Created" event for `openapi/` keys, or invoked directly with
`{"bucket": ..., "key": ...}` (bucket defaults to SPEC_BUCKET). Settings come from the function's
environment (infra/cloudformation/api.yaml): REST_API_ID, STAGE_NAME, VPC_LINK_ID,
INTEGRATION_TARGET_ARN, BACKEND_BASE_URL, SPEC_BUCKET; SKYCART_AWS_ENDPOINT_URL points the clients elsewhere.
"""

from __future__ import annotations

import json
import os
from typing import Any

from skycart_deploy import api_gateway, aws

# Once per cold start: every invocation of this container reuses the connections.
S3 = aws.client("s3")
APIGATEWAY = aws.client("apigateway")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Deploy the uploaded document unless the stage serves it already; log and return what happened."""
    spec_bucket = os.environ["SPEC_BUCKET"]
    bucket, key, version = spec_location(event, default_bucket=spec_bucket)
    fields = {"rest_api_id": os.environ["REST_API_ID"], "stage": os.environ["STAGE_NAME"], "bucket": bucket, "key": key}
    try:
        if bucket != spec_bucket:
            raise ValueError(f"refusing s3://{bucket}/{key}: this function deploys only from {spec_bucket}")
        result = api_gateway.deploy_api(
            s3=S3,
            apigateway=APIGATEWAY,
            rest_api_id=fields["rest_api_id"],
            stage=fields["stage"],
            bucket=bucket,
            spec_key=key,
            spec_version=version,
            backend=api_gateway.Backend(
                base_url=os.environ["BACKEND_BASE_URL"],
                vpc_link_id=os.environ.get("VPC_LINK_ID") or api_gateway.STAGE_VPC_LINK,
                integration_target_arn=os.environ.get("INTEGRATION_TARGET_ARN") or None,
            ),
        )
    except Exception as error:
        _log({"event": "api_deploy_failed", **fields, "error": f"{type(error).__name__}: {error}"})
        raise
    _log({"event": "api_deploy", **fields, **result.as_dict()})
    return result.as_dict()


def spec_location(event: dict[str, Any], *, default_bucket: str) -> tuple[str, str, str | None]:
    """(bucket, key, version id) from an EventBridge S3 "Object Created" event or a direct invocation."""
    if event.get("source") == "aws.s3" and event.get("detail-type") == "Object Created":
        detail = event["detail"]
        return detail["bucket"]["name"], detail["object"]["key"], detail["object"].get("version-id")
    if isinstance(event.get("key"), str):
        return event.get("bucket") or default_bucket, event["key"], event.get("version")
    raise ValueError(f"not an S3 Object Created event nor {{bucket, key}}: {sorted(event)}")


def _log(record: dict[str, Any]) -> None:
    print(json.dumps(record, sort_keys=True), flush=True)
