"""boto3 clients for the app (S3, CloudWatch Logs, Secrets Manager): one place that picks region and endpoint.

The region comes from `SKYCART_AWS_REGION` when it is set, else from the standard chain an ECS task
relies on: `AWS_REGION` (which ECS sets in every task), then boto3's own resolution
(`AWS_DEFAULT_REGION`, the profile's config file). The app names no region of its own, so a stack in
any region talks to its own region's services.
"""

from __future__ import annotations

from typing import Any

from skycart.config import ConfigError, Settings


def region(settings: Settings) -> str:
    """The AWS region every client of this process uses; ConfigError when nothing names one."""
    import boto3

    found = settings.aws_region or boto3.session.Session().region_name
    if not found:
        raise ConfigError("no AWS region: set AWS_REGION (ECS sets it in every task) or SKYCART_AWS_REGION")
    return found


def client(service: str, settings: Settings, **options: Any) -> Any:
    """A new boto3 client of its own session (thread-safe once made), in the process's region and endpoint."""
    import boto3

    return boto3.session.Session().client(
        service,  # type: ignore[call-overload]
        region_name=region(settings),
        endpoint_url=settings.aws_endpoint_url,
        **options,
    )
