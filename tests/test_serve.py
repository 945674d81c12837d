"""`skycart serve --workers N` as production runs it: a gunicorn master, uvicorn workers, real HTTP, real signals.

Metering is the witness: every request a worker reads is counted, and the counts reach the
database only when a worker flushes them. With SKYCART_METERING_FLUSH_SECONDS at its maximum,
the only flush during a test is the one the lifespan shutdown does, so stored counts show that
every worker ran it, and stored counts equal to the answers the clients got show that every
request a worker read was answered.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import _free_port

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="gunicorn workers and /proc: Linux")

SKYCART = [sys.executable, "-m", "skycart.cli"]
MENU_ROUTE = "/v1/flights/{flight_id}/menu"


@dataclass
class Served:
    proc: subprocess.Popen
    url: str
    database: Path

    def workers(self) -> set[int]:
        """The pids of the master's child processes."""
        found = set()
        for entry in Path("/proc").iterdir():
            with suppress(OSError, ValueError, IndexError):
                if (
                    entry.name.isdigit()
                    and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == self.proc.pid
                ):
                    found.add(int(entry.name))
        return found

    def stored(self, route: str) -> int:
        """Requests on a route that reached the database."""
        with sqlite3.connect(self.database) as conn:
            query = "SELECT COALESCE(SUM(requests), 0) FROM usage_hours WHERE route = ?"
            return conn.execute(query, (route,)).fetchone()[0]

    def flushing_processes(self) -> int:
        with sqlite3.connect(self.database) as conn:
            return conn.execute("SELECT COUNT(DISTINCT process) FROM metering_flushes").fetchone()[0]


def _env(database: Path, **extra: str | None) -> dict[str, str]:
    """The server's environment; an `extra` of None leaves that setting at its default."""
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("SKYCART_")},
        "SKYCART_DATABASE_URL": f"sqlite:///{database}",
        "SKYCART_METERING_FLUSH_SECONDS": "300",
        "SKYCART_ACCESS_LOG": "false",
        "SKYCART_EMF_METRICS": "false",
        "SKYCART_LOG_LEVEL": "WARNING",
        **extra,
    }
    return {name: value for name, value in env.items() if value is not None}


