"""Group commit: signals for a few milliseconds become one status patch per workload, then all are acked."""

from __future__ import annotations

import asyncio
import collections
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException

from aitrust.api.v1alpha1 import AIWorkload
from aitrust.controller.reconciler import Reconciler
from aitrust.controller.store import Key
from aitrust.core.evaluate import build_evaluation
from aitrust.core.ingest import build_ingestion
from aitrust.core.signal import Signal

log = logging.getLogger("aitrust.ingest")


class CommitError(Exception):
    """The Kubernetes API did not durably record the signals: the caller must retry (503)."""


@dataclass
class Committed:
    added: int
    duplicates: int


class Ingestor:
    def __init__(self, reconciler: Reconciler, window: float = 0.005, max_attempts: int = 5) -> None:
        self.reconciler = reconciler
        self.window = window
        self.max_attempts = max_attempts
        self._pending: dict[Key, list[tuple[Signal, asyncio.Future[Committed]]]] = defaultdict(list)
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Ids committed by this process: status keeps only the most relevant 100 records, so
        # replays of older deliveries are caught here (and by the status after a restart).
        self._committed: collections.OrderedDict[tuple[Key, str], None] = collections.OrderedDict()
        self.max_remembered = 100_000

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="signal group commit")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()

    async def submit(self, key: Key, signals: Sequence[Signal]) -> Committed:
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
            batch, self._pending = self._pending, defaultdict(list)
            await asyncio.gather(*(self._commit_key(key, items) for key, items in batch.items()))

    async def _commit_key(self, key: Key, items: list[tuple[Signal, asyncio.Future[Committed]]]) -> None:
        fresh = [s for s, _ in items if (key, s.id) not in self._committed]
        try:
            added, duplicate_ids = await self._commit(key, fresh) if fresh else (0, set())
        except Exception as exc:
            log.warning("could not commit %d signal(s) for %s/%s: %s", len(items), *key, exc)
            for _, fut in items:
                if not fut.done():
                    fut.set_exception(CommitError(str(exc)))
            return
        fresh_ids = {s.id for s in fresh} - duplicate_ids
        for signal, fut in items:
            if not fut.done():
                new = signal.id in fresh_ids
                fresh_ids.discard(signal.id)  # the same id twice in one batch counts once
                fut.set_result(Committed(1 if new else 0, 0 if new else 1))
        for signal in fresh:
            self._committed[(key, signal.id)] = None
        while len(self._committed) > self.max_remembered:
            self._committed.popitem(last=False)
        if added:
            self.reconciler.queue.add(key)  # fast path: enforce the new tier now

    async def _commit(self, key: Key, signals: list[Signal]) -> tuple[int, set[str]]:
        rec = self.reconciler
        body: dict[str, Any] | None = rec.store.get("AIWorkload", *key)
        for attempt in range(self.max_attempts):
            if body is None:
                raise CommitError(f"AIWorkload {key[0]}/{key[1]} is gone")
            workload = AIWorkload.model_validate(body)
            now = rec.clock()
            inputs = rec.gather_inputs(workload)
            ingestion = build_ingestion(workload.status, signals, inputs.policy, now)
            if not ingestion.added:
                return 0, set(ingestion.duplicates)
            updated = workload.model_copy(
                update={
                    "status": workload.status.model_copy(
                        update={"signals": ingestion.signals, "baseline": ingestion.baseline}
                    )
                }
            )
            evaluation = build_evaluation(inputs.model_copy(update={"workload": updated}), now)
            status = evaluation.status.model_dump(by_alias=True, exclude_none=True, mode="json")
            # Keep every new record even if pruning would drop one: it was acknowledged.
            kept = {s["id"] for s in status.get("signals", [])}
            missing = [
                r.model_dump(by_alias=True, exclude_none=True, mode="json")
                for r in ingestion.added
                if r.id not in kept
            ]
            status["signals"] = (status.get("signals", []) + missing)[-100:]
            try:
                result = await asyncio.to_thread(
                    rec.kube.patch_status,
                    "AIWorkload",
                    key[0],
                    key[1],
                    status,
                    body["metadata"]["resourceVersion"],
                )
            except ApiException as exc:
                if exc.status == 409 and attempt + 1 < self.max_attempts:
                    body = await asyncio.to_thread(rec.kube.get_custom, "AIWorkload", key[0], key[1])
                    continue
                raise
            rec.store.upsert("AIWorkload", result)
            return len(ingestion.added), set(ingestion.duplicates)
        raise CommitError("too many concurrent updates")
