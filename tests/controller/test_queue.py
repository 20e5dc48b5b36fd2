from __future__ import annotations

import asyncio

from aitrust.controller.queue import WorkQueue


async def test_a_key_is_never_processed_concurrently_and_reruns_when_dirty() -> None:
    queue: WorkQueue[str] = WorkQueue()
    running: set[str] = set()
    calls: list[str] = []
    overlap = False
    gate = asyncio.Event()

    async def handle(key: str) -> None:
        nonlocal overlap
        overlap = overlap or key in running
        running.add(key)
        calls.append(key)
        await gate.wait()
        running.discard(key)

    workers = [asyncio.create_task(queue.worker(handle)) for _ in range(3)]
    queue.add("a")
    await asyncio.sleep(0.01)
    queue.add("a")  # arrives while "a" runs: must run once more, later
    queue.add("a")
    queue.add("b")
    await asyncio.sleep(0.01)
    gate.set()
    await asyncio.sleep(0.05)
    for w in workers:
        w.cancel()
    assert not overlap
    assert sorted(calls) == ["a", "a", "b"]
    assert len(queue) == 0
