"""The plan book's cache: terms past half their life are reloaded in the background while still served, so
no request waits on their expiry; none is served past its ttl; a forgotten airline is never re-cached from
a load that began before the change."""

from __future__ import annotations

import asyncio
import time

import httpx

from skycart.billing.service import PlanBook
from skycart.platform.db import create_engine, create_sessionmaker
from skycart.platform.tenancy import Tenant
from tests.conftest import LiveServer

TTL = 0.6


def test_terms_are_reloaded_before_they_expire_while_the_old_ones_are_served(
    make_airline, admin: httpx.Client, server: LiveServer
) -> None:
    airline = make_airline(plan="basic")
    tenant = Tenant(airline.data["id"], airline.code)

    async def scenario() -> tuple[str, str, str | None, float]:
        engine = create_engine(server.settings)
        book = PlanBook(create_sessionmaker(engine), "standard", TTL)
        try:
            first = (await book.terms_for(tenant)).code
            loaded = time.monotonic()
            # The change lands in another process: this one learns it only by reloading.
            changed = await asyncio.to_thread(
                admin.put, f"/admin/airlines/{airline.code}/plan", json={"plan": "premium"}
            )
            assert changed.status_code == 200, changed.text
            await asyncio.sleep(max(0.0, loaded + TTL * 0.55 - time.monotonic()))
            held = book.cached(tenant)  # past half its life: served, and the next load starts
            assert held is not None
            while (now := book.cached(tenant)) is not None and now.code == held.code:
                assert time.monotonic() < loaded + TTL, "the old terms were not replaced before they expired"
                await asyncio.sleep(0.01)
            assert now is not None, "the terms expired instead of being reloaded"
            return first, held.code, now.code, time.monotonic() - loaded
        finally:
            await engine.dispose()

    first, held, reloaded, after = asyncio.run(scenario())
    assert (first, held, reloaded) == ("basic", "basic", "premium")
    assert after < TTL


def test_a_load_that_began_before_a_forget_does_not_cache_what_it_read(make_airline, server: LiveServer) -> None:
    airline = make_airline()
    tenant = Tenant(airline.data["id"], airline.code)

    async def scenario() -> tuple[str, bool, bool]:
        engine = create_engine(server.settings)
        book = PlanBook(create_sessionmaker(engine), "standard", 30)
        try:
            loading = asyncio.create_task(book.terms_for(tenant))
            for _ in range(3):  # the load's task starts, and is soon waiting on the database
                await asyncio.sleep(0)
            book.forget(airline.code)  # a plan change committed meanwhile
            answered = (await loading).code
            forgotten = book.cached(tenant) is None
            await book.terms_for(tenant)
            return answered, forgotten, book.cached(tenant) is not None
        finally:
            await engine.dispose()

    answered, forgotten, cached_again = asyncio.run(scenario())
    assert answered == "premium", "the airline's plan (the fixture's), answered all the same"
    assert forgotten, "terms read before the change were cached after it"
    assert cached_again, "a load begun after the change is cached"
