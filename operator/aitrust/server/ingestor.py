"""Group commit: signals of a few milliseconds become one journal record, then all are acked.

The acknowledgement waits for the journal record only (one API write, whatever the number of
workloads), not for the status writes: reconciles fold the journaled signals into each workload's
status and enforce the new tier right after (see ``aitrust.controller.journal``).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aitrust import metrics
from aitrust.controller.journal import PROVISIONAL, build_journal_records
from aitrust.controller.reconciler import Reconciler
from aitrust.controller.store import Key
from aitrust.core.rules import is_sequence_stage, score_signal
from aitrust.core.signal import Signal
from aitrust.kube.journal import create_journal_record

log = logging.getLogger("aitrust.ingest")


class CommitError(Exception):
    """The Kubernetes API did not durably record the signals: the caller must retry (503)."""


@dataclass
class Committed:
    added: int
    duplicates: int


Pending = list[tuple[Signal, "asyncio.Future[Committed]"]]


class Ingestor:
    def __init__(
        self,
        reconciler: Reconciler,
        window: float = 0.01,
        max_in_flight: int = 2,
        max_backlog: int = 200_000,
        coalesce: float = 1.0,
        max_coalesce: float = 30.0,
        fold_rate: float = 20.0,
        max_waiting_noise: int = 20_000,
    ) -> None:
        if reconciler.journal_namespace is None:
            raise ValueError("signal ingestion needs a journal namespace")
        self.reconciler = reconciler
        self.namespace = reconciler.journal_namespace
        self.window = window
        self.max_backlog = max_backlog
        self.coalesce = coalesce
        self.max_coalesce = max_coalesce
        self.fold_rate = fold_rate
        self.max_waiting_noise = max_waiting_noise
        self._pending: dict[Key, Pending] = defaultdict(list)
        self._wakeup = asyncio.Event()
        self._slots = asyncio.Semaphore(max_in_flight)
        self._task: asyncio.Task[None] | None = None
        self._commits: set[asyncio.Task[None]] = set()
        self._in_flight: set[tuple[Key, str]] = set()
        self._coalescing: set[Key] = set()
        # Ids acknowledged by this process: status keeps only the most relevant 100 records, so
        # replays of older deliveries are caught here (and by the status after a restart).
        self._committed: collections.OrderedDict[tuple[Key, str], None] = collections.OrderedDict()
        self.max_remembered = 100_000

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="signal group commit")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()

    async def submit(self, key: Key, signals: Sequence[Signal]) -> Committed:
        if len(self.reconciler.inbox) >= self.max_backlog:
            raise CommitError(f"{len(self.reconciler.inbox)} signals are waiting to be applied")
        loop = asyncio.get_running_loop()
        futures = []
        for signal in signals:
            fut: asyncio.Future[Committed] = loop.create_future()
            self._pending[key].append((signal, fut))
            futures.append(fut)
        self._wakeup.set()
        results = await asyncio.gather(*futures)
        return Committed(sum(r.added for r in results), sum(r.duplicates for r in results))

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            await asyncio.sleep(self.window)
            self._wakeup.clear()
            # Several commits in flight: a slow write does not hold the next batch back.
            await self._slots.acquire()
            batch, self._pending = self._pending, defaultdict(list)
            task = asyncio.create_task(self._commit(batch))
            self._commits.add(task)
            task.add_done_callback(self._commits.discard)

    def _is_duplicate(self, key: Key, signal_id: str, in_status: set[str]) -> bool:
        return (
            (key, signal_id) in self._committed
            or (key, signal_id) in self._in_flight
            or self.reconciler.inbox.holds(key, signal_id)
            or signal_id in in_status
        )

    async def _commit(self, batch: dict[Key, Pending]) -> None:
        try:
            await self._journal(batch)
        except Exception as exc:  # never leave a caller waiting
            log.exception("signal commit failed")
            for items in batch.values():
                for _, fut in items:
                    if not fut.done():
                        fut.set_exception(CommitError(str(exc)))
        finally:
            self._slots.release()

    async def _journal(self, batch: dict[Key, Pending]) -> None:
        fresh: list[tuple[Key, Signal]] = []
        outcome: list[tuple[asyncio.Future[Committed], bool]] = []
        for key, items in batch.items():
            in_status = self._status_ids(key)
            seen: set[str] = set()
            for signal, fut in items:
                new = signal.id not in seen and not self._is_duplicate(key, signal.id, in_status)
                seen.add(signal.id)
                if new:
                    fresh.append((key, signal))
                outcome.append((fut, new))
        claimed = {(key, signal.id) for key, signal in fresh}
        self._in_flight |= claimed
        costly, prompt = self._classify(fresh)
        early = [(key, signal) for key, signal in fresh if key in costly]
        if early:
            # Enforce while the journal write runs; the acknowledgement still waits for it.
            self.reconciler.inbox.add(f"{PROVISIONAL}{uuid.uuid4().hex}", early)
            for key in costly:
                self.reconciler.queue.add(key, urgent=True)
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        try:
            records = build_journal_records(fresh)
            names = await asyncio.gather(
                *(create_journal_record(self.reconciler.kube, self.namespace, r.body) for r in records)
            )
        except Exception as exc:
            log.warning("could not journal %d signal(s): %s", len(fresh), exc)
            for fut, _ in outcome:
                if not fut.done():
                    fut.set_exception(CommitError(str(exc)))
            return
        finally:
            self._in_flight -= claimed
        if records:
            metrics.SIGNAL_COMMIT_LATENCY.observe(time.monotonic() - started)
        for name, record in zip(names, records, strict=True):
            self.reconciler.inbox.add(name, [(k, s) for k, s in record.entries if k not in costly])
            if self.reconciler.inbox.move(name, [(k, s) for k, s in record.entries if k in costly]):
                self.reconciler.delete_records([name])  # applied before it was even stored
        metrics.SIGNAL_BACKLOG.set(len(self.reconciler.inbox))
        for key, signal in fresh:
            self._committed[(key, signal.id)] = None
        while len(self._committed) > self.max_remembered:
            self._committed.popitem(last=False)
        for fut, new in outcome:
            if not fut.done():
                fut.set_result(Committed(1 if new else 0, 0 if new else 1))
        for key in {key for key, _ in fresh} - costly:
            if key not in self._coalescing:
                self._coalescing.add(key)
                loop.call_later(self._fold_delay(key in prompt), self._release, key)

    def _fold_delay(self, prompt: bool) -> float:
        """How long free signals wait before a status write folds them in.

        Sequence steps wait ``coalesce``. Noise waits longer the more workloads have some
        waiting, so that folding it costs about ``fold_rate`` status writes per second (each
        is a large write for the API server) up to ``max_coalesce``, the resync period: a
        stream spread over many workloads must not crowd out the reconciles that enforce.
        Past ``max_waiting_noise`` signals held in memory, noise folds at once again.
        """
        if prompt or len(self.reconciler.inbox) > self.max_waiting_noise:
            return self.coalesce
        return min(self.max_coalesce, max(self.coalesce, len(self._coalescing) / self.fold_rate))

    def _classify(self, fresh: list[tuple[Key, Signal]]) -> tuple[set[Key], set[Key]]:
        """(workloads with a signal that costs points: enforced at once, ahead of the queue;
        workloads with a step of a sequence rule). Other free signals (noise, baseline inputs)
        wait so that one status write takes many."""
        by_key: dict[Key, list[Signal]] = defaultdict(list)
        for key, signal in fresh:
            by_key[key].append(signal)
        now = datetime.now(UTC)
        costly: set[Key] = set()
        prompt: set[Key] = set()
        for key, signals in by_key.items():
            policy = self.reconciler.policy_for(key)
            if policy is None:
                costly.add(key)
                continue
            records = [score_signal(s, policy, now) for s in signals]
            if any(r.points > 0 for r in records):
                costly.add(key)
            elif any(is_sequence_stage(r) for r in records):
                prompt.add(key)
        return costly, prompt

    def _release(self, key: Key) -> None:
        self._coalescing.discard(key)
        self.reconciler.queue.add(key)

    def _status_ids(self, key: Key) -> set[str]:
        body = self.reconciler.store.get("AIWorkload", *key) or {}
        return {r.get("id") for r in (body.get("status") or {}).get("signals") or []}
