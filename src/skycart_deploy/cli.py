"""`skycart-deploy`: one command group per pipeline concern, each verb a thin call into a typed function.

A new group is a module in `skycart_deploy.commands` with its own `typer.Typer()` named `app`, listed
in `GROUPS` below.
"""

from __future__ import annotations

import typer

from skycart_deploy.commands import api, image, openapi, secret, service, stack

GROUPS: dict[str, typer.Typer] = {
    "stack": stack.app,
    "image": image.app,
    "service": service.app,
    "api": api.app,
    "openapi": openapi.app,
    "secret": secret.app,
}

app = typer.Typer(
    name="skycart-deploy",
    help="Deploy tooling for SkyCart's environments (dev, stage, qa, prod).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
for _name, _group in GROUPS.items():
    app.add_typer(_group, name=_name)
