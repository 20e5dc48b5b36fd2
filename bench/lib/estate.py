"""The synthetic estate: namespaces of AIWorkloads, each with one Pod, a TrustPolicy and a ModelEndpoint.

Workload ``i`` is ``wl-<i>`` in namespace ``bench-<i // per_namespace>``; its Pod ``wl-<i>-0`` carries
``app: wl-<i>`` and is a hardened, digest-pinned inference server, so it starts trusted and its
grant to the namespace's ModelEndpoint ``llm`` is allowed. Pods are bare objects: no scheduler
or kubelet runs, which aitrust does not need (it reads the spec).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

GROUP_PATH = "/apis/aitrust.dev/v1alpha1"
NOISE_RULE = "Bench background activity"
TRIAL_RULE = "Bench compromise"
LLM_LABELS = {"app": "llm"}
IMAGE = "registry.example.com/vllm/vllm-openai@sha256:" + "5f1d6a3c9b8e7f2a" * 4


@dataclass(frozen=True)
class Workload:
    index: int
    namespace: str
    name: str

    @property
    def pod(self) -> str:
        return f"{self.name}-0"

    @property
    def policy(self) -> str:
        return f"aitrust-{self.name}"


def workload(index: int, per_namespace: int) -> Workload:
    return Workload(index, f"bench-{index // per_namespace:03d}", f"wl-{index:05d}")


def namespaces(count: int, per_namespace: int) -> list[str]:
    return sorted({workload(i, per_namespace).namespace for i in range(count)})


def trust_policy() -> dict[str, Any]:
    """Background noise costs nothing; the trial rule quarantines at once."""
    return {
        "apiVersion": "aitrust.dev/v1alpha1",
        "kind": "TrustPolicy",
        "metadata": {"name": "default"},
        "spec": {
            "mode": "enforce",
            "signals": {
                "halfLife": "1h",
                "rules": [
                    {"name": "bench-noise", "match": {"rule": f"^{NOISE_RULE}$"}, "points": 0},
                    {
                        "name": "bench-compromise",
                        "match": {"rule": f"^{TRIAL_RULE}$"},
                        "points": 100,
                        "quarantine": {"duration": "1h"},
                    },
                ],
            },
        },
    }


def model_endpoint() -> dict[str, Any]:
    return {
        "apiVersion": "aitrust.dev/v1alpha1",
        "kind": "ModelEndpoint",
        "metadata": {"name": "llm"},
        "spec": {
            "provider": "in-cluster",
            "selector": {"matchLabels": LLM_LABELS},
            "ports": [{"port": 8000}],
        },
    }


def namespace_objects(ns: str) -> list[tuple[str, dict[str, Any]]]:
    """(collection path, body) of what one namespace holds besides its workloads."""
    return [
        (f"{GROUP_PATH}/namespaces/{ns}/trustpolicies", trust_policy()),
        (f"{GROUP_PATH}/namespaces/{ns}/modelendpoints", model_endpoint()),
    ]


def pod(w: Workload) -> dict[str, Any]:
    restricted = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": w.pod, "labels": {"app": w.name, "aitrust.dev/bench": "true"}},
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "server",
                    "image": IMAGE,
                    "ports": [{"containerPort": 8000}],
                    "securityContext": restricted,
                    "resources": {
                        "requests": {"cpu": "1", "memory": "2Gi"},
                        "limits": {"cpu": "2", "memory": "4Gi"},
                    },
                }
            ],
        },
    }


def aiworkload(w: Workload) -> dict[str, Any]:
    return {
        "apiVersion": "aitrust.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {"name": w.name, "labels": {"aitrust.dev/bench": "true"}},
        "spec": {
            "kind": "inference",
            "selector": {"matchLabels": {"app": w.name}},
            "access": {"modelEndpoints": [{"name": "llm"}]},
        },
    }


def workload_objects(w: Workload) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"/api/v1/namespaces/{w.namespace}/pods", pod(w)),
        (f"{GROUP_PATH}/namespaces/{w.namespace}/aiworkloads", aiworkload(w)),
    ]


def falco_event(w: Workload, rule: str, priority: str) -> dict[str, Any]:
    """One Falcosidekick webhook post about ``w``'s pod."""
    return {
        "uuid": str(uuid.uuid4()),
        "output": f"{priority} {rule} (bench)",
        "priority": priority,
        "rule": rule,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime()),
        "source": "syscall",
        "tags": ["bench"],
        "hostname": "node-1",
        "output_fields": {"k8s.ns.name": w.namespace, "k8s.pod.name": w.pod, "proc.name": "python"},
    }


def egress_to_llm(policy: dict[str, Any]) -> bool:
    """Whether a workload NetworkPolicy still lets the workload reach the ModelEndpoint."""
    return any(
        (peer.get("podSelector") or {}).get("matchLabels") == LLM_LABELS
        for rule in (policy.get("spec") or {}).get("egress") or []
        for peer in rule.get("to") or []
    )
