"""`skycart-deploy openapi ...`: The app's OpenAPI document, made acceptable to API Gateway."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from skycart_deploy import openapi

app = typer.Typer(help="The app's OpenAPI document, made acceptable to API Gateway.", no_args_is_help=True)


@app.command()
def export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (default: stdout).", show_default=False)
    ] = None,
    source: Annotated[
        Path | None,
        typer.Option("--input", help="Convert this document (default: the app's own).", show_default=False),
    ] = None,
) -> None:
    """Print the app's OpenAPI document as OpenAPI 3.0.3 that API Gateway imports."""
    document = json.loads(source.read_text()) if source else openapi.app_document()
    try:
        converted = openapi.to_openapi30(document)
    except openapi.UnconvertibleSpec as problem:
        typer.echo(f"cannot convert: {problem}", err=True)
        raise typer.Exit(1) from problem
    text = json.dumps(converted, indent=2, ensure_ascii=False) + "\n"
    if output:
        output.write_text(text)
    else:
        typer.echo(text, nl=False)
