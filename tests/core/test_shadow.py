from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from aitrust.api.v1alpha1 import AIWorkload, Mode, ShadowAIReport, TrustPolicy
from aitrust.core.classify import Classification
from aitrust.core.selectors import selector_matches
from aitrust.core.shadow import (
    ADOPTED_POLICY,
    MAX_LISTED,
    adopted_name,
    build_adopted_policy,
    build_adopted_workload,
    build_shadow_inventory,
    owner_of,
    render_policy_report,
    render_shadow_ai_report,
)


def pod(name: str, labels: dict[str, str], owner: tuple[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ml", "labels": labels}
    if owner:
        meta["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "controller": True}]
    return {"metadata": meta, "spec": {"containers": []}}


AI = Classification(is_ai=True, category="inference", confidence=0.9, evidence=["image vllm (0.9)"])
NOT_AI = Classification(is_ai=False, category=None, confidence=0.1, evidence=[])


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


# --- what adoption and the status fallback build -------------------------------------------------

TRAIN = Classification(is_ai=True, category="training", confidence=0.8, evidence=["torchrun (0.8)"])
VECTORS = Classification(is_ai=True, category="datastore", confidence=0.95, evidence=["image qdrant"])


def _statefulset_pod(name: str, index: int) -> dict[str, Any]:
    labels = {
        "app": "trainer",
        "team": "ml",
        "controller-revision-hash": "trainer-5c8d",
        "statefulset.kubernetes.io/pod-name": name,
        "apps.kubernetes.io/pod-index": str(index),
    }
    return pod(name, labels, ("StatefulSet", "trainer"))


def test_shadow_labels_are_the_template_labels_without_controller_ones() -> None:
    pods = [
        pod("vllm-1-a", {"app": "vllm", "tier": "gpu", "pod-template-hash": "1"}, ("ReplicaSet", "vllm-1")),
        pod("vllm-1-b", {"app": "vllm", "tier": "gpu", "pod-template-hash": "1"}, ("ReplicaSet", "vllm-1")),
        _statefulset_pod("trainer-0", 0),
        _statefulset_pod("trainer-1", 1),
        _statefulset_pod("trainer-2", 2),
    ]
    verdicts = {("ml", p["metadata"]["name"]): AI for p in pods}
    shadows = {s.name: s for s in build_shadow_inventory(pods, verdicts, [])}
    assert shadows["vllm"].labels == {"app": "vllm", "tier": "gpu"}
    assert shadows["trainer"].kind == "StatefulSet" and shadows["trainer"].pods == 3
    assert shadows["trainer"].labels == {"app": "trainer", "team": "ml"}
    # A single pod: the per-pod and per-revision labels go by name, not by difference.
    [one] = build_shadow_inventory([_statefulset_pod("trainer-0", 0)], {("ml", "trainer-0"): AI}, [])
    assert one.labels == {"app": "trainer", "team": "ml"}


def test_adopted_workload_is_audit_mode_selects_exactly_its_pods_and_carries_evidence() -> None:
    pods = [
        pod("vllm-1-a", {"app": "vllm", "pod-template-hash": "1"}, ("ReplicaSet", "vllm-1")),
        pod("web-0", {"app": "web"}),
    ]
    [shadow] = build_shadow_inventory(pods, {("ml", "vllm-1-a"): AI, ("ml", "web-0"): NOT_AI}, [])
    doc = build_adopted_workload(shadow)
    assert doc is not None
    adopted = AIWorkload.model_validate(doc)  # valid against the API model
    assert (
        (adopted.metadata.namespace, adopted.metadata.name) == ("ml", "vllm") == ("ml", adopted_name(shadow))
    )
    assert adopted.metadata.labels == {
        "app.kubernetes.io/managed-by": "aitrust",
        "aitrust.dev/adopted": "true",
    }
    assert adopted.metadata.annotations["aitrust.dev/adopted-from"] == "Deployment/vllm"
    evidence = json.loads(adopted.metadata.annotations["aitrust.dev/shadow-ai-evidence"])
    assert evidence["evidence"] == ["image vllm (0.9)"] and evidence["confidence"] == 0.9
    assert adopted.spec.kind.value == "inference"
    assert adopted.spec.selector.match_labels == {"app": "vllm"}
    assert adopted.spec.trust_policy_ref is not None and adopted.spec.trust_policy_ref.name == ADOPTED_POLICY
    # The selector picks the workload's pods (also of the next rollout) and nothing else.
    assert selector_matches(adopted.spec.selector, {"app": "vllm", "pod-template-hash": "2"})
    assert not selector_matches(adopted.spec.selector, {"app": "web"})
    # Once the adopted AIWorkload exists, the workload is no longer shadow.
    assert build_shadow_inventory(pods, {("ml", "vllm-1-a"): AI, ("ml", "web-0"): NOT_AI}, [adopted]) == []
    policy = TrustPolicy.model_validate(build_adopted_policy("ml"))
    assert policy.metadata.name == ADOPTED_POLICY and policy.spec.mode is Mode.AUDIT
    assert policy.metadata.labels["aitrust.dev/adopted"] == "true"


def test_adoption_is_deterministic_and_categories_map_to_workload_kinds() -> None:
    trainer = [_statefulset_pod("trainer-0", 0)]
    [shadow] = build_shadow_inventory(trainer, {("ml", "trainer-0"): TRAIN}, [])
    first, again = build_adopted_workload(shadow), build_adopted_workload(shadow)
    assert first == again and first is not None
    assert first["spec"]["kind"] == "training"


def test_nothing_is_adopted_that_cannot_be_selected_or_is_a_vector_store() -> None:
    unlabelled = [pod("bare", {})]
    [shadow] = build_shadow_inventory(unlabelled, {("ml", "bare"): AI}, [])
    assert shadow.labels == {} and build_adopted_workload(shadow) is None  # would select everything
    only_hash = [pod("x-1-a", {"pod-template-hash": "1"}, ("ReplicaSet", "x-1"))]
    [shadow] = build_shadow_inventory(only_hash, {("ml", "x-1-a"): AI}, [])
    assert build_adopted_workload(shadow) is None
    qdrant = [pod("qdrant-0", {"app": "qdrant"}, ("StatefulSet", "qdrant"))]
    [shadow] = build_shadow_inventory(qdrant, {("ml", "qdrant-0"): VECTORS}, [])
    assert build_adopted_workload(shadow) is None  # a DataSource, not an AIWorkload


# --- the ShadowAIReport (no PolicyReport CRD) ----------------------------------------------------

T0 = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def _ml_shadows() -> list[Any]:
    pods = [
        pod("vllm-1-a", {"app": "vllm", "pod-template-hash": "1"}, ("ReplicaSet", "vllm-1")),
        pod("vllm-1-b", {"app": "vllm", "pod-template-hash": "1"}, ("ReplicaSet", "vllm-1")),
        _statefulset_pod("trainer-0", 0),
    ]
    verdicts = {("ml", "vllm-1-a"): AI, ("ml", "vllm-1-b"): AI, ("ml", "trainer-0"): TRAIN}
    return build_shadow_inventory(pods, verdicts, [])


def test_shadow_ai_report_is_a_valid_object_with_every_finding_in_status() -> None:
    doc = render_shadow_ai_report("ml", _ml_shadows(), T0)
    report = ShadowAIReport.model_validate(doc)  # valid against the API model (and so the CRD)
    assert (doc["apiVersion"], doc["kind"]) == ("aitrust.dev/v1alpha1", "ShadowAIReport")
    assert (report.metadata.namespace, report.metadata.name) == ("ml", "shadow-ai")
    assert report.metadata.labels == {"app.kubernetes.io/managed-by": "aitrust"}
    assert doc["spec"] == {}
    assert doc["status"]["count"] == 2
    assert doc["status"]["workloads"] == [
        {
            "kind": "Deployment",
            "name": "vllm",
            "pods": 2,
            "category": "inference",
            "confidence": 0.9,
            "evidence": ["image vllm (0.9)"],
        },
        {
            "kind": "StatefulSet",
            "name": "trainer",
            "pods": 1,
            "category": "training",
            "confidence": 0.8,
            "evidence": ["torchrun (0.8)"],
        },
    ]
    assert doc["status"]["conditions"] == [
        {
            "type": "Ready",
            "status": "True",
            "reason": "ShadowAIFound",
            "message": "2 AI workloads in this namespace are declared by no AIWorkload",
            "lastTransitionTime": "2026-03-04T05:06:07Z",
        }
    ]
    # The same workloads as the PolicyReport names, in the same order.
    policy = render_policy_report("ml", _ml_shadows())
    assert [r["resources"][0]["name"] for r in policy["results"]] == ["vllm", "trainer"]


def test_same_findings_render_the_same_status_later_so_nothing_is_rewritten() -> None:
    first = render_shadow_ai_report("ml", _ml_shadows(), T0)
    later = T0 + timedelta(hours=3)
    stored = json.loads(json.dumps(first["status"]))  # as read back from the API server
    assert render_shadow_ai_report("ml", _ml_shadows(), later, stored) == first
    # New findings change the count and the message, not when the report became Ready.
    fewer = render_shadow_ai_report("ml", _ml_shadows()[:1], later, stored)
    assert fewer["status"]["count"] == 1 and fewer["status"] != first["status"]
    [ready] = fewer["status"]["conditions"]
    assert ready["message"] == "1 AI workload in this namespace is declared by no AIWorkload"
    assert ready["lastTransitionTime"] == "2026-03-04T05:06:07Z"
    # Without a stored status (or an unreadable one), the condition starts now.
    for previous in (None, {}, {"conditions": [{"type": "Ready"}]}, {"conditions": "junk"}):
        [fresh] = render_shadow_ai_report("ml", _ml_shadows(), later, previous)["status"]["conditions"]
        assert fresh["lastTransitionTime"] == "2026-03-04T08:06:07Z"


def test_shadow_ai_report_bounds_evidence_lines_and_rounds_confidence() -> None:
    long = Classification(is_ai=True, category=None, confidence=0.123456, evidence=["x" * 500, "short"])
    [shadow] = build_shadow_inventory([pod("bare", {"app": "a"})], {("ml", "bare"): long}, [])
    [entry] = render_shadow_ai_report("ml", [shadow], T0)["status"]["workloads"]
    assert entry["evidence"] == ["x" * 200, "short"]
    assert entry["confidence"] == 0.123
    assert "category" not in entry  # unknown: absent, not null
    ShadowAIReport.model_validate(render_shadow_ai_report("ml", [shadow], T0))


def test_reports_list_a_bounded_number_of_workloads_and_say_how_many_more() -> None:
    many = Classification(is_ai=True, category="inference", confidence=0.9, evidence=["e" * 200] * 4)
    pods = [pod(f"nb-{i:04d}", {"app": f"nb-{i}"}) for i in range(MAX_LISTED + 7)]
    shadows = build_shadow_inventory(pods, {("ml", p["metadata"]["name"]): many for p in pods}, [])
    assert len(shadows) == MAX_LISTED + 7
    doc = render_shadow_ai_report("ml", shadows, T0)
    status = doc["status"]
    assert status["count"] == MAX_LISTED + 7
    assert [w["name"] for w in status["workloads"]] == [s.name for s in shadows[:MAX_LISTED]]
    assert status["conditions"][0]["message"].endswith(f"; the first {MAX_LISTED} are listed")
    assert len(json.dumps(doc)) < 1_000_000  # well under what the API server stores in one object
    ShadowAIReport.model_validate(doc)

    report = render_policy_report("ml", shadows)
    assert report["summary"] == {"pass": 0, "fail": MAX_LISTED, "warn": 1, "error": 0, "skip": 0}
    assert report["results"][-1]["result"] == "warn"
    assert report["results"][-1]["message"].startswith("7 more AI workloads")
    assert render_policy_report("ml", shadows[:3])["summary"]["warn"] == 0
