"""Shadow AI: AI pods that no AIWorkload selects, grouped by their owning workload (pure)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from aitrust.api.v1alpha1 import AIWorkload
from aitrust.core.classify import Classification
from aitrust.core.selectors import selector_matches

POD_TEMPLATE_HASH = "pod-template-hash"


class ShadowWorkload(BaseModel):
    model_config = ConfigDict(frozen=True)
    namespace: str
    kind: str
    name: str
    pods: int
    category: str | None
    confidence: float
    evidence: list[str]


def owner_of(pod: Mapping[str, Any]) -> tuple[str, str]:
    """The workload a pod belongs to: a ReplicaSet's Deployment by the pod-template-hash convention."""
    meta = pod.get("metadata") or {}
    owners = [o for o in meta.get("ownerReferences") or [] if o.get("controller")]
    if not owners:
        return "Pod", str(meta.get("name", ""))
    owner = owners[0]
    kind, name = str(owner.get("kind", "")), str(owner.get("name", ""))
    template_hash = (meta.get("labels") or {}).get(POD_TEMPLATE_HASH)
    if kind == "ReplicaSet" and template_hash and name.endswith(f"-{template_hash}"):
        return "Deployment", name[: -len(template_hash) - 1]
    return kind, name


def build_shadow_inventory(
    pods: Sequence[Mapping[str, Any]],
    classifications: Mapping[tuple[str, str], Classification],
    workloads: Sequence[AIWorkload],
) -> list[ShadowWorkload]:
    """AI pods (by ``classifications``, keyed by namespace/name) that no AIWorkload selects."""
    by_ns: dict[str, list[AIWorkload]] = defaultdict(list)
    for wl in workloads:
        by_ns[wl.metadata.namespace].append(wl)
    groups: dict[tuple[str, str, str], list[Classification]] = defaultdict(list)
    for pod in pods:
        meta = pod.get("metadata") or {}
        ns, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        verdict = classifications.get((ns, name))
        if verdict is None or not verdict.is_ai:
            continue
        labels = meta.get("labels") or {}
        if any(selector_matches(wl.spec.selector, labels) for wl in by_ns.get(ns, ())):
            continue
        kind, owner = owner_of(pod)
        groups[(ns, kind, owner)].append(verdict)
    out = []
    for (ns, kind, name), verdicts in sorted(groups.items()):
        best = max(verdicts, key=lambda v: v.confidence)
        out.append(
            ShadowWorkload(
                namespace=ns,
                kind=kind,
                name=name,
                pods=len(verdicts),
                category=best.category,
                confidence=best.confidence,
                evidence=best.evidence[:5],
            )
        )
    return out


def render_policy_report(namespace: str, shadows: Sequence[ShadowWorkload]) -> dict[str, Any]:
    """A wgpolicyk8s.io PolicyReport, so Policy Reporter and friends show shadow AI."""
    results = [
        {
            "policy": "aitrust-shadow-ai",
            "rule": "ai-workload-declared",
            "result": "fail",
            "severity": "medium",
            "category": "AI inventory",
            "source": "aitrust",
            "message": (
                f"{s.kind} {s.name} looks like an AI {s.category or 'workload'} "
                f"(confidence {s.confidence:.2f}) but no AIWorkload declares it"
            ),
            "properties": {"evidence": "; ".join(s.evidence)[:1000], "pods": str(s.pods)},
            "resources": [
                {
                    "apiVersion": "apps/v1" if s.kind != "Pod" else "v1",
                    "kind": s.kind,
                    "name": s.name,
                    "namespace": s.namespace,
                }
            ],
        }
        for s in shadows
    ]
    return {
        "apiVersion": "wgpolicyk8s.io/v1alpha2",
        "kind": "PolicyReport",
        "metadata": {
            "name": "aitrust-shadow-ai",
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "aitrust"},
        },
        "summary": {"pass": 0, "fail": len(results), "warn": 0, "error": 0, "skip": 0},
        "results": results,
    }
