"""The `skycart` command."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from skycart.config import ConfigError, Settings, get_settings
from skycart.platform.db import create_engine, create_sessionmaker, transaction

app = typer.Typer(
    help="SkyCart: inflight e-commerce for many airlines.", no_args_is_help=True, pretty_exceptions_enable=False
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
usage_app = typer.Typer(help="Usage and monthly statements.", no_args_is_help=True)
plans_app = typer.Typer(help="Service packages.", no_args_is_help=True)
billing_app = typer.Typer(help="Billing periods and final statements.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(usage_app, name="usage")
app.add_typer(plans_app, name="plans")
app.add_typer(billing_app, name="billing")
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
    """Serve the HTTP API: a gunicorn master supervising uvicorn worker processes (see skycart.asgi)."""
    settings = get_settings()
    if settings.assets_bucket or settings.log_group or settings.db_secret_arn:
        from skycart.platform import aws

        try:
            aws.region(settings)  # before any worker starts: one clear line instead of a traceback per worker
        except ConfigError as error:
            typer.echo(f"skycart serve: {error}", err=True)
            raise typer.Exit(2) from None
    host = host or settings.host
    bind = f"[{host}]:{port or settings.port}" if ":" in host else f"{host}:{port or settings.port}"
    count = str(workers or settings.workers)
    # The master becomes a fresh interpreter, same pid: it carries none of the CLI's imports into its workers.
    entry = "from skycart.asgi import main; main()"
    os.execv(
        sys.executable,
        [sys.executable, "-P", "-c", entry, "--bind", bind, "--workers", count, "--log-level", settings.log_level],
    )


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


def _stdout() -> Console:
    # Piped output is read by scripts and people alike: do not squeeze tables into 80 columns.
    return Console(width=None if sys.stdout.isatty() else 200)


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _per_currency(amounts: dict[str, str]) -> str:
    return ", ".join(f"{amount} {currency}" for currency, amount in amounts.items()) or "-"


@usage_app.command("report")
def usage_report(
    airline: Annotated[str, typer.Option("--airline", help="Airline code")],
    month: Annotated[str, typer.Option("--month", help="Month, YYYY-MM (UTC)")],
) -> None:
    """Print an airline's statement for a month: each plan in force, then the totals."""
    from skycart.billing.schemas import Statement
    from skycart.billing.statements import statement_under
    from skycart.errors import DomainError

    settings = get_settings()

    async def _statement(session: AsyncSession) -> Statement:
        return await statement_under(session, settings, airline_code=airline, month=month)

    try:
        found = run_in_transaction(settings, _statement)
    except DomainError as exc:
        console.print(exc.detail, style="red", markup=False, highlight=False)
        raise typer.Exit(1) from exc
    status = "final" if found.final else f"to date, {_when(found.generated_at)} UTC"
    segments = Table(title=f"Statement {found.airline} {found.month} ({status})", title_justify="left")
    for column in ("Plan", "From", "To", "Fee", "Included", "Requests", "Overage", "Overage amount", "GMV", "Share"):
        segments.add_column(column, justify="left" if column in ("Plan", "From", "To", "GMV") else "right")
    for seg in found.plans:
        segments.add_row(
            seg.plan,
            _when(seg.from_),
            _when(seg.to),
            f"{seg.fee} {seg.currency}",
            "unlimited" if seg.included_requests is None else str(seg.included_requests),
            str(seg.requests),
            str(seg.overage_requests),
            f"{seg.overage_amount} {seg.currency}",
            _per_currency(seg.gmv),
            f"{seg.revenue_share_bps} bps",
        )
    totals = Table(title="Totals", title_justify="left", show_header=False)
    totals.add_column("Item")
    totals.add_column("Value", justify="right")
    included = "unlimited" if found.included_requests is None else str(found.included_requests)
    for item, value in (
        ("Requests", str(found.requests)),
        ("Included requests", included),
        ("Overage requests", str(found.overage_requests)),
        ("Fee", f"{found.fee} {found.currency}"),
        ("Overage amount", f"{found.overage_amount} {found.currency}"),
        ("GMV", _per_currency(found.gmv)),
        ("Revenue share", _per_currency(found.revenue_share)),
        ("Adjustments", _per_currency(found.adjustments_revenue_share)),
        ("Total due", _per_currency(found.total_due)),
    ):
        totals.add_row(item, value)
    out = _stdout()
    out.print(segments)
    out.print(totals)


@plans_app.command("list")
def plans_list() -> None:
    """Print the service packages."""
    from skycart.billing.plans import list_plans, plan_out
    from skycart.billing.schemas import PlanOut

    async def _plans(session: AsyncSession) -> list[PlanOut]:
        return [plan_out(plan) for plan in await list_plans(session)]

    found = run_in_transaction(get_settings(), _plans)
    table = Table(title="Plans", title_justify="left")
    for column in ("Code", "Name", "Quota/month", "Overage", "Rate/s", "Burst", "Fee", "Per 1000 over", "Share"):
        table.add_column(column, justify="left" if column in ("Code", "Name") else "right")
    table.add_column("Features")
    for plan in found:
        table.add_row(
            plan.code,
            plan.name,
            "unlimited" if plan.monthly_request_quota is None else str(plan.monthly_request_quota),
            "billed" if plan.overage else "hard stop",
            f"{plan.rate_limit_per_second:g}",
            str(plan.burst),
            f"{plan.monthly_fee} {plan.currency}",
            f"{plan.overage_per_1000} {plan.currency}",
            f"{plan.revenue_share_bps} bps",
            ", ".join(plan.features) or "-",
        )
    _stdout().print(table)


@billing_app.command("close")
def billing_close() -> None:
    """Store the final statement of every month that has closed (month end + the grace period).

    Idempotent: a month already closed is left as it is stored.
    """
    from rich.progress import Progress

    from skycart.airlines.repository import count_airlines
    from skycart.billing.closing import CloseReport, close_due

    settings = get_settings()

    async def _main() -> CloseReport:
        engine = create_engine(settings)
        try:
            async with transaction(create_sessionmaker(engine), write=False) as session:
                total = await count_airlines(session)
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task("closing billing periods", total=total)
                return await close_due(
                    create_sessionmaker(engine),
                    default_plan=settings.default_plan,
                    grace_hours=settings.billing_grace_hours,
                    on_airline=lambda _code, _stored: progress.advance(task),
                )
        finally:
            await engine.dispose()

    report = asyncio.run(_main())
    typer.echo(f"{report.airlines} airlines: {report.stored} statements stored, {report.already} were already final")


@app.command()
def openapi() -> None:
    """Print the OpenAPI document."""
    from skycart.app import create_app

    typer.echo(json.dumps(create_app(get_settings()).openapi(), indent=2))


if __name__ == "__main__":
    app()
