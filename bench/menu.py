"""The flight menu against a bare ASGI app, on gunicorn with uvicorn workers (what `skycart serve` runs) and granian.

Six servers run side by side, each with one worker pinned to CPU 0 (`taskset`); wrk runs pinned
to CPU 1 and loads one of them at a time:

  bare   a raw ASGI callable answering a fixed JSON body: what the server itself can do
  warm   SkyCart's `GET /v1/flights/{id}/menu`, served from the per-process cache (no SQL)
  cold   the same menu with `SKYCART_MENU_CACHE_SECONDS=0`: rendered from SQLite every time

for each of the two servers. Every round loads all six once, in an order that rotates from
round to round, so a slow spell of the machine hits every variant alike; the tables show
medians, and a head-to-head table the median of the per-round ratios.

Then each server is stopped with SIGTERM under load, once per round, a fresh one each time:
eight clients (four on kept-alive connections, four on a new connection per request) keep
cold-menu requests in flight. Metering counts every request the server read, and the lifespan
shutdown flushes it, so stored requests minus answers received is the number of accepted
requests that failed; a refused connection, or one closed before the server read anything
("closed unread"), is not an accepted request.

`skycart serve --workers 1` serves the menu on gunicorn, the server it uses; the bare app runs
on gunicorn with the same worker class and settings, and granian, the one it does not use, from
its own command line with the closest settings: one worker, HTTP/1.1, uvloop, no access log of
its own, 25 s for in-flight requests. skycart.asgi says why gunicorn, from these figures.

    .venv/bin/python bench/menu.py [--rounds 8] [--seconds 4] [--connections 32]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

BARE_BODY = b'{"status":"ok"}'
BIN = Path(sys.executable).parent
BENCH_DIR = Path(__file__).resolve().parent
SKYCART_APP = "skycart.asgi:app"
TARGETS = ("bare", "warm", "cold")
# Wide enough for the tables when the output goes to a file or a pipe.
console = Console(width=None if sys.stdout.isatty() else 160)


async def bare_app(scope, receive, send) -> None:
    """The smallest useful ASGI app: lifespan, then the same 15 bytes of JSON for every request."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(BARE_BODY)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BARE_BODY})


def gunicorn(target: str, port: int) -> list[str]:
    if target == SKYCART_APP:
        return [sys.executable, "-m", "skycart.cli", "serve", "--port", str(port), "--workers", "1"]
    return [
        *(str(BIN / "gunicorn"), "--worker-class", "skycart.asgi.SkyCartWorker", "--bind", f"127.0.0.1:{port}"),
        *("--workers", "1", "--graceful-timeout", "25", "--keep-alive", "75", "--no-control-socket"),
        *("--log-level", "warning", target),
    ]


