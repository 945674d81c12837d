"""Options every AWS-facing verb shares."""

from __future__ import annotations

from typing import Annotated

import typer

from skycart_deploy.aws import ENDPOINT_ENV

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
        "--region", envvar="AWS_REGION", help="AWS region (default: the AWS configuration's).", show_default=False
    ),
]
EnvOption = Annotated[str, typer.Option("--env", "-e", help="Environment: dev, stage, qa or prod.")]
