"""What metering and the Redis-backed limiter cost on the request path.

Serves the flight menu (`GET /v1/flights/{id}/menu`) from one server process per variant, all
pinned to one core and up at the same time, loads one at a time with wrk pinned to the other core,
and compares three variants in the same run, interleaved round by round (the order rotates each
round; every few rounds all servers are replaced by fresh processes):

  off       metering and limits switched off (requests keep their ids)
  metering  metering middleware and flusher on, limits off
  limited   metering on, and the limiter leasing from Redis

each for two ways the warm menu is served:

  fast      the fast path: answered by the metering layer from process memory, before routing
  routed    the same cached bytes through FastAPI's routing and dependencies (an extra query
            parameter the fast path does not know sends it there): the menu as it was served
            before the fast path existed, and the setting the 3 % / 8 % targets were first set on

It prints the median requests/s of each variant, the median over rounds of its ratio to `off` of
the same round and menu, the median p99, and the limiter's Redis calls per second in the `limited`
runs (read from /metrics).

    .venv/bin/python bench/metering.py [--restarts 4] [--rounds 6] [--warmup 16] [--seconds 3] [--connections 32]
                                       [--menu fast|routed|both]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

VARIANTS = {
    "off": {"SKYCART_METERING_ENABLED": "false", "SKYCART_LIMITS_ENABLED": "false"},
    "metering": {"SKYCART_METERING_ENABLED": "true", "SKYCART_LIMITS_ENABLED": "false"},
    "limited": {"SKYCART_METERING_ENABLED": "true", "SKYCART_LIMITS_ENABLED": "true"},
}
console = Console()
Run = tuple[float, float, int, float, float]  # req/s, p99 ms, non-2xx, Redis calls/s, CPU µs per request


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pinned(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []


def _serve(env: dict[str, str], port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [*_pinned(0), sys.executable, "-m", "skycart.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def _tree_cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process and all its descendants (the server's master and worker)."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = fields
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    ticks, stack = 0, [pid]
    while stack:
        current = stack.pop()
        stack.extend(children.get(current, []))
        if current in stats:
            ticks += int(stats[current][11]) + int(stats[current][12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _wrk(url: str, key: str, seconds: int, connections: int) -> tuple[float, float, int]:
    out = subprocess.run(
        [*_pinned(1), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-H", f"X-Api-Key: {key}", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, float(p99.group(1)) * scale, int(non2xx.group(1)) if non2xx else 0


def _store_calls(base: str, operator: str) -> float:
    text = httpx.get(f"{base}/metrics", headers={"X-Api-Key": operator}).text
    match = re.search(r"^skycart_limiter_store_calls_total ([\d.e+]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def _setup(env: dict[str, str]) -> tuple[str, str, str]:
    """Seed the demo, put its first airline on an unthrottled plan; returns (operator key, airline key, flight id)."""
    demo = subprocess.run(
        [sys.executable, "-m", "skycart.cli", "demo"], env=env, capture_output=True, text=True, check=True
    ).stdout
    keys = dict(line.split() for line in demo.splitlines()[1:])
    port = _free_port()
    proc = _serve(env, port)
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, headers={"X-Api-Key": keys["operator"]}) as admin:
            admin.post(
                "/admin/plans",
                json={
                    "code": "bench",
                    "name": "Bench",
                    "monthly_request_quota": None,
                    "overage": True,
                    "rate_limit_per_second": "100000",
                    "burst": 100000,
                    "features": [],
                    "monthly_fee": "0",
                    "revenue_share_bps": 0,
                    "currency": "EUR",
                },
            )
            admin.put("/admin/airlines/SKA/plan", json={"plan": "bench"}).raise_for_status()
        flight = httpx.get(f"{base}/v1/flights", headers={"X-Api-Key": keys["SKA"]}).json()["items"][0]["id"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    return keys["operator"], keys["SKA"], flight


def _measure(base: str, url: str, key: str, operator: str, pid: int, name: str, args: argparse.Namespace) -> Run:
    calls_before = _store_calls(base, operator) if name == "limited" else 0.0
    cpu_before = _tree_cpu_seconds(pid)
    rps, p99, non2xx = _wrk(url, key, args.seconds, args.connections)
    # CPU per request is steadier than requests/s when other work shares the machine.
    cpu_us = (_tree_cpu_seconds(pid) - cpu_before) * 1e6 / (rps * args.seconds)
    calls = (_store_calls(base, operator) - calls_before) / args.seconds if name == "limited" else 0.0
    return rps, p99, non2xx, calls, cpu_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--restarts", type=int, default=4, help="fresh server processes this many times")
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds per set of servers")
    parser.add_argument("--warmup", type=int, default=16, help="seconds of load on each fresh server first")
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--menu", choices=("fast", "routed", "both"), default="both")
    parser.add_argument("--redis-url", default=os.environ.get("SKYCART_REDIS_URL", "redis://127.0.0.1:6379/15"))
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (make bench-metering installs it)")
    workdir = Path(tempfile.mkdtemp(prefix="skycart-bench-"))
    base_env = {
        **os.environ,
        "SKYCART_DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
        "SKYCART_ACCESS_LOG": "false",
        "SKYCART_EMF_METRICS": "false",
        "SKYCART_LOG_LEVEL": "WARNING",
        "SKYCART_REDIS_URL": args.redis_url,
    }
    operator, key, flight = _setup(base_env)
    menus = {"fast": "", "routed": "&via=route"}
    menus = {name: query for name, query in menus.items() if args.menu in (name, "both")}
    combos = [(menu, name) for menu in menus for name in VARIANTS]
    results: dict[tuple[str, str], list[Run]] = {combo: [] for combo in combos}
    for restart in range(args.restarts):
        # One server per variant, all up at once, so that each round measures them seconds apart:
        # this machine's speed drifts over minutes, and a new process draws a new memory layout.
        servers: dict[str, tuple[subprocess.Popen, str]] = {}
        try:
            for name in VARIANTS:
                port = _free_port()
                servers[name] = (_serve({**base_env, **VARIANTS[name]}, port), f"http://127.0.0.1:{port}")
            # A fresh server runs slow for its first several seconds under load (about 12 s here).
            for menu, name in combos:
                url = f"{servers[name][1]}/v1/flights/{flight}/menu?currency=EUR{menus[menu]}"
                _wrk(url, key, max(1, args.warmup // len(menus)), args.connections)
            for round_no in range(args.rounds):
                shift = (restart * args.rounds + round_no) % len(combos)
                for menu, name in combos[shift:] + combos[:shift]:
                    proc, base = servers[name]
                    url = f"{base}/v1/flights/{flight}/menu?currency=EUR{menus[menu]}"
                    run = _measure(base, url, key, operator, proc.pid, name, args)
                    results[(menu, name)].append(run)
                    console.print(
                        f"set {restart + 1} round {round_no + 1} {menu:<6} {name:<9} {run[0]:9.0f} req/s  "
                        f"p99 {run[1]:6.1f} ms  CPU {run[4]:6.1f} µs/request  non-2xx {run[2]}"
                    )
        finally:
            for proc, _base in servers.values():
                proc.send_signal(signal.SIGTERM)
            for proc, _base in servers.values():
                proc.wait(timeout=30)
    shutil.rmtree(workdir, ignore_errors=True)

    rounds = args.restarts * args.rounds
    table = Table(
        title=f"warm flight menu, 1 server process per variant, {rounds} interleaved rounds of {args.seconds} s "
        f"({args.restarts} sets of servers)"
    )
    columns = ("menu", "variant", "median req/s", "vs off (median of rounds)", "CPU µs/request", "vs off by CPU")
    for column in (*columns, "median p99 ms", "non-2xx", "Redis calls/s"):
        table.add_column(column, justify="right")
    for (menu, name), runs in results.items():
        offs = results[(menu, "off")]
        ratios = [run[0] / off[0] for run, off in zip(runs, offs, strict=True)]
        # A server held at full load by wrk serves in inverse proportion to its CPU per request.
        cpu_ratios = [off[4] / run[4] for run, off in zip(runs, offs, strict=True)]
        table.add_row(
            menu,
            name,
            f"{statistics.median(r[0] for r in runs):.0f}",
            f"{statistics.median(ratios):.3f}",
            f"{statistics.median(r[4] for r in runs):.1f}",
            f"{statistics.median(cpu_ratios):.3f}",
            f"{statistics.median(r[1] for r in runs):.1f}",
            str(sum(r[2] for r in runs)),
            f"{statistics.median(r[3] for r in runs):.1f}" if name == "limited" else "-",
        )
    console.print(table)


if __name__ == "__main__":
    main()
