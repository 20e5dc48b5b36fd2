"""Posture is computed from the live pods a selector matches, and follows the Deployment."""

from __future__ import annotations

import json
from typing import Any

from aitrust.testing.cluster import wait_until
from tests.conftest import Kubectl, OperatorFactory


def deployment(privileged: bool) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "vllm",
        "image": "docker.io/vllm/vllm-openai@sha256:" + "a" * 64,
        "args": ["--model", "meta-llama/Llama-3.1-8B-Instruct", "--port", "8000"],
        "ports": [{"containerPort": 8000}],
        "resources": {"limits": {"cpu": "4", "memory": "16Gi"}, "requests": {"cpu": "2", "memory": "8Gi"}},
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if privileged:
        container["securityContext"] = {"privileged": True, "runAsUser": 0}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "vllm"},
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": {"app": "vllm"}},
            "template": {
                "metadata": {"labels": {"app": "vllm"}},
                "spec": {"automountServiceAccountToken": False, "containers": [container]},
            },
        },
    }


WORKLOAD = {
    "apiVersion": "aitrust.dev/v1alpha1",
    "kind": "AIWorkload",
    "metadata": {"name": "vllm"},
    "spec": {"kind": "inference", "selector": {"matchLabels": {"app": "vllm"}}},
}


def status(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    result: dict[str, Any] = kubectl.json("get", "aiw", "vllm", "-n", namespace).get("status", {})
    return result


def test_posture_follows_the_deployment(
    kubectl: Kubectl, namespace: str, start_operator: OperatorFactory
) -> None:
    start_operator()
    kubectl.run("apply", "-n", namespace, "-f", "-", input=json.dumps(WORKLOAD))
    kubectl.run("apply", "-n", namespace, "-f", "-", input=json.dumps(deployment(privileged=False)))

    hardened = wait_until(lambda: (s := status(kubectl, namespace)).get("matchedPods") == 1 and s, timeout=30)
    hardened_ids = {f["id"] for f in hardened["factors"]}
    assert sum(f["points"] for f in hardened["factors"]) == hardened["trustScore"]

    kubectl.run("apply", "-n", namespace, "-f", "-", input=json.dumps(deployment(privileged=True)))

    def privileged_scored() -> dict[str, Any] | None:
        s = status(kubectl, namespace)
        reasons = " ".join(f["reason"] for f in s.get("factors", []))
        return s if s.get("matchedPods") == 1 and "privileged" in reasons.lower() else None

    worse = wait_until(privileged_scored, timeout=30)
    assert worse["trustScore"] < hardened["trustScore"]
    assert worse["postureScore"] < hardened["postureScore"]
    new_ids = {f["id"] for f in worse["factors"]} - hardened_ids
    assert new_ids, "the privileged template must add posture findings"
    assert sum(f["points"] for f in worse["factors"]) == worse["trustScore"]
