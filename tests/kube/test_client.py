"""The start-up listing against the real API server: paged, complete, in both scopes."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from aitrust.kube import client as kube_client
from aitrust.kube.client import Kube


def test_listing_pages_through_every_object(
    kube_api: Any, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    core = client.CoreV1Api(kube_api)
    for i in range(5):
        core.create_namespaced_service_account(
            namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=f"sa-{i}"))
        )
    monkeypatch.setattr(kube_client, "LIST_PAGE", 2)
    kube = Kube(kube_api)
    names = {sa["metadata"]["name"] for sa in kube.list_core("ServiceAccount", (namespace,))}
    assert {f"sa-{i}" for i in range(5)} <= names  # 3 pages of 2 (plus the namespace's default)
    everywhere = {
        (sa["metadata"]["namespace"], sa["metadata"]["name"]) for sa in kube.list_core("ServiceAccount")
    }
    assert {(namespace, f"sa-{i}") for i in range(5)} <= everywhere
    custom = client.CustomObjectsApi(kube_api)
    for i in range(3):
        body = {
            "apiVersion": "aitrust.dev/v1alpha1",
            "kind": "AIWorkload",
            "metadata": {"name": f"w-{i}"},
            "spec": {"kind": "agent", "selector": {"matchLabels": {"app": f"w-{i}"}}},
        }
        custom.create_namespaced_custom_object("aitrust.dev", "v1alpha1", namespace, "aiworkloads", body)
    workloads = list(kube.list_custom("AIWorkload", (namespace,)))
    assert sorted(w["metadata"]["name"] for w in workloads) == ["w-0", "w-1", "w-2"]
    assert {(w["apiVersion"], w["kind"]) for w in workloads} == {("aitrust.dev/v1alpha1", "AIWorkload")}
