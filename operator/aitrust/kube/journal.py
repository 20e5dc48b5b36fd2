"""Store, list and delete signal journal records (ConfigMaps in the operator's namespace).

Writes and deletes run on the event loop (``Kube.aio``): they are on the acknowledgement path.
"""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException

from aitrust.controller.journal import JOURNAL_LABEL
from aitrust.kube.client import FIELD_MANAGER, Kube, raw_json


def _path(namespace: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{namespace}/configmaps" + (f"/{name}" if name else "")


async def create_journal_record(kube: Kube, namespace: str, body: dict[str, Any]) -> str:
    """Returns once the API server has stored the record (etcd commit): the signals are durable."""
    await kube.aio.request("POST", _path(namespace), body, params={"fieldManager": FIELD_MANAGER})
    return str(body["metadata"]["name"])


def list_journal_records(kube: Kube, namespace: str) -> list[dict[str, Any]]:
    raw = kube.core.list_namespaced_config_map(
        namespace, label_selector="=".join(JOURNAL_LABEL), _preload_content=False
    )
    items: list[dict[str, Any]] = raw_json(raw)["items"]
    return sorted(items, key=lambda i: i["metadata"]["name"])


async def delete_journal_record(kube: Kube, namespace: str, name: str) -> None:
    try:
        await kube.aio.request("DELETE", _path(namespace, name))
    except ApiException as exc:
        if exc.status != 404:
            raise
