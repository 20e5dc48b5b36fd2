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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aitrust import metrics
from aitrust.controller.journal import PROVISIONAL, build_journal_records
from aitrust.controller.reconciler import Reconciler
from aitrust.controller.store import Key
from aitrust.core.compact import build_lean_signal
from aitrust.core.rules import is_sequence_stage, score_signal
from aitrust.core.signal import Signal
from aitrust.kube.journal import create_journal_record

log = logging.getLogger("aitrust.ingest")


# Free signals wait to be folded into status: ``COALESCE`` seconds at least, then for their turn
# (``FOLD_RATE`` folds a second, oldest hold first), up to about ``MAX_COALESCE``.
COALESCE = 1.0
FOLD_RATE = 20.0
MAX_COALESCE = 60.0


# Signals accepted but not yet in status are held in memory, about 0.75 KB each (a lean Falco
# alert in the inbox): past this many, new ones get 503 rather than growing the operator towards
# its memory limit.
MAX_BACKLOG = 100_000


class CommitError(Exception):
    """The Kubernetes API did not durably record the signals: the caller must retry (503)."""


@dataclass
class Committed:
    added: int
    duplicates: int


class _Ticket:
    """One caller's wait: resolved once every signal it submitted is committed or dropped."""

    __slots__ = ("added", "duplicates", "future", "remaining")

    def __init__(self, future: asyncio.Future[Committed], remaining: int) -> None:
        self.future = future
        self.remaining = remaining
        self.added = 0
        self.duplicates = 0

    def settle(self, new: bool) -> None:
        if new:
            self.added += 1
        else:
            self.duplicates += 1
        self.remaining -= 1
        if self.remaining == 0 and not self.future.done():
            self.future.set_result(Committed(self.added, self.duplicates))

    def fail(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)


Pending = list[tuple[Signal, _Ticket]]


