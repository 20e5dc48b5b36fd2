"""Read-only access to a live cluster for explain, get and inventory --cluster.

Uses the official ``kubernetes`` client with raw JSON (camelCase, like manifests), so the
pure core sees the same shapes whether objects come from files or from the API server.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from aitrust.api.v1alpha1 import GROUP, VERSION
from aitrust.kube.client import PLURALS, load_config, raw_json

__all__ = ["ApiException", "ClusterReader", "TransportError", "current_context", "current_namespace"]

# What a read can raise besides ApiException: connection refused, TLS, timeouts.
TransportError = (HTTPError, OSError)
IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

# AI custom resources listed by inventory when their CRDs are installed: (group, version, plural, kind).
_AI_CUSTOM_RESOURCES = (
    ("serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService"),
    ("ray.io", "v1", "rayclusters", "RayCluster"),
    ("ray.io", "v1", "rayjobs", "RayJob"),
    ("ray.io", "v1", "rayservices", "RayService"),
    ("kubeflow.org", "v1", "pytorchjobs", "PyTorchJob"),
    ("kubeflow.org", "v1", "notebooks", "Notebook"),
)


def _active_context(kubeconfig: str | None) -> dict[str, Any] | None:
    if not kubeconfig and not os.environ.get("KUBECONFIG") and os.environ.get("KUBERNETES_SERVICE_HOST"):
        return None
    try:
        _, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    except (config.ConfigException, OSError):
        return None
    return cast(dict[str, Any] | None, active)


def current_namespace(kubeconfig: str | None) -> str:
    """The kubeconfig context's namespace (like kubectl), the pod's own in-cluster, else default."""
    active = _active_context(kubeconfig)
    if active is not None:
        namespace = (active.get("context") or {}).get("namespace")
        return str(namespace) if namespace else "default"
    try:
        return IN_CLUSTER_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"


def current_context(kubeconfig: str | None) -> str:
    active = _active_context(kubeconfig)
    return str(active.get("name")) if active and active.get("name") else "in-cluster"


class ClusterReader:
    def __init__(self, kubeconfig: str | None = None) -> None:
        self.api_client = load_config(kubeconfig)
        self.custom = client.CustomObjectsApi(self.api_client)
        self.core = client.CoreV1Api(self.api_client)
        self.apps = client.AppsV1Api(self.api_client)
        self.batch = client.BatchV1Api(self.api_client)

    def close(self) -> None:
        self.api_client.close()  # type: ignore[no-untyped-call]

    def get_aitrust(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            obj = self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURALS[kind], name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return cast(dict[str, Any], obj)

    def list_aitrust(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        if namespace:
            result = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURALS[kind])
        else:
            result = self.custom.list_cluster_custom_object(GROUP, VERSION, PLURALS[kind])
        items: list[dict[str, Any]] = cast(dict[str, Any], result).get("items", [])
        for item in items:
            item.setdefault("apiVersion", f"{GROUP}/{VERSION}")
            item.setdefault("kind", kind)
        return items

    def _raw(self, call: Callable[..., Any], api_version: str, kind: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = raw_json(call(_preload_content=False)).get("items", [])
        for item in items:
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return items

    def list_workloads(self) -> list[dict[str, Any]]:
        """Top-level workload objects: anything a controller owns is represented by its owner."""
        found: list[dict[str, Any]] = []
        found += self._raw(self.apps.list_deployment_for_all_namespaces, "apps/v1", "Deployment")
        found += self._raw(self.apps.list_stateful_set_for_all_namespaces, "apps/v1", "StatefulSet")
        found += self._raw(self.apps.list_daemon_set_for_all_namespaces, "apps/v1", "DaemonSet")
        found += self._raw(self.batch.list_job_for_all_namespaces, "batch/v1", "Job")
        found += self._raw(self.batch.list_cron_job_for_all_namespaces, "batch/v1", "CronJob")
        found += self._raw(self.core.list_pod_for_all_namespaces, "v1", "Pod")
        for group, version, plural, kind in _AI_CUSTOM_RESOURCES:
            try:
                result = self.custom.list_cluster_custom_object(group, version, plural)
            except ApiException as exc:
                if exc.status in (403, 404):
                    continue  # CRD not installed, or not ours to read
                raise
            for item in cast(dict[str, Any], result).get("items", []):
                item.setdefault("apiVersion", f"{group}/{version}")
                item.setdefault("kind", kind)
                found.append(item)
        return [obj for obj in found if not _controlled(obj)]


def _controlled(obj: dict[str, Any]) -> bool:
    owners = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(o.get("controller") for o in owners if isinstance(o, dict))
