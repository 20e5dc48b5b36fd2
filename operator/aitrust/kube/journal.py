"""Store, list and delete signal journal records (ConfigMaps in the operator's namespace)."""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException

from aitrust.controller.journal import JOURNAL_LABEL
from aitrust.kube.client import FIELD_MANAGER, Kube, drain, raw_json


def create_journal_record(kube: Kube, namespace: str, body: dict[str, Any]) -> str:
    """Returns once the API server has stored the record (etcd commit): the signals are durable."""
    response = kube.core.create_namespaced_config_map(
        namespace,
        body,  # type: ignore[arg-type]
        field_manager=FIELD_MANAGER,
        _preload_content=False,
    )
    drain(response)
    return str(body["metadata"]["name"])


def list_journal_records(kube: Kube, namespace: str) -> list[dict[str, Any]]:
    raw = kube.core.list_namespaced_config_map(
        namespace, label_selector="=".join(JOURNAL_LABEL), _preload_content=False
    )
    items: list[dict[str, Any]] = raw_json(raw)["items"]
    return sorted(items, key=lambda i: i["metadata"]["name"])


def delete_journal_record(kube: Kube, namespace: str, name: str) -> None:
    try:
        drain(kube.core.delete_namespaced_config_map(name, namespace, _preload_content=False))
    except ApiException as exc:
        if exc.status != 404:
            raise
