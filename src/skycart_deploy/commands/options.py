"""Options every AWS-facing verb shares."""

from __future__ import annotations

from typing import Annotated

import typer

from skycart_deploy import aws
from skycart_deploy.aws import ENDPOINT_ENV


def _region(value: str | None) -> str:
    """Resolved before the verb runs: without a region, one line and exit 2 instead of a traceback."""
    try:
        return aws.region(value)
    except aws.NoRegion as missing:
        typer.echo(f"skycart-deploy: {missing}", err=True)
        raise typer.Exit(2) from None


EndpointOption = Annotated[
    str | None,
    typer.Option(
        "--endpoint-url",
        envvar=ENDPOINT_ENV,
        help="AWS endpoint (moto server, LocalStack); default: AWS itself.",
        show_default=False,
    ),
]
RegionOption = Annotated[
    str | None,
    typer.Option(
        "--region",
        envvar="AWS_REGION",
        help="AWS region (default: AWS_DEFAULT_REGION or the AWS configuration's).",
        show_default=False,
        callback=_region,
    ),
]
EnvOption = Annotated[str, typer.Option("--env", "-e", help="Environment: dev, stage, qa or prod.")]
