"""`skycart-deploy api ...`: API Gateway: deploy the app's OpenAPI document when it changed."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from skycart_deploy import api_gateway, aws
from skycart_deploy.commands import options

app = typer.Typer(help="API Gateway: deploy the app's OpenAPI document when it changed.", no_args_is_help=True)


@app.command()
def deploy(
    rest_api_id: Annotated[str, typer.Option("--rest-api-id", help="The REST API (stack output RestApiId).")],
    bucket: Annotated[str, typer.Option("--bucket", help="Spec bucket; processed documents are archived here.")],
    spec: Annotated[
        Path, typer.Option("--spec", help="OpenAPI document (`skycart openapi` output).", exists=True, dir_okay=False)
    ],
    backend_url: Annotated[
        str, typer.Option("--backend-url", help="https://<BackendHostName>, the ALB behind the VPC link.")
    ],
    stage: Annotated[str, typer.Option("--stage", help="Stage to deploy.")] = "live",
    vpc_link_id: Annotated[
        str,
        typer.Option(
            "--vpc-link-id",
            help="VPC link id; pass the Lambda's VPC_LINK_ID so both hash alike. Default: the stage variable.",
        ),
    ] = api_gateway.STAGE_VPC_LINK,
    integration_target_arn: Annotated[
        str | None, typer.Option("--integration-target-arn", help="ALB ARN (VPC link v2).", show_default=False)
    ] = None,
    stage_variable: Annotated[
        list[str] | None, typer.Option("--stage-variable", help="NAME=VALUE for the deployment; repeatable.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Compare only; change nothing.")] = False,
    endpoint_url: options.EndpointOption = None,
    region: options.RegionOption = None,
) -> None:
    """Deploy the document unless the stage serves it already; print {deployed, sha256, deployment_id, reason}."""
    variables = dict(_name_value(item) for item in stage_variable or [])
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=Console(stderr=True)
    ) as progress:
        task = progress.add_task(f"deploying to {rest_api_id}/{stage}", total=None)

        def wait(seconds: float) -> None:
            progress.update(task, description=f"API Gateway is throttling; retrying in {seconds:.0f} s")
            time.sleep(seconds)
            progress.update(task, description=f"deploying to {rest_api_id}/{stage}")

        try:
            result = api_gateway.deploy_api(
                s3=aws.client("s3", endpoint_url, region),
                apigateway=aws.client("apigateway", endpoint_url, region),
                rest_api_id=rest_api_id,
                stage=stage,
                bucket=bucket,
                spec=json.loads(spec.read_text()),
                backend=api_gateway.Backend(
                    base_url=backend_url, vpc_link_id=vpc_link_id, integration_target_arn=integration_target_arn
                ),
                stage_variables=variables,
                dry_run=dry_run,
                sleep=wait,
            )
        except ValueError as problem:  # SpecTooLarge, UnconvertibleSpec, a document API Gateway cannot take
            progress.stop()
            typer.echo(f"cannot deploy: {problem}", err=True)
            raise typer.Exit(1) from problem
    typer.echo(json.dumps(result.as_dict()))


def _name_value(item: str) -> tuple[str, str]:
    name, separator, value = item.partition("=")
    if not separator or not name:
        raise typer.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--stage-variable")
    return name, value
