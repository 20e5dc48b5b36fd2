"""A de-duplicating work queue: a key is processed by one worker at a time and never queued twice.

Urgent keys (a signal that can move a tier) are served before routine ones (resyncs, noise).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    def __init__(self) -> None:
        self._queue: asyncio.Queue[K] = asyncio.Queue()
        self._urgent: collections.deque[K] = collections.deque()
        self._urgent_wakeups: asyncio.Queue[K] = asyncio.Queue()
        self._pending: set[K] = set()
        self._active: set[K] = set()
        self._dirty: set[K] = set()
        self._dirty_urgent: set[K] = set()
        # When each waiting key was first added since it was last taken (its first urgent add,
        # if any: a signal is what an earlier routine add was not), and, while a key is handled,
        # that time for the pass under way (``queued_at``).
        self._since: dict[K, tuple[float, bool]] = {}
        self._taken_since: dict[K, float] = {}
        self.clock: Callable[[], float] = time.monotonic

    def queued_at(self, key: K) -> float | None:
        """While ``key`` is handled: the clock reading of the first add this pass serves."""
        return self._taken_since.get(key)

    def add(self, key: K, urgent: bool = False) -> None:
        since = self._since.get(key)
        if since is None or (urgent and not since[1]):
            self._since[key] = (self.clock(), urgent)
        if key in self._active:
            self._dirty.add(key)  # re-run once the current pass ends
            if urgent:
                self._dirty_urgent.add(key)
        elif key not in self._pending:
            self._pending.add(key)
            if urgent:
                self._urgent.append(key)
                self._urgent_wakeups.put_nowait(key)
            # The queue entry only wakes a worker; an urgent key is taken from the deque first.
            self._queue.put_nowait(key)
        elif urgent and key not in self._urgent:
            self._urgent.append(key)
            self._urgent_wakeups.put_nowait(key)

    def __len__(self) -> int:
        return len(self._pending) + len(self._active)

    async def worker(self, handle: Callable[[K], Awaitable[None]]) -> None:
        while True:
            await self._take(await self._queue.get(), handle)

    async def burst_worker(self, handle: Callable[[K], Awaitable[None]]) -> None:
        """A worker that returns once nothing is queued: extra hands for a backlog (the first
        pass after a start) that do not stay to compete with urgent work afterwards."""
        while not self._queue.empty():
            await self._take(self._queue.get_nowait(), handle)

    async def _take(self, key: K, handle: Callable[[K], Awaitable[None]]) -> None:
        while self._urgent:
            candidate = self._urgent.popleft()
            if candidate in self._pending:
                if candidate != key:
                    self._queue.put_nowait(key)  # the wake-up taken stays owed to its key
                key = candidate
                break
        if key not in self._pending:
            return  # a stale wake-up: the key was served as urgent
        await self._serve(key, handle)

    async def urgent_worker(self, handle: Callable[[K], Awaitable[None]]) -> None:
        """Serves urgent keys only: an alert never waits for routine work to free a worker."""
        while True:
            key = await self._urgent_wakeups.get()
            if key not in self._pending:
                continue
            with contextlib.suppress(ValueError):
                self._urgent.remove(key)
            await self._serve(key, handle)

    async def _serve(self, key: K, handle: Callable[[K], Awaitable[None]]) -> None:
        self._pending.discard(key)
        self._active.add(key)
        self._taken_since[key] = self._since.pop(key, (self.clock(), False))[0]
        try:
            await handle(key)
        finally:
            self._taken_since.pop(key, None)
            self._active.discard(key)
            if key in self._dirty:
                self._dirty.discard(key)
                urgent = key in self._dirty_urgent
                self._dirty_urgent.discard(key)
                self.add(key, urgent)


class Debouncer(Generic[K]):
    """``action(key)`` runs once, ``delay`` seconds after the first ``touch(key)`` of a burst:
    many changes within the delay cost one action. A touch after the action starts a new burst."""

    def __init__(self, delay: float, action: Callable[[K], None]) -> None:
        self.delay = delay
        self.action = action
        self._due: set[K] = set()

    def touch(self, key: K) -> None:
        if key in self._due:
            return
        self._due.add(key)
        asyncio.get_running_loop().call_later(self.delay, self._fire, key)

    def _fire(self, key: K) -> None:
        self._due.discard(key)
        self.action(key)
