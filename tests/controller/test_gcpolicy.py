"""Long-lived objects are frozen on a schedule; a full collection runs once per long period."""

from __future__ import annotations

import asyncio
import contextlib

from aitrust.controller.gcpolicy import GcPolicy


def test_freezes_every_period_and_thaws_for_one_full_collection_per_long_period() -> None:
    calls: list[str] = []
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) > 5:
            raise asyncio.CancelledError

    policy = GcPolicy(
        freeze_s=30.0,
        full_s=90.0,
        sleep=sleep,
        freeze=lambda: calls.append("freeze"),
        unfreeze=lambda: calls.append("unfreeze"),
        collect=lambda: calls.append("collect") or 0,  # type: ignore[func-returns-value]
    )

    async def run() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await policy.run()

    asyncio.run(run())
    assert slept == [30.0] * 6
    # freeze at start, after 30 and 60 s; at 90 s thaw, collect, freeze; then 120 and 150 s
    assert calls == ["freeze", "freeze", "freeze", "unfreeze", "collect", "freeze", "freeze", "freeze"]


def test_the_real_collector_is_used_by_default() -> None:
    import gc

    policy = GcPolicy()
    assert policy.freeze is gc.freeze and policy.collect is gc.collect
