"""The warm flight menu: answered before routing, limited like any request, shared between processes through Redis."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from skycart.app import create_app
from skycart.cli import run_in_transaction
from skycart.config import Settings
from skycart.demo import seed
from skycart.flights.fastpath import answer as warm_menu
from skycart.metering.middleware import MeteringMiddleware
from skycart.platform.cache import SharedCache
from skycart.platform.migrate import upgrade
from tests.conftest import (
    AirlineHandle,
    _answers,
    _free_port,
    assert_problem,
    flight_body,
    product_body,
    scratch_database,
    service_missing,
)
from tests.metering.cluster import onboard, operator_key, private_redis, servers
from tests.test_scaling import UNLIMITED


def test_a_warm_menu_has_the_routes_bytes_and_headers_and_is_metered(airline: AirlineHandle) -> None:
    airline.product("FAST")
    flight = airline.flight(stock={"FAST": 4})
    path = f"/v1/flights/{flight['id']}/menu"
    cold = airline.client.get(path, params={"currency": "EUR"})
    warm = [airline.client.get(path, params={"currency": "EUR"}) for _ in range(3)]
    for response in (cold, *warm):
        assert response.status_code == 200
        assert response.content == cold.content
        assert response.headers["content-type"] == "application/json"
        assert response.headers["content-length"] == str(len(cold.content))
        assert {"x-request-id", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= response.headers.keys()
    assert len({r.headers["x-request-id"] for r in (cold, *warm)}) == 4
    time.sleep(0.8)  # two metering flushes
    usage = airline.client.get("/v1/usage", params={"granularity": "minute", "group_by": "route"}).json()
    menu_rows = [row for row in usage if row.get("route") == "/v1/flights/{flight_id}/menu"]
    assert sum(row["requests"] for row in menu_rows) == 4, usage


def test_warm_menus_are_rate_limited_with_the_full_refusal(make_airline) -> None:
    airline = make_airline(plan="basic")
    airline.product("LIM")
    flight = airline.flight(stock={"LIM": 1})
    path = f"/v1/flights/{flight['id']}/menu"
    answers = [airline.client.get(path) for _ in range(60)]
    refused = [r for r in answers if r.status_code == 429]
    assert answers[0].status_code == 200 and refused, [r.status_code for r in answers]
    for response in refused:
        assert_problem(response, 429, "rate_limited")
        assert int(response.headers["retry-after"]) >= 1
    assert {r.status_code for r in answers} == {200, 429}


def _store_calls(admin: httpx.Client) -> int:
    metrics = admin.get("/metrics").text
    return int(
        float(next(line for line in metrics.splitlines() if line.startswith("skycart_limiter_store_calls")).split()[-1])
    )


def test_a_refused_warm_menu_leases_at_most_once(make_airline, admin: httpx.Client) -> None:
    """The fast path's refusal is the route's answer: the route does not lease a second time for it."""
    airline = make_airline(plan="basic")
    airline.product("ONCE")
    flight = airline.flight(stock={"ONCE": 1})
    path = f"/v1/flights/{flight['id']}/menu"
    while airline.client.get(path).status_code != 429:  # spend the burst, with the menu warm
        pass
    before = _store_calls(admin)
    answers = [airline.client.get(path) for _ in range(20)]
    calls = _store_calls(admin) - before
    refused = sum(r.status_code == 429 for r in answers)
    print(f"\n{len(answers)} warm menus ({refused} refused) made {calls} lease calls")
    assert refused >= 10, [r.status_code for r in answers]
    assert calls <= len(answers), "at most one lease call per request"


def test_another_airline_asking_for_a_warm_menu_gets_404(make_airline) -> None:
    owner, other = make_airline(), make_airline()
    owner.product("MINE")
    flight = owner.flight(stock={"MINE": 2})
    path = f"/v1/flights/{flight['id']}/menu"
    assert owner.client.get(path).status_code == 200
    assert owner.client.get(path).status_code == 200  # warm now
    assert_problem(other.client.get(path), 404, "not_found")


def test_unusual_menu_queries_answer_as_the_route_does(airline: AirlineHandle) -> None:
    airline.product("Q", name={"en": "Tea", "de": "Tee"})
    flight = airline.flight(stock={"Q": 2})
    path = f"/v1/flights/{flight['id']}/menu"
    assert airline.client.get(path).status_code == 200
    assert airline.client.get(path, params={"locale": "en"}).status_code == 200
    assert_problem(airline.client.get(path, params={"currency": "eur"}), 422, "validation_error")
    assert_problem(airline.client.get(path, params={"locale": ""}), 422, "validation_error")
    repeated = airline.client.get(f"{path}?locale=en&locale=de")
    assert repeated.status_code == 200 and repeated.json()["items"][0]["name"] == "Tee"  # the last one counts
    extra = airline.client.get(path, params={"utm": "seat", "locale": "de"})
    assert extra.status_code == 200 and extra.json()["items"][0]["name"] == "Tee"
    encoded = airline.client.get(f"{path}?locale=%64%65")
    assert encoded.status_code == 200 and encoded.json()["items"][0]["name"] == "Tee"
    unknown = flight["id"][:-1] + ("0" if flight["id"][-1] != "0" else "1")
    assert_problem(airline.client.get(f"/v1/flights/{unknown}/menu"), 404, "not_found")


def test_the_fast_path_alone_answers_a_warm_menu_and_passes_everything_else_on(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/fast.db", log_level="WARNING", access_log=False)
    upgrade(settings)
    keys = dict(run_in_transaction(settings, lambda session: seed(session, progress_console=None)))
    app = create_app(settings)
    passed_on: list[str] = []

    async def route_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        """What FastAPI would have done: here, only noted, so a warm answer provably came from the fast path."""
        passed_on.append(scope["path"] + "?" + scope["query_string"].decode())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    fast = MeteringMiddleware(route_app, None, access_log_enabled=False, answer=warm_menu)

    async def call(path: str, query: bytes, key: str) -> tuple[int, bytes]:
        scope = {
            "type": "http",
            "method": "GET",
            "path": path,
            "query_string": query,
            "headers": [(b"x-api-key", key.encode())],
            "app": app,
        }
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await fast(scope, None, send)
        return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])

    async def scenario() -> None:
        async with app.router.lifespan_context(app):
            airline_key = next(key for label, key in keys.items() if label != "operator")
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://skycart") as client:
                client.headers["X-Api-Key"] = airline_key
                flight = (await client.get("/v1/flights")).json()["items"][0]["id"]
                path = f"/v1/flights/{flight}/menu"
                assert await call(path, b"", airline_key) == (204, b"")  # cold: the route renders it
                rendered = await client.get(path)
                assert rendered.status_code == 200
                assert await call(path, b"", airline_key) == (200, rendered.content)
                assert passed_on == [f"{path}?"]
                for query, key in (
                    (b"currency=XXX", airline_key),  # never rendered: not in the cache
                    (b"locale=en&locale=en", airline_key),  # repeated: the route decides
                    (b"", "sk_unknown"),
                    (b"", keys["operator"]),
                ):
                    assert (await call(path, query, key))[0] == 204
                assert len(passed_on) == 5

    asyncio.run(scenario())


def _count_renders() -> tuple[list[float], Any]:
    renders: list[float] = []

    async def render() -> bytes:
        renders.append(time.monotonic())
        return f'{{"n":{len(renders)}}}'.encode()

    return renders, render


def test_a_menu_rendered_by_one_process_is_served_by_another_from_redis_no_older_than_the_limit() -> None:
    if not _answers(6379):
        service_missing("Redis on 127.0.0.1:6379")
    key = ("airline-" + str(time.time_ns()), "flight", None, "EUR")

    async def scenario() -> None:
        first_redis = aioredis.from_url("redis://127.0.0.1:6379/0")
        second_redis = aioredis.from_url("redis://127.0.0.1:6379/0")
        first, second = (
            SharedCache("menu", seconds=0.6, redis=first_redis),
            SharedCache("menu", seconds=0.6, redis=second_redis),
        )
        renders, render = _count_renders()
        try:
            body = await first.get_or_render(key, render)
            await asyncio.sleep(0.3)
            assert await second.get_or_render(key, render) == body and len(renders) == 1
            assert second.shared_hits == 1
            # The copy second took from Redis was rendered 0.3 s earlier: it lapses with the original.
            await asyncio.sleep(0.35)
            assert second.get(key) is None and first.get(key) is None
            assert await second.get_or_render(key, render) != body and len(renders) == 2
        finally:
            await first_redis.aclose()
            await second_redis.aclose()

    asyncio.run(scenario())


def test_without_redis_the_menu_cache_renders_from_the_database_and_counts_the_failures() -> None:
    async def scenario() -> None:
        gone = aioredis.from_url(f"redis://127.0.0.1:{_free_port()}/0", socket_connect_timeout=0.2)
        cache = SharedCache("menu", seconds=1.0, redis=gone)
        renders, render = _count_renders()
        try:
            first = await cache.get_or_render(("a", "f", None, None), render)
            assert await cache.get_or_render(("a", "f", None, None), render) == first  # level 1 still works
            assert len(renders) == 1 and cache.shared_errors == 2  # the read and the write
        finally:
            await gone.aclose()

    asyncio.run(scenario())


def test_a_busy_menu_is_rendered_again_before_it_expires_and_never_served_past_its_bound() -> None:
    """Steady reads of a warm key never find it missing (the next copy is rendered in the background from
    half its life on), and no read gets a copy older than the bound."""

    async def scenario() -> None:
        cache = SharedCache("menu", seconds=0.3)
        started: dict[bytes, float] = {}

        async def render() -> bytes:
            body = f'{{"n":{len(started)}}}'.encode()
            started[body] = time.time()
            await asyncio.sleep(0.01)
            return body

        key = ("a", "f", None, None)
        await cache.get_or_render(key, render)
        misses, oldest = 0, 0.0
        until = time.monotonic() + 1.5
        while time.monotonic() < until:
            body = cache.get(key)
            if body is None:
                misses += 1
                body = await cache.get_or_render(key, render)
            oldest = max(oldest, time.time() - started[body])
            await asyncio.sleep(0.005)
        print(f"\n{len(started)} renderings in 1.5 s, {misses} misses, oldest copy served {oldest * 1000:.0f} ms")
        assert misses == 0
        assert oldest < 0.3
        assert 4 <= len(started) <= 12 and cache.refreshes == len(started) - 1

    asyncio.run(scenario())


def test_concurrent_misses_share_one_rendering() -> None:
    async def scenario() -> None:
        cache = SharedCache("menu", seconds=1.0)
        renders: list[int] = []

        async def slow_render() -> bytes:
            renders.append(1)
            await asyncio.sleep(0.05)
            return b"{}"

        bodies = await asyncio.gather(*(cache.get_or_render(("a", "f", "en", "EUR"), slow_render) for _ in range(20)))
        assert bodies == [b"{}"] * 20 and len(renders) == 1

    asyncio.run(scenario())


@pytest.mark.mariadb_only
def test_processes_share_menus_through_redis(backend: str, tmp_path: Path) -> None:
    """Two server processes on one Redis: the second serves the first's rendering (its hit counter shows it)."""
    del backend  # MariaDB only: the cluster helpers start real `skycart serve` processes on it
    with scratch_database("mariadb", tmp_path) as url:
        upgrade(Settings(database_url=url))
        op = operator_key(url)
        with private_redis() as (redis_url, _proc), servers(2, url, SKYCART_REDIS_URL=redis_url) as procs:
            first, second = (httpx.Client(base_url=p.url) for p in procs)
            with httpx.Client(base_url=procs[0].url, headers={"X-Api-Key": op}) as admin:
                _code, key = onboard(admin, UNLIMITED)
            for client in (first, second):
                client.headers["X-Api-Key"] = key
            assert first.post("/v1/products", json=product_body("S", ["EUR"])).status_code == 201
            flight = first.post("/v1/flights", json=flight_body()).json()
            first.put(f"/v1/flights/{flight['id']}/inventory", json={"items": [{"sku": "S", "quantity": 3}]})
            path = f"/v1/flights/{flight['id']}/menu"
            assert first.get(path).status_code == 200
            assert second.get(path).content == first.get(path).content
            seen = _menu_counters(procs[1].url, op)
            assert seen["skycart_menu_shared_hits_total"] == 1 and seen["skycart_menu_renders_total"] == 0, seen
            first.close()
            second.close()


def _menu_counters(base_url: str, operator_key: str) -> dict[str, float]:
    text = httpx.get(f"{base_url}/metrics", headers={"X-Api-Key": operator_key}).text
    return {
        name: float(value)
        for name, value in (line.split() for line in text.splitlines() if line.startswith("skycart_menu_"))
    }
