"""The error handlers: every failure is problem+json, and a crash keeps the connection usable."""

from __future__ import annotations

import threading
import time

import httpx
import uvicorn
from fastapi import FastAPI

from skycart.errors import install_error_handlers
from tests.conftest import _free_port, assert_problem


def _crashing_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/crash")
    async def crash() -> dict:
        raise RuntimeError("boom")

    @app.get("/ok")
    async def ok() -> dict:
        return {"ok": True}

    return app


def test_an_unexpected_error_is_a_500_problem_and_the_connection_survives() -> None:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(_crashing_app(), host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            body = assert_problem(client.get("/crash"), 500, "internal_error")
            assert "boom" not in body["detail"], "internals are not leaked"
            assert client.get("/ok").json() == {"ok": True}, "the same keep-alive connection still works"
            assert_problem(client.get("/nowhere"), 404, "not_found")
            assert_problem(client.post("/ok"), 405, "method_not_allowed")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
