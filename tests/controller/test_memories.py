import asyncio

import kopf

from aitrust.controller.memories import EventOnlyMemories


def test_each_event_gets_a_fresh_memory_and_nothing_is_kept() -> None:
    async def run() -> None:
        memories = EventOnlyMemories()
        base = kopf.Memo(store="the store")
        body = {"metadata": {"uid": "u1", "name": "p", "namespace": "ns"}}
        first = await memories.recall(body, memobase=base, noticed_by_listing=True)
        second = await memories.recall(body, memobase=base)
        assert first is not second
        assert first.memo["store"] == second.memo["store"] == "the store"
        assert first.noticed_by_listing
        assert list(memories.iter_all_memories()) == []
        await memories.forget(body)

    asyncio.run(run())
