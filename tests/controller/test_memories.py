import asyncio
from typing import cast

from kopf._cogs.structs import bodies, ephemera

from aitrust.controller.memories import EventOnlyMemories


def test_each_event_gets_a_fresh_memory_and_nothing_is_kept() -> None:
    async def run() -> None:
        memories = EventOnlyMemories()
        base = ephemera.AnyMemo(ephemera.Memo(store="the store"))
        body = cast(bodies.RawBody, {"metadata": {"uid": "u1", "name": "p", "namespace": "ns"}})
        first = await memories.recall(body, memobase=base, noticed_by_listing=True)
        second = await memories.recall(body, memobase=base)
        assert first is not second
        assert cast(ephemera.Memo, first.memo)["store"] == cast(ephemera.Memo, second.memo)["store"]
        assert cast(ephemera.Memo, first.memo)["store"] == "the store"
        assert first.noticed_by_listing
        assert list(memories.iter_all_memories()) == []
        await memories.forget(body)

    asyncio.run(run())
