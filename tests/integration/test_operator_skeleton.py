"""`aitrust run` reconciles AIWorkloads on the real API server."""

from __future__ import annotations

import json
import time
from typing import Any

from aitrust.testing.cluster import wait_until
from tests.conftest import CRDS, Kubectl, OperatorFactory


def _ready(obj: dict[str, Any]) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == "Ready":
            return dict(cond)
    return None


def test_ready_follows_referenced_endpoint(
    kubectl: Kubectl, namespace: str, start_operator: OperatorFactory
) -> None:
    start_operator()
    kubectl.run("apply", "-n", namespace, "-f", str(CRDS / "samples/aiworkload-agent.yaml"))
    kubectl.run("apply", "-n", namespace, "-f", str(CRDS / "samples/trustpolicy-default.yaml"))

    def status_with(reason: str) -> dict[str, Any] | None:
        obj = kubectl.json("get", "aiw", "support-agent", "-n", namespace)
        ready = _ready(obj)
        if (
            ready
            and ready["reason"] == reason
            and obj["status"].get("observedGeneration") == obj["metadata"]["generation"]
        ):
            found: dict[str, Any] = obj
            return found
        return None

    obj = wait_until(lambda: status_with("TargetNotFound"), timeout=15)
    ready = _ready(obj)
    assert ready is not None and ready["status"] == "False"
    assert f"ModelEndpoint {namespace}/llama-vllm" in ready["message"]

    # The workload is re-queued when its references appear.
    for sample in ("modelendpoint-vllm", "modelendpoint-bedrock", "datasource-vectordb"):
        kubectl.run("apply", "-n", namespace, "-f", str(CRDS / f"samples/{sample}.yaml"))
    obj = wait_until(lambda: status_with("NoMatchingPods"), timeout=15)
    assert _ready(obj)["status"] == "True"  # type: ignore[index]

    # The targets report their own validity, at their generation.
    for kind, name in (("modelendpoint", "llama-vllm"), ("datasource", "qdrant")):

        def accepted(kind: str = kind, name: str = name) -> dict[str, Any] | None:
            target = kubectl.json("get", kind, name, "-n", namespace)
            ready = _ready(target)
            current = target.get("status", {}).get("observedGeneration") == target["metadata"]["generation"]
            return target if current and ready and ready["reason"] == "Accepted" else None

        target = wait_until(accepted, timeout=10)
        assert _ready(target)["status"] == "True"  # type: ignore[index]

    # A spec change bumps the generation; the operator catches up.
    patch = {"spec": {"selector": {"matchLabels": {"app": "support-agent", "tier": "web"}}}}
    kubectl.run("patch", "aiw", "support-agent", "-n", namespace, "--type=merge", "-p", json.dumps(patch))
    obj = wait_until(lambda: status_with("NoMatchingPods"), timeout=15)
    assert obj["metadata"]["generation"] == 2


def test_invalid_regex_in_policy_is_reported_not_fatal(
    kubectl: Kubectl, namespace: str, start_operator: OperatorFactory
) -> None:
    proc = start_operator()
    policy = {
        "apiVersion": "aitrust.dev/v1alpha1",
        "kind": "TrustPolicy",
        "metadata": {"name": "default"},
        "spec": {"signals": {"rules": [{"name": "broken", "match": {"rule": "(unclosed"}, "points": 10}]}},
    }
    workload = {
        "apiVersion": "aitrust.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {"name": "w"},
        "spec": {"kind": "agent", "selector": {"matchLabels": {"app": "w"}}},
    }
    kubectl.run("apply", "-n", namespace, "-f", "-", input=json.dumps(policy))
    kubectl.run("apply", "-n", namespace, "-f", "-", input=json.dumps(workload))

    def reported() -> dict[str, Any] | None:
        conds = {
            c["type"]: c
            for c in kubectl.json("get", "aiw", "w", "-n", namespace).get("status", {}).get("conditions", [])
        }
        return conds if conds.get("Ready", {}).get("reason") == "InvalidPolicy" else None

    conds = wait_until(reported, timeout=15)
    assert "broken" in conds["Ready"]["message"]
    assert conds["Stalled"]["status"] == "True"  # kstatus: Failed
    assert proc.alive()

    # The policy's own status says so too, at its generation; fixed, it becomes Ready.
    def own_status() -> dict[str, Any]:
        result: dict[str, Any] = kubectl.json("get", "trustpolicy", "default", "-n", namespace)
        return result

    def own_ready(reason: str) -> dict[str, Any] | None:
        obj = own_status()
        status = obj.get("status", {})
        conds = {c["type"]: c for c in status.get("conditions", [])}
        if status.get("observedGeneration") != obj["metadata"]["generation"]:
            return None
        return conds if conds.get("Ready", {}).get("reason") == reason else None

    own = wait_until(lambda: own_ready("InvalidPolicy"), timeout=10)
    assert own["Ready"]["status"] == "False" and "broken" in own["Ready"]["message"]
    assert own["Stalled"]["status"] == "True"
    policy["spec"]["signals"]["rules"][0]["match"]["rule"] = "shell"  # type: ignore[index]
    kubectl.run("apply", "-n", namespace, "-f", "-", input=json.dumps(policy))
    own = wait_until(lambda: own_ready("Accepted"), timeout=10)
    assert own["Ready"]["status"] == "True" and "Stalled" not in own
    # Its own status writes do not make it churn.
    rv = own_status()["metadata"]["resourceVersion"]
    time.sleep(1.5)
    assert own_status()["metadata"]["resourceVersion"] == rv
