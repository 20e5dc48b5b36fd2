from __future__ import annotations

from typing import Any

from aitrust.api.v1alpha1 import AIWorkload
from aitrust.core.classify import Classification
from aitrust.core.shadow import build_shadow_inventory, owner_of, render_policy_report


def pod(name: str, labels: dict[str, str], owner: tuple[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ml", "labels": labels}
    if owner:
        meta["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "controller": True}]
    return {"metadata": meta, "spec": {"containers": []}}


AI = Classification(isAI=True, category="inference", confidence=0.9, evidence=["image vllm (0.9)"])
NOT_AI = Classification(isAI=False, category=None, confidence=0.1, evidence=[])


def test_owner_of_follows_the_deployment_naming_convention() -> None:
    assert owner_of(pod("vllm-7d9f-abc", {"pod-template-hash": "7d9f"}, ("ReplicaSet", "vllm-7d9f"))) == (
        "Deployment",
        "vllm",
    )
    assert owner_of(pod("job-x", {}, ("Job", "train"))) == ("Job", "train")
    assert owner_of(pod("bare", {})) == ("Pod", "bare")


def test_only_undeclared_ai_pods_count_and_replicas_group() -> None:
    pods = [
        pod("vllm-1-a", {"app": "vllm", "pod-template-hash": "1"}, ("ReplicaSet", "vllm-1")),
        pod("vllm-1-b", {"app": "vllm", "pod-template-hash": "1"}, ("ReplicaSet", "vllm-1")),
        pod("agent-0", {"app": "agent"}),
        pod("web-0", {"app": "web"}),
    ]
    verdicts = {
        ("ml", "vllm-1-a"): AI,
        ("ml", "vllm-1-b"): AI,
        ("ml", "agent-0"): AI,
        ("ml", "web-0"): NOT_AI,
    }
    declared = AIWorkload.model_validate(
        {
            "metadata": {"name": "agent", "namespace": "ml"},
            "spec": {"kind": "agent", "selector": {"matchLabels": {"app": "agent"}}},
        }
    )
    shadows = build_shadow_inventory(pods, verdicts, [declared])
    assert [(s.kind, s.name, s.pods) for s in shadows] == [("Deployment", "vllm", 2)]
    report = render_policy_report("ml", shadows)
    assert report["summary"]["fail"] == 1
    assert report["results"][0]["resources"][0] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "vllm",
        "namespace": "ml",
    }
