from __future__ import annotations

import asyncio

from aitrust.controller.queue import Debouncer, WorkQueue


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


async def test_urgent_keys_jump_the_queue_and_every_key_still_runs_once() -> None:
    queue: WorkQueue[str] = WorkQueue()
    calls: list[str] = []

    async def handle(key: str) -> None:
        calls.append(key)
        await asyncio.sleep(0)

    for i in range(50):
        queue.add(f"routine-{i}")
    queue.add("routine-40", urgent=True)  # already queued: promoted, not duplicated
    queue.add("alert", urgent=True)
    worker = asyncio.create_task(queue.worker(handle))
    await asyncio.sleep(0.05)
    worker.cancel()
    assert calls[:2] == ["routine-40", "alert"]
    assert sorted(calls) == sorted([f"routine-{i}" for i in range(50)] + ["alert"])
    assert len(queue) == 0


async def test_burst_workers_share_a_backlog_then_leave_it_to_the_permanent_ones() -> None:
    queue: WorkQueue[int] = WorkQueue()
    calls: list[int] = []
    in_flight = 0
    most = 0

    async def handle(key: int) -> None:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        calls.append(key)
        await asyncio.sleep(0.01)
        in_flight -= 1

    for key in range(40):
        queue.add(key)
    permanent = asyncio.create_task(queue.worker(handle))
    bursts = [asyncio.create_task(queue.burst_worker(handle)) for _ in range(7)]
    await asyncio.wait_for(asyncio.gather(*bursts), timeout=5)  # they return once it is drained
    assert most == 8
    queue.add(99)  # later work: only the permanent worker is left to take it
    await asyncio.sleep(0.05)
    permanent.cancel()
    assert sorted(calls) == [*range(40), 99]
    assert len(queue) == 0


async def test_a_burst_of_touches_runs_the_action_once_per_key_after_the_delay() -> None:
    fired: list[str] = []
    debouncer: Debouncer[str] = Debouncer(0.05, fired.append)
    for _ in range(5):
        debouncer.touch("a")
    debouncer.touch("b")
    assert fired == []
    await asyncio.sleep(0.1)
    assert sorted(fired) == ["a", "b"]
    debouncer.touch("a")  # after the action: a new burst
    await asyncio.sleep(0.1)
    assert sorted(fired) == ["a", "a", "b"]


async def test_queued_at_is_the_first_add_a_pass_serves_or_its_first_urgent_one() -> None:
    queue: WorkQueue[str] = WorkQueue()
    now = [100.0]
    queue.clock = lambda: now[0]
    seen: dict[str, list[float | None]] = {}
    gate = asyncio.Event()

    async def handle(key: str) -> None:
        seen.setdefault(key, []).append(queue.queued_at(key))
        if key == "busy" and len(seen[key]) == 1:
            await gate.wait()

    queue.add("routine")
    now[0] = 101.0
    queue.add("routine")  # still waiting: the first add is when the work was due
    queue.add("signal")
    now[0] = 102.0
    queue.add("signal", urgent=True)  # the signal, not the routine add before it, is the trigger
    now[0] = 103.0
    queue.add("signal", urgent=True)
    queue.add("busy")
    worker = asyncio.create_task(queue.worker(handle))
    for _ in range(100):
        if "busy" in seen:
            break
        await asyncio.sleep(0.01)
    now[0] = 110.0
    queue.add("busy")  # arrives during its pass: the next pass is due from now
    gate.set()
    for _ in range(100):
        if len(seen.get("busy", [])) == 2:
            break
        await asyncio.sleep(0.01)
    worker.cancel()
    assert seen == {"signal": [102.0], "routine": [100.0], "busy": [103.0, 110.0]}
    assert queue.queued_at("busy") is None  # only while handled
