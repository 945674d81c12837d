"""Several real `skycart serve` processes on one database (and a private Redis), like tasks behind a load balancer."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from skycart.airlines import service as airline_service
from skycart.cli import run_in_transaction
from skycart.config import Settings
from skycart.platform.migrate import upgrade
from tests.conftest import _free_port, next_code, service_missing


@dataclass
class ServerProcess:
    port: int
    proc: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)


def _wait_ready(server: ServerProcess, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"server exited: {server.proc.stdout.read() if server.proc.stdout else ''}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not become ready")


@contextmanager
def servers(
    count: int, database_url: str, *, output: int = subprocess.PIPE, **env: str
) -> Iterator[list[ServerProcess]]:
    """`count` server processes; `output=subprocess.DEVNULL` for long runs whose lines nobody reads (a full
    pipe would block the server's writes)."""
    base = {
        **os.environ,
        "SKYCART_DATABASE_URL": database_url,
        "SKYCART_ACCESS_LOG": "false",
        "SKYCART_LOG_LEVEL": "WARNING",
        "SKYCART_METERING_FLUSH_SECONDS": "1",
        "SKYCART_EMF_METRICS": "false",
        **env,
    }
    started = []
    try:
        for _ in range(count):
            port = _free_port()
            proc = subprocess.Popen(
                [sys.executable, "-m", "skycart.cli", "serve", "--port", str(port)],
                env=base,
                stdout=output,
                stderr=subprocess.STDOUT,
                text=True,
            )
            started.append(ServerProcess(port, proc))
        for server in started:
            _wait_ready(server)
        yield started
    finally:
        for server in started:
            if server.proc.poll() is None:
                server.proc.kill()
                server.proc.wait(timeout=10)


def start_redis(port: int) -> subprocess.Popen:
    """redis-server on 127.0.0.1:`port`, keeping nothing on disk (a restart comes back empty)."""
    binary = shutil.which("redis-server")
    if binary is None:
        service_missing("redis-server")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("private redis did not start") from None
            time.sleep(0.05)


@contextmanager
def private_redis() -> Iterator[tuple[str, subprocess.Popen]]:
    """A Redis of this test's own, so it can be stopped without touching anyone else's."""
    port = _free_port()
    proc = start_redis(port)
    try:
        yield f"redis://127.0.0.1:{port}/0", proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


@contextmanager
def one_server(folder: Path, **env: str) -> Iterator[tuple[ServerProcess, str, str]]:
    """One `skycart serve` process on a fresh SQLite database in `folder`, with one airline: (server, code, key)."""
    url = f"sqlite+aiosqlite:///{folder / 'one-server.db'}"
    upgrade(Settings(database_url=url))
    op = operator_key(url)
    with servers(1, url, **env) as (proc,):
        with httpx.Client(base_url=proc.url, headers={"X-Api-Key": op}) as admin:
            code, key = onboard(admin)
        yield proc, code, key


def operator_key(database_url: str) -> str:
    async def _create(session: Any) -> str:
        return (await airline_service.issue_key(session, role=airline_service.ROLE_OPERATOR, airline=None))[1]

    return run_in_transaction(Settings(database_url=database_url), _create)


def onboard(admin: httpx.Client, plan: dict[str, Any] | None = None) -> tuple[str, str]:
    """A new airline on a plan of the test's own (created here); returns (code, key)."""
    code = next_code()
    assert (
        admin.post("/admin/airlines", json={"code": code, "name": "Load Air", "currencies": ["EUR"]}).status_code == 201
    )
    if plan is not None:
        plan = {
            "code": f"p-{code.lower()}",
            "name": "Test plan",
            "monthly_fee": "10.00",
            "currency": "EUR",
            "revenue_share_bps": 0,
            **plan,
        }
        created = admin.post("/admin/plans", json=plan)
        assert created.status_code == 201, created.text
        assert admin.put(f"/admin/airlines/{code}/plan", json={"plan": plan["code"]}).status_code == 200
    key = admin.post(f"/admin/airlines/{code}/keys", json={}).json()["key"]
    return code, key


@pytest.fixture
def mariadb_url(tmp_path) -> Iterator[str]:
    from tests.conftest import scratch_database

    with scratch_database("mariadb", tmp_path) as url:
        upgrade(Settings(database_url=url))
        yield url


@dataclass
class PrivateMariaDB:
    """A MariaDB server of a test's own (its own data folder and port), to stop, stall and start again."""

    folder: Path
    port: int
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mysql+asyncmy://root@127.0.0.1:{self.port}/skycart"

    def start(self, timeout: float = 30) -> None:
        self.proc = subprocess.Popen(
            [
                shutil.which("mariadbd") or "/usr/sbin/mariadbd",
                "--no-defaults",
                f"--datadir={self.folder / 'data'}",
                f"--socket={self.folder / 'mariadb.sock'}",
                f"--pid-file={self.folder / 'mariadb.pid'}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                "--user=root",
                # Nobody but this test can reach it (loopback, a free port), so no accounts are needed.
                "--skip-grant-tables",
                "--innodb-buffer-pool-size=64M",
                "--skip-log-bin",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("private MariaDB did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        """Gone at once, as a crashed or failed-over server is (SIGKILL, no clean shutdown)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def stall(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)


@contextmanager
def private_mariadb(folder: Path) -> Iterator[PrivateMariaDB]:
    """A fresh MariaDB on a spare port with an empty `skycart` database; never the shared server."""
    install = shutil.which("mariadb-install-db")
    if install is None or shutil.which("mariadbd") is None and not Path("/usr/sbin/mariadbd").exists():
        service_missing("mariadb-server (mariadb-install-db, mariadbd)")
    folder.mkdir(parents=True, exist_ok=True)
    created = subprocess.run(
        [install, "--no-defaults", f"--datadir={folder / 'data'}", "--user=root", "--skip-test-db"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr[-2000:]
    server = PrivateMariaDB(folder, _free_port())
    server.start()
    try:
        import pymysql

        with closing(pymysql.connect(host="127.0.0.1", port=server.port, user="root")) as conn:
            conn.cursor().execute("CREATE DATABASE skycart CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        yield server
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.resume()
            server.stop()