class Ingestor:
    def __init__(
        self,
        reconciler: Reconciler,
        window: float = 0.01,
        max_in_flight: int = 2,
        max_backlog: int = MAX_BACKLOG,
        coalesce: float = COALESCE,
        max_coalesce: float = MAX_COALESCE,
        fold_rate: float = FOLD_RATE,
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
        # Signals applied provisionally (before their journal write): moved to their record after it.
        self._early: set[tuple[Key, str]] = set()
        # Free signals that are steps of a sequence rule (scored once, on arrival): folded
        # promptly. Other free signals (noise, baseline inputs) wait so one status write takes many.
        self._steps: set[tuple[Key, str]] = set()
        # Ids acknowledged by this process: status keeps only the most relevant 100 records, so
        # replays of older deliveries are caught here (and by the status after a restart).
        self._committed: collections.OrderedDict[tuple[Key, str], None] = collections.OrderedDict()
        self.max_remembered = 100_000
        self.clock = time.monotonic
        self.sleep = asyncio.sleep
        # Workloads holding noise, oldest hold first, with when each began to hold.
        self._holders: collections.OrderedDict[Key, float] = collections.OrderedDict()
        self._held = asyncio.Event()
        self._pacer: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="signal group commit")
        self._pacer = asyncio.create_task(self._pace_folds(), name="fold pacer")

    async def stop(self) -> None:
        for task in (self._task, self._pacer):
            if task:
                task.cancel()

    async def submit(self, key: Key, signals: Sequence[Signal]) -> Committed:
        return await self.submit_many({key: signals})

    async def submit_many(self, signals: Mapping[Key, Sequence[Signal]]) -> Committed:
        """Wait until the signals are journaled (or known duplicates); one wait per request."""
        if len(self.reconciler.inbox) >= self.max_backlog:
            raise CommitError(f"{len(self.reconciler.inbox)} signals are waiting to be applied")
        total = sum(len(items) for items in signals.values())
        if total == 0:
            return Committed(0, 0)
        ticket = _Ticket(asyncio.get_running_loop().create_future(), total)
        for key, items in signals.items():
            pending = self._pending[key]
            for signal in items:
                pending.append((signal, ticket))
        self._apply_early(signals)
        self._wakeup.set()
        return await ticket.future

    def _apply_early(self, signals: Mapping[Key, Sequence[Signal]]) -> None:
        """Enforce signals that cost points now, ahead of the group commit and its journal write:
        a signal can only lower trust. The acknowledgement still waits for the write."""
        now = datetime.now(UTC)
        early: list[tuple[Key, Signal]] = []
        chosen: set[tuple[Key, str]] = set()
        for key, items in signals.items():
            policy = self.reconciler.policy_for(key)
            in_status: set[str] | None = None
            for signal in items:
                if policy is not None:
                    record = score_signal(signal, policy, now)
                    if record.points <= 0:
                        if is_sequence_stage(record):
                            self._steps.add((key, signal.id))
                        continue
                if (key, signal.id) in self._early or (key, signal.id) in chosen:
                    continue
                if in_status is None:
                    in_status = self._status_ids(key)
                if self._is_duplicate(key, signal.id, in_status):
                    continue
                early.append((key, signal))
                chosen.add((key, signal.id))
        if early:
            self._file_provisionally(early)
            for key in {key for key, _ in early}:
                self.reconciler.queue.add(key, urgent=True)

    def _file_provisionally(self, entries: list[tuple[Key, Signal]]) -> None:
        self.reconciler.inbox.add(f"{PROVISIONAL}{uuid.uuid4().hex}", entries)
        self._early.update((key, signal.id) for key, signal in entries)

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
            for key, items in batch.items():
                for signal, ticket in items:
                    self._early.discard((key, signal.id))  # a retry files it afresh
                    self._steps.discard((key, signal.id))
                    ticket.fail(CommitError(str(exc)))
        finally:
            self._slots.release()

    async def _journal(self, batch: dict[Key, Pending]) -> None:
        fresh: list[tuple[Key, Signal]] = []
        outcome: list[tuple[_Ticket, bool]] = []
        in_status_early: list[tuple[Key, str]] = []
        for key, items in batch.items():
            in_status = self._status_ids(key)
            seen: set[str] = set()
            for signal, ticket in items:
                if signal.id in seen:
                    new = False
                elif (key, signal.id) in self._early:
                    # Fresh when it arrived. If its early reconcile already wrote it into status,
                    # it is durable there and needs no journal record.
                    new = True
                    if signal.id in in_status:
                        in_status_early.append((key, signal.id))
                    else:
                        fresh.append((key, signal))
                else:
                    new = not self._is_duplicate(key, signal.id, in_status)
                    if new:
                        # Free: its evidence changes nothing, so neither journal nor memory keeps it.
                        fresh.append((key, build_lean_signal(signal)))
                seen.add(signal.id)
                outcome.append((ticket, new))
        claimed = {(key, signal.id) for key, signal in fresh}
        self._in_flight |= claimed
        costly = {key for key, signal in fresh if (key, signal.id) in self._early}
        # Free signals of a workload that is being enforced anyway go with the same status write.
        riding = [(k, s) for k, s in fresh if k in costly and (k, s.id) not in self._early]
        if riding:
            self._file_provisionally(riding)
        prompt = {k for k, s in fresh if k not in costly and (k, s.id) in self._steps}
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        try:
            records = build_journal_records(fresh)
            names = await asyncio.gather(
                *(create_journal_record(self.reconciler.kube, self.namespace, r.body) for r in records)
            )
        except Exception as exc:
            log.warning("could not journal %d signal(s): %s", len(fresh), exc)
            for ticket, _ in outcome:
                ticket.fail(CommitError(str(exc)))
            return
        finally:
            self._in_flight -= claimed
            moved = {(key, signal.id) for key, items in batch.items() for signal, _ in items}
            applied_early = self._early & moved
            self._early -= moved
            self._steps -= moved
        if records:
            metrics.SIGNAL_COMMIT_LATENCY.observe(time.monotonic() - started)
        for name, record in zip(names, records, strict=True):
            provisional = [(k, s) for k, s in record.entries if (k, s.id) in applied_early]
            self.reconciler.inbox.add(
                name, [(k, s) for k, s in record.entries if (k, s.id) not in applied_early]
            )
            if self.reconciler.inbox.move(name, provisional):
                self.reconciler.delete_records([name])  # applied before it was even stored
        metrics.SIGNAL_BACKLOG.set(len(self.reconciler.inbox))
        for key, signal in fresh:
            self._committed[(key, signal.id)] = None
        for key_and_id in in_status_early:
            self._committed[key_and_id] = None
        while len(self._committed) > self.max_remembered:
            self._committed.popitem(last=False)
        for ticket, new in outcome:
            ticket.settle(new)
        now = self.clock()
        for key in {key for key, _ in fresh} - costly:
            if key in self.reconciler.holding:
                continue
            self.reconciler.holding.add(key)
            if key in prompt:  # a sequence step: the next one may complete it
                loop.call_later(self.coalesce, self._release, key)
            else:
                self._holders.pop(key, None)  # a stale turn, from before an early fold
                self._holders[key] = now
                self._held.set()

    async def _pace_folds(self) -> None:
        """Give held workloads their fold, oldest hold first, one every ``1 / fold_pace`` s.

        A stream spread over many workloads then costs about ``fold_rate`` folds a second,
        evenly spaced: each may be a status write, and the journal writes that acknowledge
        signals queue behind a burst of them in the API server. Every turn waits ``coalesce``
        at least, so a workload's noise of a second or more goes in one write.
        """
        while True:
            if not self._holders:
                self._held.clear()
                await self._held.wait()
                continue
            key, since = next(iter(self._holders.items()))
            age = self.clock() - since
            if age < self.coalesce:
                await self.sleep(self.coalesce - age)
                continue
            del self._holders[key]
            if key not in self.reconciler.holding:
                continue  # folded meanwhile, with a signal that cost points
            self._release(key)
            await self.sleep(1.0 / self.fold_pace(age))

    def fold_pace(self, oldest_age: float) -> float:
        """Folds a second: ``fold_rate``, raised in proportion as the held noise passes
        ``max_waiting_noise`` signals (memory levels off) or the oldest hold passes
        ``max_coalesce`` seconds (so does the time noise waits to count)."""
        return self.fold_rate * max(
            1.0, len(self.reconciler.inbox) / self.max_waiting_noise, oldest_age / self.max_coalesce
        )

    def _release(self, key: Key) -> None:
        self.reconciler.fold_due.add(key)
        self.reconciler.queue.add(key)

    def _status_ids(self, key: Key) -> set[str]:
        body = self.reconciler.store.get("AIWorkload", *key) or {}
        return {r.get("id") for r in (body.get("status") or {}).get("signals") or []}
