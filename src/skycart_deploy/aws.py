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


def client(service: str, endpoint_url: str | None = None, region: str | None = None) -> Any:
    """A boto3 client for `service`; `endpoint_url` falls back to SKYCART_AWS_ENDPOINT_URL."""
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint_url or os.environ.get(ENDPOINT_ENV) or None,
        region_name=region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None,
    )
