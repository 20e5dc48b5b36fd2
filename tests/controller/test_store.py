from __future__ import annotations

import copy
import json
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


def _pod(name: str, rv: str, namespace: str = "ml", **labels: str) -> dict[str, Any]:
    body = copy.deepcopy(POD)
    body["metadata"].update(
        name=name, namespace=namespace, uid=f"u-{name}", resourceVersion=rv, labels=labels
    )
    return body


def _names(store: Store, namespace: str, **labels: str) -> list[str]:
    return [p["metadata"]["name"] for p in store.pods_labelled(namespace, labels)]


def test_pods_by_label_follow_relabelling_and_deletion() -> None:
    store = Store()
    store.upsert("Pod", _pod("b", "1", app="agent", tier="x"))
    store.upsert("Pod", _pod("a", "2", app="agent"))
    store.upsert("Pod", _pod("c", "3", app="llm"))
    store.upsert("Pod", _pod("d", "4", namespace="other", app="agent"))
    assert _names(store, "ml", app="agent") == ["a", "b"]  # by name, this namespace only
    assert _names(store, "ml", app="agent", tier="x") == ["b"]
    assert _names(store, "ml", app="nothing") == []
    assert _names(store, "ml") == ["a", "b", "c"]  # no labels: every pod of the namespace

    store.upsert("Pod", _pod("b", "5", app="llm"))
    assert _names(store, "ml", app="agent") == ["a"]
    assert _names(store, "ml", app="llm") == ["b", "c"]
    assert _names(store, "ml", app="agent", tier="x") == []
    store.upsert("Pod", _pod("b", "1", app="agent"))  # an older version: ignored
    assert _names(store, "ml", app="llm") == ["b", "c"]

    store.delete("Pod", "ml", "c")
    assert _names(store, "ml", app="llm") == ["b"]
    store.delete("Pod", "ml", "b")
    assert _names(store, "ml", app="llm") == []
    assert not any(key[0] == "ml" and key[2] == "llm" for key in store._pod_labels)  # no empty sets left


def test_stored_objects_share_their_keys_and_short_strings() -> None:
    store = Store()
    for name in ("a", "b"):
        body = {
            "metadata": {"name": name, "namespace": "ml", "resourceVersion": "1"},
            "status": {"conditions": [{"type": "Ready", "status": "True", "message": "x" * 100}]},
        }
        store.upsert("AIWorkload", json.loads(json.dumps(body)))  # parsed apart, as events are
    a, b = (store.get("AIWorkload", "ml", n)["status"]["conditions"][0] for n in ("a", "b"))  # type: ignore[index]
    assert a == b
    assert a["status"] is b["status"]
    assert next(iter(a)) is next(iter(b))  # the key "type"
    assert a["message"] is not b["message"]  # long strings are left alone
