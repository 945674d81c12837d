"""boto3 clients for every verb and Lambda: one place that honours the endpoint and region settings.

`--endpoint-url` (or `SKYCART_AWS_ENDPOINT_URL`) points every client at moto server or LocalStack;
nothing else in the package knows it is not talking to AWS. boto3 is all it needs, so the Lambdas
that use it ship without the CLI's dependencies.
"""

from __future__ import annotations

import os
from typing import Any

import boto3

ENDPOINT_ENV = "SKYCART_AWS_ENDPOINT_URL"


class NoRegion(Exception):
    """No region given and none in the standard chain: every client would sign for a guess."""

    def __str__(self) -> str:
        return "no AWS region: pass --region or set AWS_REGION (or AWS_DEFAULT_REGION, or a profile's region)"


def region(given: str | None = None) -> str:
    """`given`, else AWS_REGION, else boto3's own chain (AWS_DEFAULT_REGION, the config file); else NoRegion."""
    found = given or os.environ.get("AWS_REGION") or boto3.session.Session().region_name
    if not found:
        raise NoRegion
    return found


def client(service: str, endpoint_url: str | None = None, region_name: str | None = None) -> Any:
    """A boto3 client for `service`; `endpoint_url` falls back to SKYCART_AWS_ENDPOINT_URL."""
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint_url or os.environ.get(ENDPOINT_ENV) or None,
        region_name=region(region_name),
    )
