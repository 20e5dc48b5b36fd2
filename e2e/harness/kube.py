"""The API objects behind the simulated data plane: a Node and Pods whose status a kubelet would write."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any, Protocol


class KubectlLike(Protocol):
    def run(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]: ...

    def json(self, *args: str) -> Any: ...


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def apply(kubectl: KubectlLike, namespace: str | None, *objs: dict[str, Any]) -> None:
    ns = ["-n", namespace] if namespace else []
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)})
    kubectl.run("apply", *ns, "-f", "-", input=body)


def patch_status(
    kubectl: KubectlLike, kind: str, name: str, namespace: str | None, status: dict[str, Any]
) -> None:
    ns = ["-n", namespace] if namespace else []
    kubectl.run(
        "patch", kind, name, *ns, "--subresource=status", "--type=merge", "-p", json.dumps({"status": status})
    )


def register_node(kubectl: KubectlLike, name: str, internal_ip: str) -> None:
    """A Ready Node with an InternalIP: kube-router reads its own address from here."""
    apply(
        kubectl,
        None,
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "aitrust.dev/e2e": "true"}},
            "spec": {},
        },
    )
    now = _now()
    patch_status(
        kubectl,
        "node",
        name,
        None,
        {
            "addresses": [
                {"type": "InternalIP", "address": internal_ip},
                {"type": "Hostname", "address": name},
            ],
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "simulated by the aitrust e2e harness",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                }
            ],
        },
    )


def pod_manifest(
    name: str,
    labels: dict[str, str],
    node: str,
    spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    base: dict[str, Any] = {
        "nodeName": node,
        "containers": [{"name": "main", "image": "registry.example.com/e2e/app@sha256:" + "a" * 64}],
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {**base, **(spec or {})},
    }


def mark_running(kubectl: KubectlLike, namespace: str, name: str, pod_ip: str, host_ip: str) -> None:
    """What the kubelet would report once the sandbox is up: Running, Ready, with pod and host IPs."""
    now = _now()
    ready = {"status": "True", "lastTransitionTime": now}
    patch_status(
        kubectl,
        "pod",
        name,
        namespace,
        {
            "phase": "Running",
            "podIP": pod_ip,
            "podIPs": [{"ip": pod_ip}],
            "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}],
            "startTime": now,
            "conditions": [
                {"type": "PodScheduled", **ready},
                {"type": "Initialized", **ready},
                {"type": "ContainersReady", **ready},
                {"type": "Ready", **ready},
            ],
        },
    )
