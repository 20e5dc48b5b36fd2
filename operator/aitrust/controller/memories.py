"""Memory work the operator skips: kopf's per-object memories, and collecting the heap at sync.

kopf's per-object memories are not kept: aitrust has only event handlers.

kopf remembers every object it has seen for as long as the object exists: a copy of the memo,
an error throttler, and daemon and index state, about 1.2 KB each. aitrust runs no daemons,
timers or indexes and keeps its own store, so at 5,000 workloads and their pods that was 12 MB
of a 250 MB budget, holding nothing it reads. Each event gets a fresh memory instead (its memo a
fresh copy of the operator's). The cost: kopf's throttling of repeated framework errors for one
object starts over at each of its events.
"""

from __future__ import annotations

import gc

from kopf._cogs.structs import bodies, ephemera
from kopf._core.reactor.inventory import ResourceMemories, ResourceMemory


class EventOnlyMemories(ResourceMemories):
    async def recall(
        self,
        raw_body: bodies.RawBody,
        *,
        memobase: ephemera.AnyMemo | None = None,
        noticed_by_listing: bool = False,
        ephemeral: bool = False,
    ) -> ResourceMemory:
        return await super().recall(
            raw_body, memobase=memobase, noticed_by_listing=noticed_by_listing, ephemeral=True
        )


def freeze_heap() -> int:
    """Exempt what exists once synced (modules, the synced store) from the cyclic collector.

    Every full collection walked all of it again: about 45 ms for the imported modules alone,
    more with thousands of workloads, stalling every request meanwhile. Frozen objects are still
    freed by reference counting; only cycles among them would outlive their use, and the heap at
    sync is mostly the long-lived state anyway. Returns the number of frozen objects.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
