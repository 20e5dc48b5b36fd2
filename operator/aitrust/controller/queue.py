"""A de-duplicating work queue: a key is processed by one worker at a time and never queued twice."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    def __init__(self) -> None:
        self._queue: asyncio.Queue[K] = asyncio.Queue()
        self._pending: set[K] = set()
        self._active: set[K] = set()
        self._dirty: set[K] = set()

    def add(self, key: K) -> None:
        if key in self._active:
            self._dirty.add(key)  # re-run once the current pass ends
        elif key not in self._pending:
            self._pending.add(key)
            self._queue.put_nowait(key)

    def __len__(self) -> int:
        return len(self._pending) + len(self._active)

    async def worker(self, handle: Callable[[K], Awaitable[None]]) -> None:
        while True:
            key = await self._queue.get()
            self._pending.discard(key)
            self._active.add(key)
            try:
                await handle(key)
            finally:
                self._active.discard(key)
                if key in self._dirty:
                    self._dirty.discard(key)
                    self.add(key)