@contextmanager
def serving(tmp_path: Path, *, workers: int, demo: bool = False, **extra: str | None) -> Iterator[tuple[Served, dict]]:
    """`skycart serve --workers N` on a scratch SQLite database; yields it and the demo keys (if seeded)."""
    database = tmp_path / "serve.db"
    env = _env(database, **extra)
    command = "demo" if demo else "db"
    seeded = subprocess.run(
        [*SKYCART, command, *([] if demo else ["upgrade"])], env=env, capture_output=True, text=True, timeout=120
    )
    assert seeded.returncode == 0, seeded.stderr
    keys = dict(line.split() for line in seeded.stdout.splitlines()[1:]) if demo else {}
    port = _free_port()
    proc = subprocess.Popen(
        [*SKYCART, "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # so that the cleanup below reaches the workers too
    )
    served = Served(proc, f"http://127.0.0.1:{port}", database)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"server exited: {proc.stdout.read() if proc.stdout else ''}"
            with suppress(httpx.TransportError):
                if httpx.get(f"{served.url}/readyz", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "server did not become ready"
            time.sleep(0.1)
        yield served, keys
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _stop(served: Served) -> int:
    served.proc.send_signal(signal.SIGTERM)
    return served.proc.wait(timeout=30)


def test_two_workers_answer_and_sigterm_flushes_the_metering_of_each(tmp_path: Path) -> None:
    with serving(tmp_path, workers=2) as (served, _):
        assert len(served.workers()) == 2
        prefixes: Counter = Counter()
        lock = threading.Lock()
        deadline = time.monotonic() + 20

        def client() -> None:
            # A new connection per request, so the kernel hands them to both workers.
            with httpx.Client(base_url=served.url, limits=httpx.Limits(max_keepalive_connections=0)) as http:
                for _ in range(50):
                    response = http.get("/healthz")
                    with lock:
                        # The metering middleware numbers requests after a random per-process prefix.
                        prefixes[
                            response.headers["x-request-id"][:12] if response.status_code == 200 else "failed"
                        ] += 1
                        if (len(prefixes) == 2 and sum(prefixes.values()) >= 40) or time.monotonic() > deadline:
                            return

        threads = [threading.Thread(target=client) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert "failed" not in prefixes and len(prefixes) == 2, f"answers came from {len(prefixes)} worker(s)"
        assert served.stored("/healthz") == 0, "nothing flushed before the stop"
        assert _stop(served) == 0, "a graceful stop exits 0"
        assert served.stored("/healthz") == sum(prefixes.values())
        assert served.flushing_processes() == 2, "each worker flushed at its lifespan shutdown"


def test_sigterm_under_load_stops_accepting_and_answers_every_accepted_request(tmp_path: Path) -> None:
    with serving(tmp_path, workers=2, demo=True, SKYCART_MENU_CACHE_SECONDS="0", SKYCART_LIMITS_ENABLED="false") as (
        served,
        keys,
    ):
        key = keys["SKA"]
        flight = httpx.get(f"{served.url}/v1/flights", headers={"X-Api-Key": key}).json()["items"][0]["id"]
        menu = f"{served.url}/v1/flights/{flight}/menu"
        outcomes: Counter = Counter()
        finished = threading.Event()

        def client(keep_alive: bool) -> None:
            limits = httpx.Limits() if keep_alive else httpx.Limits(max_keepalive_connections=0)
            with httpx.Client(headers={"X-Api-Key": key}, limits=limits, timeout=30) as http:
                while not finished.is_set():
                    try:
                        status = http.get(menu).status_code
                    except httpx.ConnectError:
                        return  # refused: the server stopped listening, as it should
                    except httpx.TransportError:
                        outcomes["closed before any answer"] += 1  # read by no worker: see the metering check
                        continue
                    outcomes[status] += 1

        # An import whose body is only half sent when SIGTERM arrives: certainly accepted, certainly in flight.
        body = json.dumps(
            [
                {"sku": f"LATE-{i}", "name": {"en": "Late"}, "category": "snacks", "prices": {"EUR": "1.00"}}
                for i in range(3)
            ]
        ).encode()
        head = (
            f"POST /v1/products:import HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Api-Key: {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        threads = [threading.Thread(target=client, args=(i % 2 == 0,)) for i in range(8)]
        with socket.create_connection(("127.0.0.1", int(served.url.rsplit(":", 1)[1])), timeout=30) as slow:
            try:
                for thread in threads:
                    thread.start()
                slow.sendall(head + body[:10])
                time.sleep(0.5)
                served.proc.send_signal(signal.SIGTERM)
                refused_at = _refused_within(served.url, seconds=10)
                assert served.proc.poll() is None, "still draining the import when it stopped accepting"
                slow.sendall(body[10:])
                answer = _read_response(slow)
            finally:
                finished.set()
                for thread in threads:
                    thread.join(timeout=30)
        assert refused_at is not None, "new connections are refused after SIGTERM"
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["created"] == 3
        assert served.proc.wait(timeout=30) == 0, "a graceful stop exits 0"
        answered = outcomes.pop(200, 0)
        assert answered > 0 and set(outcomes) <= {"closed before any answer"}, outcomes
        assert served.stored(MENU_ROUTE) == answered, "every request a worker read was answered"
        assert served.stored("/v1/products:import") == 1


def _refused_within(url: str, *, seconds: float) -> float | None:
    """Seconds until a new connection is refused, or None."""
    port = int(url.rsplit(":", 1)[1])
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            return time.monotonic() - started
        time.sleep(0.05)
    return None


def _read_response(sock: socket.socket) -> bytes:
    """One HTTP/1.1 response with a Content-Length (the app always sends one)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    length = next(
        int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    )
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-body"
        rest += chunk
    return head + b"\r\n\r\n" + rest


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting for whoever adopted it to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_workers_stop_gracefully_when_their_master_is_killed(tmp_path: Path) -> None:
    with serving(tmp_path, workers=2) as (served, _):
        workers = served.workers()
        assert len(workers) == 2
        with httpx.Client(base_url=served.url, limits=httpx.Limits(max_keepalive_connections=0)) as http:
            sent = sum(http.get("/healthz").status_code == 200 for _ in range(30))
        served.proc.send_signal(signal.SIGKILL)
        served.proc.wait(timeout=10)
        deadline = time.monotonic() + 20
        while any(map(_running, workers)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(map(_running, workers)), "no worker outlives its master"
        assert served.stored("/healthz") == sent, "they stopped through the lifespan shutdown, which flushed"


def test_sigint_to_the_master_stops_as_gracefully_as_sigterm(tmp_path: Path) -> None:
    with serving(tmp_path, workers=2) as (served, _):
        with httpx.Client(base_url=served.url, limits=httpx.Limits(max_keepalive_connections=0)) as http:
            sent = sum(http.get("/healthz").status_code == 200 for _ in range(30))
        served.proc.send_signal(signal.SIGINT)
        assert served.proc.wait(timeout=15) == 0
        assert served.stored("/healthz") == sent, "every worker ran its lifespan shutdown"


def test_with_aws_configured_and_no_region_serve_stops_before_any_worker_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION", "SKYCART_AWS_REGION")}
    env |= {"AWS_CONFIG_FILE": str(tmp_path / "no-config"), "SKYCART_LOG_GROUP": "skycart-app"}
    result = subprocess.run(
        [*SKYCART, "serve", "--port", str(_free_port())], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "skycart serve: no AWS region: set AWS_REGION (ECS sets it in every task) or SKYCART_AWS_REGION"
    ]


def test_by_default_a_process_prints_its_access_lines_and_no_emf_records(tmp_path: Path) -> None:
    """EMF is for a log group that extracts it (the task definition switches it on); `make run` prints none."""
    env = {"SKYCART_EMF_METRICS": None, "SKYCART_ACCESS_LOG": None, "SKYCART_LOG_LEVEL": None}
    with serving(tmp_path, workers=1, SKYCART_METERING_FLUSH_SECONDS="0.2", **env) as (served, _):
        ids = [httpx.get(f"{served.url}/healthz").headers["x-request-id"] for _ in range(3)]
        time.sleep(1)  # several flushes, each of which would print its EMF records
        assert _stop(served) == 0
        lines = [json.loads(line) for line in served.proc.stdout.read().splitlines() if line.startswith("{")]
    assert served.stored("/healthz") == 3, "flushed, so EMF would have been printed"
    assert [line["request_id"] for line in lines if line.get("logger") == "skycart.access"][-3:] == ids
    assert not [line for line in lines if "_aws" in line]
