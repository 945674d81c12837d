"""Domain errors and the handlers that turn every failure into RFC 9457 problem+json."""

from __future__ import annotations

import logging
import time
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("skycart.errors")


class Problem(BaseModel):
    """RFC 9457 problem details with SkyCart's stable `code`."""

    type: str = Field(examples=["https://skycart.dev/problems/not_found"])
    title: str
    status: int
    detail: str
    code: str
    errors: list[dict[str, Any]] | None = None


class DomainError(Exception):
    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


class NotFound(DomainError):
    status = 404
    code = "not_found"
    title = "Not found"


class Unauthenticated(DomainError):
    status = 401
    code = "unauthenticated"
    title = "Authentication required"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class ValidationFailed(DomainError):
    status = 422
    code = "validation_error"
    title = "Invalid input"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title = "Conflict"


class AlreadyExists(DomainError):
    status = 409
    code = "already_exists"
    title = "Already exists"


class OutOfStock(DomainError):
    status = 409
    code = "out_of_stock"
    title = "Out of stock"


class PaymentDeclined(DomainError):
    status = 402
    code = "payment_declined"
    title = "Payment declined"


class RestrictedItem(DomainError):
    status = 422
    code = "restricted_item"
    title = "Restricted item"


class LimitExceeded(DomainError):
    status = 422
    code = "limit_exceeded"
    title = "Per-seat limit exceeded"


class IdempotencyKeyRequired(DomainError):
    status = 400
    code = "idempotency_key_required"
    title = "Idempotency-Key header required"


class IdempotencyKeyReused(DomainError):
    status = 422
    code = "idempotency_key_reused"
    title = "Idempotency-Key reused with another request"


class IdempotencyInProgress(DomainError):
    status = 409
    code = "idempotency_in_progress"
    title = "Request with this Idempotency-Key in progress"


class ProductInUse(DomainError):
    status = 409
    code = "product_in_use"
    title = "Product in use"


class InvalidTransition(DomainError):
    status = 409
    code = "invalid_status_transition"
    title = "Order status does not allow this"


class PayloadTooLarge(DomainError):
    status = 413
    code = "payload_too_large"
    title = "Payload too large"


class UnsupportedMediaType(DomainError):
    status = 415
    code = "unsupported_media_type"
    title = "Unsupported media type"


class TooManyPixels(DomainError):
    status = 422
    code = "too_many_pixels"
    title = "Image has too many pixels"


class TooManyImages(DomainError):
    status = 409
    code = "too_many_images"
    title = "Product has too many images"


class FeatureNotInPlan(DomainError):
    status = 403
    code = "feature_not_in_plan"
    title = "Feature not in plan"


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"
    title = "Rate limit exceeded"


class QuotaExceeded(DomainError):
    status = 429
    code = "quota_exceeded"
    title = "Monthly request quota used up"


class PeriodClosed(DomainError):
    status = 409
    code = "period_closed"
    title = "Billing period closed"


class PlanInUse(DomainError):
    status = 409
    code = "plan_in_use"
    title = "Plan in use"


class PlanRetired(DomainError):
    status = 409
    code = "plan_retired"
    title = "Plan retired"


class PlanChangeInEffect(DomainError):
    status = 409
    code = "plan_change_in_effect"
    title = "Plan change already in effect"


class WebhookUrlRefused(DomainError):
    status = 422
    code = "webhook_url_refused"
    title = "Webhook URL refused"


class WebhooksNotConfigured(DomainError):
    status = 503
    code = "webhooks_not_configured"
    title = "Webhooks are not configured on this platform"


class ServiceUnavailable(DomainError):
    status = 503
    code = "service_unavailable"
    title = "Service unavailable"


def problem_body(status: int, code: str, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"https://skycart.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


def problem_response(
    status: int, code: str, title: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    return Response(
        orjson.dumps(problem_body(status, code, title, detail, **extra)),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _jsonable_errors(errors: Any) -> list[dict[str, Any]]:
    out = []
    for err in errors:
        out.append(
            {
                "loc": [str(part) for part in err.get("loc", ())],
                "message": str(err.get("msg", "invalid")),
                "type": str(err.get("type", "value_error")),
            }
        )
    return out


_HTTP_CODES = {
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    406: ("not_acceptable", "Not acceptable"),
    413: ("payload_too_large", "Payload too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
}


# How long a client is asked to wait before it tries again while the database is away.
UNAVAILABLE_RETRY_SECONDS = 2


def database_unavailable(exc: BaseException) -> bool:
    """The database could not be reached or did not answer in time: the request may be tried again."""
    if isinstance(exc, PoolTimeout | OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


_unavailable_log = {"next": 0.0, "refused": 0}


def unavailable_response(exc: BaseException) -> Response:
    """503 with Retry-After, logged by the error's kind and code only (never the statement or its values).

    At most one line a second: an outage refuses every request, and a line each would flood the log.
    """
    _unavailable_log["refused"] += 1
    now = time.monotonic()
    if now >= _unavailable_log["next"]:
        orig = getattr(exc, "orig", None)
        code = orig.args[0] if orig is not None and orig.args and isinstance(orig.args[0], int) else None
        refused, _unavailable_log["refused"], _unavailable_log["next"] = _unavailable_log["refused"], 0, now + 1
        log.warning(
            "database_unavailable",
            extra={"error": type(orig or exc).__name__, "error_code": code, "refused_since_last_line": refused},
        )
    return problem_response(
        503,
        "service_unavailable",
        "Service unavailable",
        "the database is not answering; try again shortly",
        {"Retry-After": str(UNAVAILABLE_RETRY_SECONDS)},
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_request: Request, exc: DomainError) -> Response:
        return problem_response(exc.status, exc.code, exc.title, exc.detail, exc.headers, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> Response:
        errors = _jsonable_errors(exc.errors())
        first = errors[0] if errors else {"loc": [], "message": "invalid request"}
        where = ".".join(first["loc"]) or "request"
        return problem_response(422, "validation_error", "Invalid input", f"{where}: {first['message']}", errors=errors)

    @app.exception_handler(DBAPIError)
    @app.exception_handler(PoolTimeout)
    async def _database(_request: Request, exc: Exception) -> Response:
        if database_unavailable(exc):
            return unavailable_response(exc)
        raise exc

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> Response:
        code, title = _HTTP_CODES.get(exc.status_code, (f"http_{exc.status_code}", HTTPStatus(exc.status_code).phrase))
        detail = exc.detail if isinstance(exc.detail, str) else title
        return problem_response(exc.status_code, code, title, detail, dict(exc.headers or {}))

    app.add_middleware(UnexpectedErrorMiddleware)


class UnexpectedErrorMiddleware:
    """Answers an unhandled exception with a 500 problem and keeps the connection usable.

    (Starlette's catch-all handler re-raises to the server, which then drops a keep-alive connection.)
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception as exc:
            if database_unavailable(exc) and not started:
                # Raised outside the routes (e.g. the key lookup before a body is read): the same 503.
                await unavailable_response(exc)(scope, receive, send)
                return
            log.exception("unhandled_error", extra={"route": getattr(scope.get("route"), "path", None)})
            if started:
                raise
            response = problem_response(500, "internal_error", "Internal error", "An unexpected error occurred.")
            await response(scope, receive, send)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries so clients (and schemathesis) know errors are problem+json."""
    return {
        status: {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": HTTPStatus(status).phrase}
        for status in statuses
    }
