from __future__ import annotations

from aitrust.controller.store import Store


def _pod(name: str, rv: str, labels: dict[str, str]) -> dict[str, object]:
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "resourceVersion": rv,
            "labels": labels,
            "managedFields": [{}],
        },
        "spec": {"containers": []},
        "status": {"phase": "Running", "conditions": [{"type": "Ready"}]},
    }


def test_older_versions_never_replace_newer_ones() -> None:
    store = Store()
    assert store.upsert("Pod", _pod("p", "10", {"v": "new"}))
    assert not store.upsert("Pod", _pod("p", "9", {"v": "old"}))
    pod = store.get("Pod", "ns", "p")
    assert pod is not None and pod["metadata"]["labels"] == {"v": "new"}
    assert "managedFields" not in pod["metadata"] and "conditions" not in pod["status"]


def test_namespace_listing_and_delete() -> None:
    store = Store()
    store.upsert("Pod", _pod("b", "1", {}))
    store.upsert("Pod", _pod("a", "1", {}))
    assert [p["metadata"]["name"] for p in store.in_namespace("Pod", "ns")] == ["a", "b"]
    store.delete("Pod", "ns", "a")
    assert [p["metadata"]["name"] for p in store.in_namespace("Pod", "ns")] == ["b"]
    assert store.count("Pod") == 1
