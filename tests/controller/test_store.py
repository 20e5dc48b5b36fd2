from __future__ import annotations

import copy
from typing import Any

from aitrust.controller.store import Store

POD: dict[str, Any] = {
    "metadata": {"name": "p", "namespace": "ml", "uid": "u1", "resourceVersion": "1", "labels": {"a": "1"}},
    "spec": {"serviceAccountName": "sa", "containers": [{"name": "c", "image": "i"}]},
    "status": {"phase": "Running", "podIP": "10.0.0.1"},
}


def bumped(store: Store, kind: str, body: dict[str, Any]) -> bool:
    before = store.version
    store.upsert(kind, body)
    return store.version != before


def test_the_mapping_version_moves_only_when_mapping_inputs_change() -> None:
    store = Store()
    assert bumped(store, "Pod", POD)
    same = copy.deepcopy(POD)
    same["metadata"]["resourceVersion"] = "2"
    same["status"]["conditions"] = [{"type": "Ready"}]
    assert not bumped(store, "Pod", same)  # a status heartbeat
    relabelled = copy.deepcopy(same)
    relabelled["metadata"]["resourceVersion"] = "3"
    relabelled["metadata"]["labels"] = {"a": "2"}
    assert bumped(store, "Pod", relabelled)
    moved = copy.deepcopy(relabelled)
    moved["metadata"]["resourceVersion"] = "4"
    moved["status"]["podIP"] = "10.0.0.2"
    assert bumped(store, "Pod", moved)

    workload = {
        "metadata": {"name": "w", "namespace": "ml", "uid": "w1", "generation": 1, "resourceVersion": "5"}
    }
    assert bumped(store, "AIWorkload", workload)
    status_write = {
        **workload,
        "metadata": {**workload["metadata"], "resourceVersion": "6"},
        "status": {"x": 1},
    }
    assert not bumped(store, "AIWorkload", status_write)
    spec_change = {**workload, "metadata": {**workload["metadata"], "resourceVersion": "7", "generation": 2}}
    assert bumped(store, "AIWorkload", spec_change)

    before = store.version
    store.delete("Pod", "ml", "p")
    assert store.version != before