def granian(target: str, port: int) -> list[str]:
    return [
        *(str(BIN / "granian"), "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port)),
        *("--workers", "1", "--http", "1", "--no-ws", "--loop", "uvloop", "--log-level", "warning"),
        *("--workers-kill-timeout", "25", target),
    ]


SERVERS: dict[str, Callable[[str, int], list[str]]] = {"gunicorn": gunicorn, "granian": granian}


@dataclass
class Server:
    name: str
    target: str
    proc: subprocess.Popen
    url: str
    startup_s: float
    rps: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    errors: int = 0


@dataclass
class Stops:
    seconds: list[float] = field(default_factory=list)
    exit_codes: Counter = field(default_factory=Counter)
    answered: int = 0
    closed_unread: int = 0
    failed_accepted: int = 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pinned(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []


def _start(argv: list[str], env: dict[str, str], ready_url: str) -> tuple[subprocess.Popen, float]:
    started = time.monotonic()
    proc = subprocess.Popen(
        [*_pinned(0), *argv],
        env=env,
        cwd=BENCH_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    while time.monotonic() - started < 60 and proc.poll() is None:
        try:
            if httpx.get(ready_url, timeout=1).status_code == 200:
                return proc, time.monotonic() - started
        except httpx.TransportError:
            time.sleep(0.02)
    _kill(proc)
    raise RuntimeError(f"{' '.join(argv)} did not start")


def _kill(proc: subprocess.Popen) -> None:
    """Whatever is left of the server's process group, workers included."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def _stop(proc: subprocess.Popen) -> tuple[int, float]:
    """SIGTERM to the server's main process, as an orchestrator sends it; returns (exit code, seconds to exit)."""
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        code = -signal.SIGKILL
    seconds = time.monotonic() - started
    _kill(proc)
    return code, seconds


def _tree_pss_mib(pid: int) -> float:
    """Proportional set size of a process and all its descendants, in MiB."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    total_kib, stack = 0, [pid]
    while stack:
        current = stack.pop()
        stack.extend(children.get(current, []))
        with contextlib.suppress(OSError):
            match = re.search(r"^Pss:\s+(\d+) kB", Path(f"/proc/{current}/smaps_rollup").read_text(), re.M)
            total_kib += int(match.group(1)) if match else 0
    return total_kib / 1024


def _latency_ms(out: str, percentile: str) -> float:
    found = re.search(rf"{percentile}%\s+([\d.]+)(us|ms|s)", out)
    assert found is not None, f"wrk printed no {percentile}% latency"
    return float(found.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]


def _wrk(url: str, key: str, seconds: float, connections: int) -> tuple[float, float, float, int]:
    """(requests/s, p50 ms, p99 ms, non-2xx answers and socket errors)."""
    out = subprocess.run(
        [*_pinned(1), "wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-H", f"X-Api-Key: {key}", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sockets.groups())) if sockets else 0)
    return rps, _latency_ms(out, "50"), _latency_ms(out, "99"), errors


def _metered(database: Path, airline: str) -> int:
    with sqlite3.connect(database) as conn:
        query = "SELECT COALESCE(SUM(requests), 0) FROM usage_hours WHERE airline = ?"
        return conn.execute(query, (airline,)).fetchone()[0]


def _start_server(name: str, target: str, env: dict[str, str], menu_path: str) -> Server:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    if target == "bare":
        proc, startup = _start(SERVERS[name]("menu:bare_app", port), env, f"{base}/")
        return Server(name, target, proc, f"{base}/", startup)
    if target == "cold":
        env = {**env, "SKYCART_MENU_CACHE_SECONDS": "0"}
    proc, startup = _start(SERVERS[name](SKYCART_APP, port), env, f"{base}/readyz")
    return Server(name, target, proc, f"{base}{menu_path}", startup)


def _stop_under_load(name: str, *, env: dict[str, str], database: Path, key: str, menu_path: str) -> dict:
    """SIGTERM while eight clients keep cold-menu requests in flight; what the clients and metering saw."""
    metered_before = _metered(database, "SKA")
    server = _start_server(name, "cold", env, menu_path)
    outcomes: Counter = Counter()
    finished = threading.Event()

    def client(keep_alive: bool) -> None:
        limits = httpx.Limits() if keep_alive else httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(headers={"X-Api-Key": key}, limits=limits, timeout=30) as http:
            while not finished.is_set():
                try:
                    status = http.get(server.url).status_code
                except httpx.ConnectError:
                    return  # refused: the server no longer listens
                except httpx.TransportError:
                    outcomes["closed"] += 1
                    continue
                outcomes["answered" if status == 200 else "failed"] += 1

    threads = [threading.Thread(target=client, args=(i % 2 == 0,)) for i in range(8)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        code, seconds = _stop(server.proc)
    finally:
        finished.set()
        for thread in threads:
            thread.join(timeout=30)
        _kill(server.proc)
    read_unanswered = max(0, _metered(database, "SKA") - metered_before - outcomes["answered"])
    return {
        "code": code,
        "seconds": seconds,
        "answered": outcomes["answered"],
        "closed_unread": outcomes["closed"] - read_unanswered,
        "failed_accepted": outcomes["failed"] + read_unanswered,
    }


def _median(values: list[float], fmt: str = "{:.0f}") -> str:
    return fmt.format(statistics.median(values)) if values else "-"


def _tables(
    servers: dict[tuple[str, str], Server],
    memory: dict[str, float],
    idle_stops: dict[str, list[tuple[int, float]]],
    stops: dict[str, Stops],
    args: argparse.Namespace,
) -> list[Table]:
    load = Table(
        title=(
            f"Flight menu vs bare ASGI: 1 worker on CPU 0, wrk -c{args.connections} on CPU 1, "
            f"medians of {args.rounds} interleaved rounds of {args.seconds} s"
        ),
        title_justify="left",
    )
    columns = (
        "server",
        "bare req/s",
        "warm req/s",
        "warm p50 ms",
        "warm p99 ms",
        "warm p99/p50",
        "cold req/s",
        "warm/bare",
        "cold/bare",
    )
    for column in (*columns, "bare p99 ms", "cold p99 ms", "errors"):
        load.add_column(column, justify="left" if column == "server" else "right")
    for name in SERVERS:
        bare, warm, cold = (servers[(name, target)] for target in TARGETS)
        bare_rps = statistics.median(bare.rps)
        load.add_row(
            name,
            _median(bare.rps),
            _median(warm.rps),
            _median(warm.p50, "{:.2f}"),
            _median(warm.p99, "{:.2f}"),
            f"{statistics.median(x / y for x, y in zip(warm.p99, warm.p50, strict=True)):.2f}",
            _median(cold.rps),
            f"{statistics.median(warm.rps) / bare_rps:.3f}",
            f"{statistics.median(cold.rps) / bare_rps:.3f}",
            _median(bare.p99, "{:.2f}"),
            _median(cold.p99, "{:.2f}"),
            str(bare.errors + warm.errors + cold.errors),
        )

    first, second = SERVERS
    duel = Table(title=f"Head to head: {first}/{second}, median of the per-round ratios", title_justify="left")
    for column in ("target", "req/s ratio", f"rounds {first} faster", "p99 ratio"):
        duel.add_column(column, justify="left" if column == "target" else "right")
    for target in TARGETS:
        a, b = servers[(first, target)], servers[(second, target)]
        ratios = [x / y for x, y in zip(a.rps, b.rps, strict=True)]
        duel.add_row(
            target,
            f"{statistics.median(ratios):.3f}",
            f"{sum(r > 1 for r in ratios)} of {len(ratios)}",
            f"{statistics.median(x / y for x, y in zip(a.p99, b.p99, strict=True)):.3f}",
        )

    operations = Table(
        title=(
            "Memory of the warm server after the load (PSS, all its processes); start-up; SIGTERM when idle, "
            "and under load (8 clients, cold menu)"
        ),
        title_justify="left",
    )
    for column in ("server", "memory MiB", "start s", "idle stop s", "stop under load s", "exit codes"):
        operations.add_column(column, justify="left" if column == "server" else "right")
    for column in ("answered", "closed unread", "failed accepted"):
        operations.add_column(column, justify="right")
    for name in SERVERS:
        stop = stops[name]
        codes = stop.exit_codes + Counter(code for code, _ in idle_stops[name])
        operations.add_row(
            name,
            f"{memory[name]:.1f}",
            _median([servers[(name, target)].startup_s for target in TARGETS if target != "bare"], "{:.2f}"),
            _median([seconds for _, seconds in idle_stops[name]], "{:.2f}"),
            _median(stop.seconds, "{:.2f}"),
            ", ".join(f"{code} x{count}" for code, count in sorted(codes.items())),
            str(stop.answered),
            str(stop.closed_unread),
            str(stop.failed_accepted),
        )
    return [load, duel, operations]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (make bench-menu installs it)")
    for name in SERVERS:
        if not (BIN / name).exists():
            sys.exit(f"{name} is not installed next to {sys.executable}")
    from metering import _setup  # the same seeded scratch database as bench/metering.py, SKA unthrottled

    workdir = Path(tempfile.mkdtemp(prefix="skycart-bench-"))
    database = workdir / "bench.db"
    env = {name: value for name, value in os.environ.items() if not name.startswith(("SKYCART_", "GRANIAN_"))}
    env |= {
        "SKYCART_DATABASE_URL": f"sqlite:///{database}",
        "SKYCART_ACCESS_LOG": "false",
        "SKYCART_EMF_METRICS": "false",
        "SKYCART_LOG_LEVEL": "WARNING",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH_DIR), os.environ.get("PYTHONPATH")])),
    }
    started = time.monotonic()
    servers: dict[tuple[str, str], Server] = {}
    try:
        _, key, flight = _setup(env)
        menu_path = f"/v1/flights/{flight}/menu?currency=EUR"
        for name in SERVERS:
            for target in TARGETS:
                servers[(name, target)] = server = _start_server(name, target, env, menu_path)
                _wrk(server.url, key, 1, args.connections)  # warm-up
        order = list(servers)
        for round_no in range(args.rounds):
            shift = round_no * 5 % len(order)
            for combo in order[shift:] + order[:shift]:
                server = servers[combo]
                rps, p50, p99, errors = _wrk(server.url, key, args.seconds, args.connections)
                server.rps.append(rps)
                server.p50.append(p50)
                server.p99.append(p99)
                server.errors += errors
                console.print(
                    f"round {round_no + 1} {server.name:<8} {server.target:<4} "
                    f"{rps:9.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  errors {errors}",
                    highlight=False,
                )
        memory = {name: _tree_pss_mib(servers[(name, "warm")].proc.pid) for name in SERVERS}
        idle_stops: dict[str, list[tuple[int, float]]] = {name: [] for name in SERVERS}
        for (name, _), server in servers.items():
            idle_stops[name].append(_stop(server.proc))

        stops = {name: Stops() for name in SERVERS}
        for round_no in range(args.rounds):
            for name in list(SERVERS)[:: 1 if round_no % 2 else -1]:
                seen = _stop_under_load(name, env=env, database=database, key=key, menu_path=menu_path)
                stop = stops[name]
                stop.seconds.append(seen["seconds"])
                stop.exit_codes[seen["code"]] += 1
                stop.answered += seen["answered"]
                stop.closed_unread += seen["closed_unread"]
                stop.failed_accepted += seen["failed_accepted"]
                console.print(
                    f"stop {round_no + 1} {name:<8} exit {seen['code']} after {seen['seconds']:.2f} s, "
                    f"answered {seen['answered']}, closed unread {seen['closed_unread']}, "
                    f"failed accepted {seen['failed_accepted']}",
                    highlight=False,
                )
    finally:
        for server in servers.values():
            _kill(server.proc)
        shutil.rmtree(workdir, ignore_errors=True)
    for table in _tables(servers, memory, idle_stops, stops, args):
        console.print(table)
    console.print(f"{args.rounds} rounds in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
