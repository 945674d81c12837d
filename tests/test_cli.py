"""The `skycart` command, run as a user would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

SKYCART = [sys.executable, "-m", "skycart.cli"]


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "SKYCART_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}


def _run(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*SKYCART, *args], env=env, capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def _count(db: str, table: str) -> int:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def test_demo_is_idempotent_and_prints_working_keys(cli_env: dict[str, str], tmp_path: Path) -> None:
    first = _run(cli_env, "demo").stdout
    db = str(tmp_path / "cli.db")
    counts = {t: _count(db, t) for t in ("airlines", "products", "flights", "loaded_stock")}
    assert counts["airlines"] == 3 and counts["products"] >= 3 * 40 and counts["flights"] >= 9
    second = _run(cli_env, "demo").stdout
    assert {t: _count(db, t) for t in counts} == counts, "a second run adds nothing"
    labels = [line.split()[0] for line in second.splitlines()[1:]]
    assert labels == ["operator", "SKA", "NRD", "SAK"]
    assert first != second, "each run prints fresh keys"


def test_demo_keys_of_an_earlier_run_are_revoked(cli_env: dict[str, str], tmp_path: Path) -> None:
    _run(cli_env, "demo")
    _run(cli_env, "demo")
    import sqlite3

    with sqlite3.connect(tmp_path / "cli.db") as conn:
        live = conn.execute("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL").fetchone()[0]
    assert live == 4


def test_keys_create_prints_the_plain_key_alone_on_the_last_line(cli_env: dict[str, str], tmp_path: Path) -> None:
    _run(cli_env, "db", "upgrade")
    operator = _run(cli_env, "keys", "create", "--operator").stdout.strip().splitlines()[-1]
    assert operator.startswith("sk_op_") and " " not in operator
    import sqlite3

    with sqlite3.connect(tmp_path / "cli.db") as conn:
        stored = [row[0] for row in conn.execute("SELECT key_hash FROM api_keys")]
    assert operator not in stored and len(stored) == 1, "only the hash is stored"


def test_keys_create_for_an_unknown_airline_fails_cleanly(cli_env: dict[str, str]) -> None:
    _run(cli_env, "db", "upgrade")
    result = _run(cli_env, "keys", "create", "--airline", "ZZ9", check=False)
    assert result.returncode == 1 and "not found" in result.stderr
    assert "Traceback" not in result.stderr
    both = _run(cli_env, "keys", "create", "--operator", "--airline", "SKA", check=False)
    assert both.returncode != 0


def test_openapi_prints_the_spec(cli_env: dict[str, str]) -> None:
    spec = json.loads(_run(cli_env, "openapi").stdout)
    assert "/v1/orders" in spec["paths"] and "/admin/airlines" in spec["paths"]


def test_serve_answers_on_the_given_port(cli_env: dict[str, str]) -> None:
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _run(cli_env, "db", "upgrade")
    proc = subprocess.Popen(
        [*SKYCART, "serve", "--port", str(port)], env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None, "server did not start"
                time.sleep(0.2)
        assert response.status_code == 200 and response.json()["database"] == "ok"
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0, "a graceful stop exits 0"


def _airline_with_usage(env: dict[str, str], code: str) -> str:
    """Migrate, onboard an airline on standard since a closed month and store traffic; return that month's label."""
    from datetime import timedelta

    from skycart.airlines.schemas import AirlineCreate
    from skycart.airlines.service import create_airline
    from skycart.cli import run_in_transaction
    from skycart.config import Settings
    from tests.billing.usage_data import backdate, closed_month, label, record_usage

    _run(env, "db", "upgrade")
    settings = Settings(database_url=env["SKYCART_DATABASE_URL"])
    old, _ = closed_month()

    async def _onboard(session) -> None:
        await create_airline(session, data=AirlineCreate(code=code, name="CLI Air", currencies=["EUR"]))

    run_in_transaction(settings, _onboard)
    backdate(settings, code, old, [("standard", old)])
    record_usage(settings, code, {old + timedelta(days=3): 1_000_400})
    return label(old)


def test_usage_report_prints_the_plans_of_the_month_then_the_totals(cli_env: dict[str, str]) -> None:
    month = _airline_with_usage(cli_env, "CL1")
    out = _run(cli_env, "usage", "report", "--airline", "CL1", "--month", month).stdout
    assert f"Statement CL1 {month} (final)" in out
    segment = next(line for line in out.splitlines() if "standard" in line)
    assert [cell.strip() for cell in segment.strip("│ ").split("│")][3:] == [
        "199.00 EUR",
        "1000000",
        "1000400",
        "400",
        "0.20 EUR",
        "-",
        "200 bps",
    ]
    totals = {
        cells[0].strip(): cells[1].strip()
        for line in out[out.index("Totals") :].splitlines()
        if len(cells := line.strip("│ ").split("│")) == 2
    }
    assert totals["Requests"] == "1000400" and totals["Overage requests"] == "400"
    assert totals["Total due"] == "199.20 EUR"
    assert out.index("standard") < out.index("Totals")


def test_usage_report_errors_are_one_line_on_stderr(cli_env: dict[str, str]) -> None:
    from tests.billing.usage_data import label, month_starts

    month = _airline_with_usage(cli_env, "CL2")
    _, _, following = month_starts()
    for args, message in (
        (("--airline", "ZZ8", "--month", month), "airline ZZ8 not found"),
        (("--airline", "CL2", "--month", "2026-13"), "is not a month"),
        (("--airline", "CL2", "--month", label(following)), "has not begun"),
    ):
        result = _run(cli_env, "usage", "report", *args, check=False)
        assert result.returncode == 1 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and result.stdout == ""


def test_billing_close_stores_each_closed_month_once_and_the_stored_statement_is_what_is_served(
    cli_env: dict[str, str],
) -> None:
    from sqlalchemy import create_engine, text

    month = _airline_with_usage(cli_env, "CL3")
    first = _run(cli_env, "billing", "close")
    # The month before last, and last month once its grace period is over.
    stored = int(first.stdout.split(": ")[1].split()[0])
    assert first.stdout.startswith("1 airlines: ") and stored in (1, 2), first.stdout
    again = _run(cli_env, "billing", "close")
    assert again.stdout == f"1 airlines: 0 statements stored, {stored} were already final\n"
    engine = create_engine(cli_env["SKYCART_DATABASE_URL"].replace("+aiosqlite", ""))
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT month, body_csv FROM closed_statements ORDER BY month")).all()
    engine.dispose()
    assert len(rows) == stored and rows[0][0] == month
    # More usage in the closed month changes nothing that is served for it.
    from datetime import datetime, timedelta

    from skycart.config import Settings
    from tests.billing.usage_data import record_usage

    record_usage(
        Settings(database_url=cli_env["SKYCART_DATABASE_URL"]),
        "CL3",
        {datetime.fromisoformat(f"{month}-05T00:00:00+00:00") + timedelta(hours=1): 5},
    )
    out = _run(cli_env, "usage", "report", "--airline", "CL3", "--month", month).stdout
    assert f"Statement CL3 {month} (final)" in out
    assert "1000400" in out and "1000405" not in out


def test_plans_list_prints_every_plan(cli_env: dict[str, str]) -> None:
    _run(cli_env, "db", "upgrade")
    out = _run(cli_env, "plans", "list").stdout
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.startswith("│")}
    assert list(rows) == ["basic", "standard", "premium"]
    assert "49.00 EUR" in rows["basic"] and "hard stop" in rows["basic"]
    assert "unlimited" in rows["premium"] and "999.00 EUR" in rows["premium"]
