"""The signal journal: acknowledged signals wait here until their workload's status holds them.

A signal is acknowledged once its journal record (one ConfigMap per group commit, in the
operator's namespace) is stored by the API server. One write per commit, whatever the number of
workloads, is what lets ingestion outpace status writes; reconciles then fold every waiting
signal of a workload into one status write, and the record is deleted when all of its signals
are in status. On start the leader replays the records left by a predecessor that was killed.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from aitrust.controller.store import Key
from aitrust.core.compact import build_lean_signal
from aitrust.core.signal import Signal

JOURNAL_LABEL = ("aitrust.dev/journal", "signals")
RECORD_KEY = "signals.json"
# ConfigMaps are capped at 1 MiB; stay well below it.
MAX_RECORD_BYTES = 700_000


class JournalRecord(NamedTuple):
    body: dict[str, Any]  # the ConfigMap, without namespace
    entries: list[tuple[Key, Signal]]  # what it holds


def build_journal_records(entries: Sequence[tuple[Key, Signal]]) -> list[JournalRecord]:
    """ConfigMaps holding ``entries``, split to stay under the size cap."""
    records: list[JournalRecord] = []
    lines: list[str] = []
    held: list[tuple[Key, Signal]] = []
    size = 0
    for key, signal in entries:
        # pydantic's own serialiser writes the signal: a third of the cost of dumping a dict.
        # Defaults are left out: half of a lean Falco alert's line is nulls and empty fields.
        line = (
            f'{{"namespace":{json.dumps(key[0])},"name":{json.dumps(key[1])},'
            f'"signal":{signal.model_dump_json(exclude_defaults=True)}}}'
        )
        if lines and size + len(line) > MAX_RECORD_BYTES:
            records.append(JournalRecord(_record(lines), held))
            lines, held, size = [], [], 0
        lines.append(line)
        held.append((key, signal))
        size += len(line) + 1
    if lines:
        records.append(JournalRecord(_record(lines), held))
    return records


def _record(lines: list[str]) -> dict[str, Any]:
    # Time-ordered names: replay order follows acknowledgement order.
    name = f"aitrust-journal-{time.time_ns():x}-{secrets.token_hex(3)}"
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "labels": {
                JOURNAL_LABEL[0]: JOURNAL_LABEL[1],
                "app.kubernetes.io/managed-by": "aitrust",
            },
        },
        "data": {RECORD_KEY: "\n".join(lines)},
    }


def parse_journal_record(body: dict[str, Any]) -> list[tuple[Key, Signal]]:
    """The entries of a stored record; lines that no longer parse are skipped, not fatal."""
    entries: list[tuple[Key, Signal]] = []
    for line in ((body.get("data") or {}).get(RECORD_KEY) or "").splitlines():
        try:
            item = json.loads(line)
            entries.append(((item["namespace"], item["name"]), Signal.model_validate(item["signal"])))
        except (ValueError, KeyError, TypeError):
            continue
    return entries


PROVISIONAL = "provisional:"


class Inbox:
    """Signals that are journaled but not yet in status, by workload, with the record holding each.

    A signal that costs points is filed under a provisional record while its journal write runs:
    tightening need not wait for durability (a signal can only lower trust); the 2xx still does.
    Signals are held lean (``build_lean_signal``): noise waits here by the ten thousand.
    """

    def __init__(self) -> None:
        self._pending: dict[Key, dict[str, tuple[Signal, str]]] = {}
        self._remaining: dict[str, int] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, record: str, entries: Iterable[tuple[Key, Signal]]) -> None:
        count = 0
        for key, signal in entries:
            waiting = self._pending.setdefault(key, {})
            if signal.id in waiting:
                if waiting[signal.id][1].startswith(PROVISIONAL):
                    self.move(record, [(key, signal)])  # a retry made it durable after all
                continue
            waiting[signal.id] = (build_lean_signal(signal), record)
            count += 1
        if count:
            self._remaining[record] = self._remaining.get(record, 0) + count
            self._count += count

    def move(self, record: str, entries: Iterable[tuple[Key, Signal]]) -> bool:
        """Re-file provisional entries under their stored ``record`` (those already applied are
        skipped); True when nothing of the record is left waiting, so it can go at once."""
        for key, signal in entries:
            entry = self._pending.get(key, {}).get(signal.id)
            if entry is None:
                continue
            old = entry[1]
            self._pending[key][signal.id] = (entry[0], record)
            self._remaining[old] -= 1
            if self._remaining[old] <= 0:
                del self._remaining[old]
            self._remaining[record] = self._remaining.get(record, 0) + 1
        return record not in self._remaining

    def holds(self, key: Key, signal_id: str) -> bool:
        """Waiting under a stored record (a provisional one may yet fail to be stored)."""
        entry = self._pending.get(key, {}).get(signal_id)
        return entry is not None and not entry[1].startswith(PROVISIONAL)

    def pending(self, key: Key) -> list[Signal]:
        return [signal for signal, _ in self._pending.get(key, {}).values()]

    def has_provisional(self, key: Key) -> bool:
        """Something waits that was filed early because it costs points."""
        return any(record.startswith(PROVISIONAL) for _, record in self._pending.get(key, {}).values())

    def workloads(self) -> list[Key]:
        return list(self._pending)

    def settle(self, key: Key, signal_ids: Iterable[str]) -> list[str]:
        """These signals are in status now; the records left with nothing waiting are returned."""
        waiting = self._pending.get(key, {})
        done: list[str] = []
        for signal_id in signal_ids:
            entry = waiting.pop(signal_id, None)
            if entry is None:
                continue
            record = entry[1]
            self._count -= 1
            self._remaining[record] -= 1
            if self._remaining[record] <= 0:
                del self._remaining[record]
                done.append(record)
        if not waiting:
            self._pending.pop(key, None)
        return done

    def drop(self, key: Key) -> list[str]:
        """The workload is gone: its waiting signals have nothing left to change."""
        return self.settle(key, list(self._pending.get(key, {})))

    def empty_records(self, records: Iterable[str]) -> list[str]:
        """Of these stored records, those with nothing waiting (fully applied before a restart)."""
        return [r for r in records if r not in self._remaining]
