"""Thin wrappers over the official kubernetes client; every write uses the aitrust field manager."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from typing import Any, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from aitrust.api.v1alpha1 import GROUP, VERSION
from aitrust.kube.aio import AsyncKube

FIELD_MANAGER = "aitrust-operator"
LIST_PAGE = 500  # objects per page of the start-up listing

PLURALS = {
    "AIWorkload": "aiworkloads",
    "ModelEndpoint": "modelendpoints",
    "DataSource": "datasources",
    "TrustPolicy": "trustpolicies",
    "ShadowAIReport": "shadowaireports",  # written by the shadow-AI inventory only
}


def raw_json(response: object) -> Any:
    """The body of a ``_preload_content=False`` call: faster than the typed models, and lossless."""
    return json.loads(response.data)  # type: ignore[attr-defined]


def load_config(kubeconfig: str | None = None) -> client.ApiClient:
    """An ApiClient from the kubeconfig, or in-cluster credentials when running in a pod."""
    if kubeconfig or os.environ.get("KUBECONFIG") or not os.environ.get("KUBERNETES_SERVICE_HOST"):
        cfg = client.Configuration()
        config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)  # type: ignore[no-untyped-call]
    else:
        cfg = client.Configuration()
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    cfg.connection_pool_maxsize = 32
    return client.ApiClient(cfg)


class Kube:
    def __init__(self, api_client: client.ApiClient) -> None:
        self.api_client = api_client
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)
        self.networking = client.NetworkingV1Api(api_client)
        self.aio = AsyncKube(api_client.configuration)

    def get_custom(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            obj = self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURALS[kind], name)
            return cast(dict[str, Any], obj)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def patch_status(
        self,
        kind: str,
        namespace: str,
        name: str,
        status: dict[str, Any],
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """Merge-patch the status subresource; spec is never written. Runs on the event loop.

        With ``resource_version`` the write fails (409) if anyone wrote since that version, so
        two writers (reconciler, signal ingestion) can never silently drop each other's records.
        """
        body: dict[str, Any] = {"status": status}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        result = await self.aio.request(
            "PATCH",
            f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURALS[kind]}/{name}/status",
            body,
            params={"fieldManager": FIELD_MANAGER},
            content_type="application/merge-patch+json",
        )
        return cast(dict[str, Any], result)

    def list_custom(self, kind: str, namespaces: tuple[str, ...] = ()) -> Iterator[dict[str, Any]]:
        """Cluster-wide, or per namespace when the operator is namespaced (least privilege).

        Paged, so that a start with thousands of objects holds one page at a time, not the
        whole listing next to the store it fills."""

        def fetch(ns: str | None, token: str | None) -> dict[str, Any]:
            paging: dict[str, Any] = {"limit": LIST_PAGE, **({"_continue": token} if token else {})}
            if ns is None:
                page = self.custom.list_cluster_custom_object(GROUP, VERSION, PLURALS[kind], **paging)
            else:
                page = self.custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURALS[kind], **paging)
            return cast(dict[str, Any], page)

        for item in _paged(fetch, namespaces):
            item.setdefault("apiVersion", f"{GROUP}/{VERSION}")
            item.setdefault("kind", kind)
            yield item

    def list_core(self, kind: str, namespaces: tuple[str, ...] = ()) -> Iterator[dict[str, Any]]:
        # Raw JSON: the typed models are slow and lose unknown fields.
        plural = {"Pod": "pod", "Service": "service", "ServiceAccount": "service_account"}[kind]

        def fetch(ns: str | None, token: str | None) -> dict[str, Any]:
            paging: dict[str, Any] = {"limit": LIST_PAGE, "_preload_content": False}
            if token:
                paging["_continue"] = token
            if ns is None:
                raw = getattr(self.core, f"list_{plural}_for_all_namespaces")(**paging)
            else:
                raw = getattr(self.core, f"list_namespaced_{plural}")(ns, **paging)
            return cast(dict[str, Any], raw_json(raw))

        yield from _paged(fetch, namespaces)

    def read_secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        try:
            secret = raw_json(self.core.read_namespaced_secret(name, namespace, _preload_content=False))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        data: dict[str, str] = secret.get("data") or {}
        return data


def _paged(
    fetch: Callable[[str | None, str | None], dict[str, Any]], namespaces: tuple[str, ...]
) -> Iterator[dict[str, Any]]:
    """Items of every page, per namespace (or cluster-wide when none are given)."""
    for ns in namespaces or (None,):
        token: str | None = None
        while True:
            page = fetch(ns, token)
            yield from page.get("items") or []
            token = (page.get("metadata") or {}).get("continue") or None
            if token is None:
                break
