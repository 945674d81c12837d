"""The `skycart` command."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncSession

from skycart.config import Settings, get_settings
from skycart.platform.db import create_engine, create_sessionmaker, transaction

app = typer.Typer(
    help="SkyCart: inflight e-commerce for many airlines.", no_args_is_help=True, pretty_exceptions_enable=False
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
console = Console(stderr=True)
T = TypeVar("T")


def run_in_transaction(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def _main() -> T:
        engine = create_engine(settings)
        try:
            async with transaction(create_sessionmaker(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(_main())


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes")] = None,
) -> None:
    """Serve the HTTP API."""
    import uvicorn

    settings = get_settings()
    options = dict(
        host=host or settings.host,
        port=port or settings.port,
        proxy_headers=True,
        log_config=None,
        timeout_graceful_shutdown=20,
    )
    count = workers or settings.workers
    if count > 1:
        uvicorn.run("skycart.asgi:app", workers=count, **options)
        return
    # uvicorn re-raises SIGTERM after its graceful shutdown; a finished graceful stop exits 0.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.Server(uvicorn.Config("skycart.asgi:app", **options)).run()


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision")] = "head") -> None:
    """Apply database migrations."""
    from skycart.platform.migrate import upgrade

    settings = get_settings()
    upgrade(settings, revision)
    console.print(f"[green]database at {revision}[/green]")


@app.command()
def demo() -> None:
    """Migrate, seed demo airlines, catalogs and today's flights (idempotent); print the keys."""
    from skycart.demo import seed
    from skycart.platform.migrate import upgrade

    settings = get_settings()
    upgrade(settings)
    keys = run_in_transaction(settings, lambda session: seed(session, progress_console=console))
    typer.echo("Demo keys (shown once; only their hashes are stored):")
    for label, key in keys:
        typer.echo(f"  {label:<10} {key}")


@keys_app.command("create")
def keys_create(
    operator: Annotated[bool, typer.Option("--operator", help="A platform operator key")] = False,
    airline: Annotated[str | None, typer.Option("--airline", help="An airline's key, by airline code")] = None,
    name: Annotated[str, typer.Option(help="A label for the key")] = "",
) -> None:
    """Create an API key; the plain key is printed alone on the last line."""
    from skycart.airlines import service

    if operator == bool(airline):
        raise typer.BadParameter("give exactly one of --operator or --airline CODE")

    async def _create(session: AsyncSession) -> tuple[str, str]:
        owner = await service.get_airline(session, code=airline) if airline else None
        role = service.ROLE_AIRLINE if airline else service.ROLE_OPERATOR
        key, plain = await service.issue_key(session, role=role, airline=owner, name=name)
        return key.id, plain

    try:
        key_id, plain = run_in_transaction(get_settings(), _create)
    except Exception as exc:  # a domain error such as an unknown airline
        console.print(f"[red]{getattr(exc, 'detail', exc)}[/red]")
        raise typer.Exit(1) from exc
    typer.echo(f"key id: {key_id}")
    typer.echo(plain)


@app.command()
def openapi() -> None:
    """Print the OpenAPI document."""
    from skycart.app import create_app

    typer.echo(json.dumps(create_app(get_settings()).openapi(), indent=2))


if __name__ == "__main__":
    app()
