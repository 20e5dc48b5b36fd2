"""Keep full garbage collections off the signal path.

The store, the effective trust and kopf's state are hundreds of thousands of long-lived objects
with no reference cycles. CPython's full collection scans all of them whenever enough new objects
survive, which paused the event loop for 150-440 ms every few seconds at 1,000 workloads (and
collected nothing): that pause was the p99 of signal-to-enforcement. Objects that survived the
young collections are frozen (no longer scanned) every ``freeze_s``, so a full collection only
scans what survived since; young cycles are still collected as usual. Once per ``full_s``
everything is thawed and collected, so that a cycle that formed among frozen objects is freed in
the end: one long pause an hour instead of one every few seconds.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger("aitrust.gc")


@dataclass
class GcPolicy:
    freeze_s: float = 1.0
    full_s: float = 3600.0
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    freeze: Callable[[], None] = gc.freeze
    unfreeze: Callable[[], None] = gc.unfreeze
    collect: Callable[[], int] = gc.collect
    _since_full: float = field(default=0.0, init=False)

    async def run(self) -> None:
        self.freeze()
        while True:
            await self.sleep(self.freeze_s)
            self._since_full += self.freeze_s
            if self._since_full >= self.full_s:
                self._since_full = 0.0
                started = time.perf_counter()
                self.unfreeze()
                found = self.collect()
                log.info(
                    "full garbage collection: %d unreachable objects, %.0f ms",
                    found,
                    (time.perf_counter() - started) * 1000,
                )
            self.freeze()
