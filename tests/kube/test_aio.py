"""Journal records through ``Kube.aio`` against the real API server: same identity, same errors."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from aitrust.controller.journal import build_journal_records, parse_journal_record
from aitrust.core.signal import Signal, WorkloadHint
from aitrust.kube.client import FIELD_MANAGER, Kube
from aitrust.kube.journal import create_journal_record, delete_journal_record, list_journal_records


def _signal(i: int) -> Signal:
    return Signal.model_validate(
        {
            "id": f"evt-{i}",
            "source": "falco",
            "time": "2026-11-01T00:00:00Z",
            "severity": "high",
            "rule": "Terminal shell in container",
            "target": WorkloadHint(namespace="ml", pod="agent-0"),
        }
    )


def test_journal_records_round_trip_through_the_event_loop_client(kube_api: Any, namespace: str) -> None:
    kube = Kube(kube_api)
    [record] = build_journal_records([(("ml", "agent"), _signal(1)), (("ml", "agent"), _signal(2))])

    async def run() -> None:
        try:
            name = await create_journal_record(kube, namespace, record.body)
            [stored] = list_journal_records(kube, namespace)
            assert stored["metadata"]["name"] == name
            assert stored["metadata"]["managedFields"][0]["manager"] == FIELD_MANAGER
            assert [s.id for _, s in parse_journal_record(stored)] == ["evt-1", "evt-2"]

            with pytest.raises(ApiException) as conflict:  # the same name twice: the server's 409
                await create_journal_record(kube, namespace, record.body)
            assert conflict.value.status == 409 and "already exists" in (conflict.value.body or "")

            await delete_journal_record(kube, namespace, name)
            await delete_journal_record(kube, namespace, name)  # already gone: not an error
            assert list_journal_records(kube, namespace) == []

            with pytest.raises(ApiException) as missing:
                await kube.aio.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/nope")
            assert missing.value.status == 404
        finally:
            await kube.aio.close()

    asyncio.run(run())
