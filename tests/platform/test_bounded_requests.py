"""Hostile clients against a real `skycart serve` process: huge bodies, slow headers, slow bodies, too many
connections. None of them may cost a worker more than a bounded amount of memory or pin it."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import product_body
from tests.metering.cluster import ServerProcess, one_server

FIFTY_MB = 50 * 1024 * 1024
# What a refused 50 MB body may cost the worker, at most.
RSS_BOUND_MIB = 20


@contextmanager
def _server(tmp_path: Path, **env: str) -> Iterator[tuple[ServerProcess, str]]:
    with one_server(tmp_path, **env) as (proc, _code, key):
        yield proc, key


def _worker_rss_mib(proc: ServerProcess) -> float:
    (worker,) = Path(f"/proc/{proc.proc.pid}/task/{proc.proc.pid}/children").read_text().split()
    for line in Path(f"/proc/{worker}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _connect(proc: ServerProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", proc.port), timeout=10)


def _answer(sock: socket.socket) -> tuple[int, dict]:
    """Status and JSON body of the one response on this connection (read until the server closes or it is whole)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(head.split()[1]), json.loads(body) if body else {}


def _send_huge(proc: ServerProcess, headers: str) -> tuple[int, dict, int]:
    """POST a 50 MB JSON array of `{}` to /v1/orders; (status, problem, bytes the server took before answering)."""
    chunk = b"{}," * 100_000
    sent = 0
    with closing(_connect(proc)) as sock:
        sock.sendall(
            f"POST /v1/orders HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n{headers}"
            f"content-length: {FIFTY_MB}\r\n\r\n".encode()
        )
        sock.settimeout(2)
        try:
            sock.sendall(b"[")
            while sent < FIFTY_MB - len(chunk):
                sock.sendall(chunk)
                sent += len(chunk)
        except (TimeoutError, ConnectionError):
            pass  # the server stopped reading: it has answered
        sock.settimeout(10)
        status, problem = _answer(sock)
    return status, problem, sent


@pytest.mark.parametrize("keyed", [False, True], ids=["without a key", "with a key"])
def test_a_50_mb_body_is_refused_before_it_is_parsed_and_the_worker_stays_small(tmp_path: Path, keyed: bool) -> None:
    with _server(tmp_path) as (proc, key):
        before = _worker_rss_mib(proc)
        status, problem, sent = _send_huge(proc, f"x-api-key: {key}\r\n" if keyed else "")
        after = _worker_rss_mib(proc)
        assert httpx.get(f"{proc.url}/healthz").status_code == 200, "the worker lives on"
    print(f"\n50 MB body {'with' if keyed else 'without'} a key: {status}, worker RSS {before:.0f} -> {after:.0f} MiB")
    assert (status, problem["code"]) == ((413, "payload_too_large") if keyed else (401, "unauthenticated"))
    assert after - before < RSS_BOUND_MIB
    assert sent < FIFTY_MB / 2, "answered long before the body was sent"


def test_a_chunked_body_past_the_json_limit_is_cut_off_while_it_is_read(tmp_path: Path) -> None:
    with _server(tmp_path, SKYCART_MAX_JSON_BYTES="65536") as (proc, key):

        def chunks() -> Iterator[bytes]:
            yield b"["
            for _ in range(100):
                yield b"{}," * 1000

        response = httpx.post(
            f"{proc.url}/v1/products",
            content=chunks(),
            headers={"x-api-key": key, "content-type": "application/json"},
        )
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "payload_too_large"


def test_an_import_may_be_larger_than_a_json_body(tmp_path: Path) -> None:
    rows = [{**product_body(f"SKU-{n}", ["EUR"]), "description": {"en": "x" * 200}} for n in range(500)]
    body = json.dumps(rows).encode()
    with _server(tmp_path, SKYCART_MAX_JSON_BYTES=str(len(body) // 2)) as (proc, key):
        client = httpx.Client(base_url=proc.url, headers={"x-api-key": key})
        assert (
            client.post("/v1/products", content=body, headers={"content-type": "application/json"}).status_code == 413
        )
        imported = client.post("/v1/products:import", content=body, headers={"content-type": "application/json"})
    assert imported.status_code == 200, imported.text


def test_slow_headers_are_cut_off_and_the_worker_keeps_serving(tmp_path: Path) -> None:
    with _server(tmp_path, SKYCART_HEADER_TIMEOUT_SECONDS="1") as (proc, _key):
        slow = [_connect(proc) for _ in range(28)]
        for sock in slow:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")  # and never the rest
        time.sleep(0.5)
        for sock in slow:
            sock.sendall(b"x-slow: 1\r\n")
        assert httpx.get(f"{proc.url}/healthz").status_code == 200
        time.sleep(1.5)
        answers = [_answer(sock) for sock in slow]
        for sock in slow:
            sock.close()
        assert httpx.get(f"{proc.url}/healthz").status_code == 200
    assert {(status, body["code"]) for status, body in answers} == {(408, "request_timeout")}, "all 28 were closed"


def test_a_stalled_body_is_cut_off_with_408(tmp_path: Path) -> None:
    with _server(tmp_path, SKYCART_BODY_TIMEOUT_SECONDS="1") as (proc, key), closing(_connect(proc)) as sock:
        sock.sendall(
            f"POST /v1/products HTTP/1.1\r\nhost: x\r\nx-api-key: {key}\r\ncontent-type: application/json\r\n"
            'content-length: 100\r\n\r\n{"sku":'.encode()
        )
        started = time.monotonic()
        status, body = _answer(sock)
        waited = time.monotonic() - started
        assert sock.recv(1) == b"", "then the connection is closed"
    assert (status, body["code"]) == (408, "request_timeout")
    assert waited < 5


def test_past_its_connection_bound_a_worker_answers_503_at_once(tmp_path: Path) -> None:
    with _server(tmp_path, SKYCART_MAX_CONNECTIONS_PER_WORKER="10") as (proc, _key):
        idle = [_connect(proc) for _ in range(10)]
        time.sleep(0.3)
        refused = httpx.get(f"{proc.url}/healthz")
        for sock in idle:
            sock.close()
        time.sleep(0.3)
        served = httpx.get(f"{proc.url}/healthz")
    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "service_unavailable" and refused.headers["retry-after"] == "1"
    assert served.status_code == 200
