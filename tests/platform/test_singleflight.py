"""SingleFlight: one computation per key, and no caller's cancellation reaches another caller."""

from __future__ import annotations

import asyncio

import pytest

from skycart.platform.singleflight import SingleFlight


def test_a_cancelled_first_caller_does_not_fail_the_others_waiting_on_the_same_key() -> None:
    async def scenario() -> tuple[list[str], int]:
        flight: SingleFlight[str] = SingleFlight()
        started = asyncio.Event()
        runs = 0

        async def slow() -> str:
            nonlocal runs
            runs += 1
            started.set()
            await asyncio.sleep(0.05)
            return "principal"

        leader = asyncio.create_task(flight.do("key", slow))
        await started.wait()
        waiters = [asyncio.create_task(flight.do("key", slow)) for _ in range(3)]
        await asyncio.sleep(0)
        leader.cancel()  # e.g. its request timed out at shutdown
        with pytest.raises(asyncio.CancelledError):
            await leader
        return list(await asyncio.gather(*waiters)), runs

    results, runs = asyncio.run(scenario())
    assert results == ["principal"] * 3
    assert runs == 1, "the computation ran once, for every caller"


def test_a_failing_computation_fails_every_caller_with_its_own_error_and_frees_the_key() -> None:
    async def scenario() -> tuple[list[BaseException | str], str]:
        flight: SingleFlight[str] = SingleFlight()

        async def broken() -> str:
            await asyncio.sleep(0.01)
            raise LookupError("database said no")

        async def fine() -> str:
            return "again"

        outcomes = await asyncio.gather(*(flight.do("key", broken) for _ in range(3)), return_exceptions=True)
        return list(outcomes), await flight.do("key", fine)

    outcomes, later = asyncio.run(scenario())
    assert [type(outcome) for outcome in outcomes] == [LookupError] * 3
    assert later == "again", "a finished computation leaves the key free"


def test_when_every_caller_stops_waiting_the_computation_still_finishes_quietly() -> None:
    async def scenario() -> bool:
        flight: SingleFlight[str] = SingleFlight()
        finished = asyncio.Event()

        async def slow() -> str:
            await asyncio.sleep(0.02)
            finished.set()
            raise RuntimeError("nobody is listening")

        caller = asyncio.create_task(flight.do("key", slow))
        await asyncio.sleep(0)
        caller.cancel()
        await asyncio.wait_for(finished.wait(), 1)
        await asyncio.sleep(0)
        return "key" in flight._running

    assert asyncio.run(scenario()) is False
