"""Structured JSON logs, one object per line with `event` and any fields: on stdout, or shipped to CloudWatch Logs."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

from skycart.platform.scope import AIRLINE, REQUEST_ID

# The ASGI scope of the request being served, so every log line can name its airline and request id.
request_scope: ContextVar[dict[str, Any] | None] = ContextVar("skycart_request_scope", default=None)

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        scope = request_scope.get()
        if scope is not None:
            entry["airline"] = scope.get(AIRLINE, "anonymous")
            entry["request_id"] = scope.get(REQUEST_ID)
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str) -> None:
    # The JSON lines carry none of these: skip collecting them for every record (the logging HOWTO's
    # "Optimization" switches; the caller lookup walks the stack).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None
    root = logging.getLogger()
    root.handlers[:] = [_stdout()]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Access lines come from our own middleware later; uvicorn's are prose.
    logging.getLogger("uvicorn.access").disabled = True


def _stdout() -> logging.Handler:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    return handler


def ship_to_cloudwatch(settings: Any) -> logging.Handler | None:
    """Send every log line to CloudWatch Logs instead of stdout, batched from a background thread (watchtower).

    One path per line: a line shipped here is not printed too. On ECS the container's stdout goes through
    the awslogs driver to a separate boot log group, which then holds only what the app cannot ship itself
    (what the gunicorn master prints, a crash before logging starts, watchtower's own delivery warnings on
    stderr). Printing every line as well would ingest it twice and extract each EMF record twice.

    Called in each worker process after it starts. The log group belongs to the infrastructure
    (CloudFormation creates it with its retention), so it is never created here.
    """
    if not settings.log_group:
        return None
    import os
    import socket

    import watchtower

    from skycart.platform import aws

    client = aws.client("logs", settings)
    handler = watchtower.CloudWatchLogHandler(
        log_group_name=settings.log_group,
        log_stream_name=f"{socket.gethostname()}/{os.getpid()}",
        boto3_client=client,
        create_log_group=False,
        send_interval=settings.log_send_seconds,
    )
    handler.setFormatter(JsonFormatter())
    logging.getLogger().handlers[:] = [handler]
    return handler


def stop_shipping(handler: logging.Handler | None) -> None:
    """Send what is still queued, then stop (graceful shutdown); what is logged after that goes to stdout."""
    if handler is not None:
        handler.flush()
        handler.close()
        logging.getLogger().handlers[:] = [_stdout()]
