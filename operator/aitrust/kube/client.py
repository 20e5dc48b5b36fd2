"""Thin wrappers over the official kubernetes client; every write uses the aitrust field manager."""

from __future__ import annotations

import json
import os
from typing import Any, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from aitrust.api.v1alpha1 import GROUP, VERSION
from aitrust.kube.aio import AsyncKube

FIELD_MANAGER = "aitrust-operator"

PLURALS = {
    "AIWorkload": "aiworkloads",
    "ModelEndpoint": "modelendpoints",
    "DataSource": "datasources",
    "TrustPolicy": "trustpolicies",
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

    def list_custom(self, kind: str, namespaces: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """Cluster-wide, or per namespace when the operator is namespaced (least privilege)."""
        if namespaces:
            pages = [
                self.custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURALS[kind])
                for ns in namespaces
            ]
        else:
            pages = [self.custom.list_cluster_custom_object(GROUP, VERSION, PLURALS[kind])]
        items: list[dict[str, Any]] = [
            i for page in pages for i in cast(dict[str, Any], page).get("items", [])
        ]
        for item in items:
            item.setdefault("apiVersion", f"{GROUP}/{VERSION}")
            item.setdefault("kind", kind)
        return items

    def list_core(self, kind: str, namespaces: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        # Raw JSON: the typed models are slow and lose unknown fields.
        plural = {"Pod": "pod", "Service": "service", "ServiceAccount": "service_account"}[kind]
        if namespaces:
            calls = [
                getattr(self.core, f"list_namespaced_{plural}")(ns, _preload_content=False)
                for ns in namespaces
            ]
        else:
            calls = [getattr(self.core, f"list_{plural}_for_all_namespaces")(_preload_content=False)]
        return [i for raw in calls for i in raw_json(raw)["items"]]

    def read_secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        try:
            secret = raw_json(self.core.read_namespaced_secret(name, namespace, _preload_content=False))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        data: dict[str, str] = secret.get("data") or {}
        return data
