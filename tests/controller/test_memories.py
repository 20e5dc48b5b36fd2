import asyncio
import gc
from typing import cast

from kopf._cogs.structs import bodies, ephemera

from aitrust.controller.memories import EventOnlyMemories, freeze_heap


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


def test_the_heap_at_sync_is_frozen_so_full_collections_skip_it() -> None:
    class Node:
        def __init__(self) -> None:
            self.peer: Node | None = None

    long_lived = [Node() for _ in range(1000)]
    try:
        gc.collect()
        walked_before = len(gc.get_objects())
        frozen = freeze_heap()
        assert frozen >= 1000
        assert len(gc.get_objects()) <= walked_before - 1000  # a full collection walks these no more
        garbage = Node()
        garbage.peer = Node()
        garbage.peer.peer = garbage
        del garbage
        assert gc.collect() >= 2  # what is made after sync is still collected
    finally:
        gc.unfreeze()
    assert long_lived
