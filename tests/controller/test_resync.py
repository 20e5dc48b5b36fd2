"""The periodic resync queues every workload once per period, a slice at a time."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aitrust.controller.reconciler import Reconciler
from aitrust.controller.store import Store


class FakeAio:
    def __init__(self) -> None:
        self.requests: list[str] = []

    async def request(self, method: str, path: str, *_: Any, **__: Any) -> Any:
        self.requests.append(f"{method} {path}")
        return {}


class FakeKube:
    def __init__(self) -> None:
        self.aio = FakeAio()


def workload(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "aitrust.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {"name": f"w{i}", "namespace": "ml", "resourceVersion": "1", "generation": 1},
        "spec": {"kind": "agent", "selector": {"matchLabels": {"app": f"w{i}"}}},
    }


def test_a_period_queues_every_workload_once_in_slices() -> None:
    store = Store()
    for i in range(100):
        store.upsert("AIWorkload", workload(i))
    kube = FakeKube()
    rec = Reconciler(kube, store, resync_seconds=30.0)  # type: ignore[arg-type]
    slices: list[list[tuple[str, str]]] = []
    waits: list[float] = []

    async def tick(seconds: float) -> None:
        waits.append(seconds)
        slices.append([])
        if len(waits) > 30:  # the first sleep of the second period
            raise asyncio.CancelledError
        await asyncio.sleep(0)

    rec._sleep = tick  # type: ignore[assignment]
    rec.queue.add = lambda key, urgent=False: slices[-1].append(key)  # type: ignore[method-assign]

    async def run() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await rec._periodic_resync()

    asyncio.run(run())
    first_period = [key for chunk in slices[:30] for key in chunk]
    assert sorted(first_period) == sorted(("ml", f"w{i}") for i in range(100))  # each exactly once
    assert waits[:30] == [1.0] * 30  # one slice a second, not one burst of 100 every 30 s
    assert max(len(chunk) for chunk in slices[:30]) == 4
    assert kube.aio.requests == ["GET /version"]  # a connection kept warm for the next signal
