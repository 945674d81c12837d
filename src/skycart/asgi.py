"""What servers run: `app` for any ASGI server (`uvicorn skycart.asgi:app`), and `main`, the
production server behind `skycart serve`: a gunicorn master supervising uvicorn workers.

Why gunicorn with uvicorn workers and not granian: bench/menu.py serves the flight menu and a
bare ASGI app from one worker pinned to one core on each, in interleaved rounds (bench/README.md
has the table). Throughput does not decide it. Since the warm menu is answered before routing,
granian serves it faster (20.6k against 14.9k requests/s, every round, p99 8.0 against 9.2 ms at
32 connections); on the bare app gunicorn was ahead in every round (38.2k against 35.7k), on the
cold menu they were even; with either server the warm menu is well past a quarter of the bare
app's rate with p99 under 10 ms. Master and worker together took 91 and 93 MiB. SIGTERM under
load drained every accepted request on both, metering was flushed and the exit code was 0;
granian stopped faster (0.07 s against 0.4 s) and closed fewer connections before reading them,
which no client behind a load balancer that deregisters a task before stopping it sees. What
settles it is a request that outlives the stop: uvicorn gives in-flight requests
IN_FLIGHT_SECONDS, then cancels them and still runs the app's lifespan shutdown (metering and
logs flushed, pools closed); granian's only bound is killing the worker (no lifespan shutdown,
that worker's unflushed metering lost: billing truth), and it exits 0 all the same. And gunicorn
replaces a worker whose event loop stops answering its heartbeat; granian does not. A task that
needs more warm-menu throughput gets another worker or another task; lost usage cannot be had back.

The master imports neither the app nor anything that opens a connection, and no --preload:
each worker builds the app after the fork, and its lifespan builds the engine, the Redis client
and the log shipping in the process that uses them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn_worker import UvicornWorker

from skycart.config import get_settings

# SIGTERM to exit: in-flight requests, then the lifespan shutdown in every worker. ECS waits 30 s by default.
GRACEFUL_SECONDS = 25
# In-flight requests get this long after SIGTERM; the lifespan shutdown (final metering flush) has the rest.
IN_FLIGHT_SECONDS = 20
# Longer than a load balancer's idle timeout (ALB: 60 s), so it never sends on a connection the server closed.
KEEP_ALIVE_SECONDS = 75
# A worker whose event loop misses its heartbeat this long is killed and replaced.
HEARTBEAT_SECONDS = 30


def __getattr__(name: str) -> Any:
    """`app` is built on first use, in the process that serves it: never in the gunicorn master."""
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from skycart.app import create_app

    globals()["app"] = built = create_app()
    return built


_TIMEOUT_BODY = json.dumps(
    {
        "type": "https://skycart.dev/problems/request_timeout",
        "title": "Request timeout",
        "status": 408,
        "detail": "the request's headers or body did not arrive in time",
        "code": "request_timeout",
    }
).encode()
REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/problem+json\r\nconnection: close\r\n"
    + f"content-length: {len(_TIMEOUT_BODY)}\r\n\r\n".encode()
    + _TIMEOUT_BODY
)


_BUSY_BODY = json.dumps(
    {
        "type": "https://skycart.dev/problems/service_unavailable",
        "title": "Service unavailable",
        "status": 503,
        "detail": "this server has as many connections open as it serves; retry",
        "code": "service_unavailable",
    }
).encode()


async def over_capacity(scope: Any, receive: Any, send: Any) -> None:
    """The answer past a worker's connection bound: problem+json like every other refusal, then close."""
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(_BUSY_BODY)).encode()),
                (b"retry-after", b"1"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _BUSY_BODY})


class TimedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with read deadlines, so slow clients cannot pin a worker's connections.

    A request's headers must arrive within SKYCART_HEADER_TIMEOUT_SECONDS of its first byte (or of the
    connection), and each part of its body within SKYCART_BODY_TIMEOUT_SECONDS of the one before; past
    that the connection gets a 408 (if nothing was answered yet) and is closed. uvicorn has neither.

    A worker serves SKYCART_MAX_CONNECTIONS_PER_WORKER connections (and as many requests in flight) at
    once; a request on a connection past that is answered 503 problem+json at once, and the connection
    closed. This is uvicorn's `limit_concurrency`, with its plain-text answer replaced.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = get_settings()
        self.header_seconds = settings.header_timeout_seconds
        self.body_seconds = settings.body_timeout_seconds
        self.max_connections = settings.max_connections_per_worker
        self.read_deadline: asyncio.TimerHandle | None = None

    def _arm(self, seconds: float) -> None:
        if self.read_deadline is not None:
            self.read_deadline.cancel()
        self.read_deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self.read_deadline is not None:
            self.read_deadline.cancel()
            self.read_deadline = None

    def _too_slow(self) -> None:
        self.read_deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(REQUEST_TIMEOUT)
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_seconds)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.read_deadline is None:  # a further request on a kept-alive connection
            self._arm(self.header_seconds)

    def on_headers_complete(self) -> None:
        if len(self.connections) > self.max_connections or len(self.tasks) >= self.max_connections:
            # uvicorn runs `self.app` for this request: the refusal instead, for this request only.
            serving, self.app = self.app, over_capacity
            try:
                super().on_headers_complete()
            finally:
                self.app = serving
        else:
            super().on_headers_complete()
        if self.scope.get("method") in ("GET", "HEAD"):
            self._disarm()
        else:
            self._arm(self.body_seconds)

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._arm(self.body_seconds)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()


class SkyCartWorker(UvicornWorker):
    CONFIG_KWARGS = {
        **UvicornWorker.CONFIG_KWARGS,
        "lifespan": "on",
        "timeout_graceful_shutdown": IN_FLIGHT_SECONDS,
        "http": TimedHttpProtocol,
    }

    def init_signals(self) -> None:
        super().init_signals()
        # uvicorn re-raises SIGTERM after its graceful shutdown: a finished graceful stop exits 0.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))


class Master(Arbiter):
    # gunicorn's SIGINT sends workers SIGQUIT, which uvicorn workers ignore until they are killed:
    # Ctrl-C stops as gracefully as SIGTERM instead.
    handle_int = Arbiter.handle_term


def stop_with_master(server: Any, worker: Any) -> None:
    """gunicorn's post_fork hook: a worker whose master dies, even by SIGKILL, gets SIGTERM and stops gracefully."""
    if sys.platform != "linux":
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != worker.ppid:  # the master died before the line above
        sys.exit(0)


def server_logging(level: str) -> dict[str, Any]:
    """gunicorn's own lines as JSON on stdout, like the app's; its access log stays off (the app writes one)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "skycart.platform.logging.JsonFormatter"}},
        "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}},
        "root": {"level": level, "handlers": ["stdout"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": ["stdout"], "propagate": False},
            "gunicorn.access": {"handlers": [], "propagate": False},
        },
    }


class Server(BaseApplication):
    def __init__(self, *, bind: str, workers: int, log_level: str) -> None:
        self.options = {
            "bind": [bind],
            "workers": workers,
            "worker_class": SkyCartWorker,
            "graceful_timeout": GRACEFUL_SECONDS,
            "keepalive": KEEP_ALIVE_SECONDS,
            "timeout": HEARTBEAT_SECONDS,
            "preload_app": False,
            "post_fork": stop_with_master,
            # gunicorn's control socket path is shared by every gunicorn of the same user: one server must not take it.
            "control_socket_disable": True,
            "proc_name": "skycart",
            "loglevel": log_level.lower(),
            "logconfig_dict": server_logging(log_level.upper()),
        }
        super().__init__()

    def load_config(self) -> None:
        for name, value in self.options.items():
            self.cfg.set(name, value)

    def load(self) -> Any:
        from skycart.asgi import app  # in each worker, after the fork

        return app

    def run(self) -> None:
        Master(self).run()


def main(argv: list[str] | None = None) -> None:
    """The gunicorn master. `skycart serve` resolves the settings, then replaces itself with this."""
    parser = argparse.ArgumentParser(prog="skycart serve")
    parser.add_argument("--bind", required=True, help="host:port, or [ipv6]:port")
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    Server(bind=args.bind, workers=args.workers, log_level=args.log_level).run()
