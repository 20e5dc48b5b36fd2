"""Shadow AI: AI pods that no AIWorkload selects, grouped by their owning workload (pure).

Also what the operator writes about them: a PolicyReport, or a ShadowAIReport per namespace when
the cluster has no PolicyReport CRD, and, with ``--shadow-adopt``, an AIWorkload in audit mode per
shadow workload.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from aitrust.api.v1alpha1 import (
    API_VERSION,
    AIWorkload,
    Condition,
    Mode,
    ShadowAIReportStatus,
    ShadowAIWorkload,
    WorkloadKind,
)
from aitrust.core.classify import Classification
from aitrust.core.conditions import build_condition
from aitrust.core.selectors import selector_matches

POD_TEMPLATE_HASH = "pod-template-hash"
# Labels a controller puts on the pods it creates (not in the pod template): per-revision hashes,
# per-pod names and indexes, uids. A selector built from them would miss the next rollout.
CONTROLLER_LABELS = frozenset(
    {
        POD_TEMPLATE_HASH,
        "controller-revision-hash",
        "statefulset.kubernetes.io/pod-name",
        "apps.kubernetes.io/pod-index",
        "controller-uid",
        "batch.kubernetes.io/controller-uid",
        "batch.kubernetes.io/job-completion-index",
    }
)
MANAGED_BY = ("app.kubernetes.io/managed-by", "aitrust")
ADOPTED_LABEL = "aitrust.dev/adopted"
ADOPTED_FROM_ANNOTATION = "aitrust.dev/adopted-from"
EVIDENCE_ANNOTATION = "aitrust.dev/shadow-ai-evidence"
ADOPTED_POLICY = "aitrust-adopted"
SHADOW_REPORT = "shadow-ai"  # the ShadowAIReport of a namespace: one, of this name
EVIDENCE_CHARS = 200  # per evidence line of a ShadowAIReport
# Entries listed per report: a namespace of thousands of bare AI pods must not outgrow what the
# API server stores in one object (about 1.5 MB); each entry is up to about 1 KB.
MAX_LISTED = 500
_ADOPTED_KINDS: Mapping[str, WorkloadKind] = {
    "inference": WorkloadKind.INFERENCE,
    "agent": WorkloadKind.AGENT,
    "training": WorkloadKind.TRAINING,
    "notebook": WorkloadKind.NOTEBOOK,
}


class ShadowWorkload(BaseModel):
    model_config = ConfigDict(frozen=True)
    namespace: str
    kind: str
    name: str
    pods: int
    category: str | None
    confidence: float
    evidence: list[str]
    # Labels every pod of the workload carries, less the ones its controller adds per revision or
    # per pod: what the pod template says, so a selector of them keeps matching after a rollout.
    labels: dict[str, str] = {}


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
    common: dict[tuple[str, str, str], dict[str, str]] = {}
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
        group = (ns, kind, owner)
        groups[group].append(verdict)
        mine = {str(k): str(v) for k, v in labels.items() if k not in CONTROLLER_LABELS}
        shared = common.get(group)
        common[group] = mine if shared is None else {k: v for k, v in shared.items() if mine.get(k) == v}
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
                labels=common.get((ns, kind, name), {}),
            )
        )
    return out


def render_shadow_ai_report(
    namespace: str,
    shadows: Sequence[ShadowWorkload],
    now: datetime,
    previous: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The namespace's ShadowAIReport (used when there is no PolicyReport CRD), status included.

    ``previous`` is the status stored now, if any: its Ready condition keeps its
    lastTransitionTime, so that the same findings render the same status (and cost no write).
    The workloads are in inventory order (namespace, kind, name), so the output is deterministic;
    ``count`` counts them all, but at most ``MAX_LISTED`` are listed.
    """
    count = len(shadows)
    message = (
        f"{count} AI workload{'' if count == 1 else 's'} in this namespace "
        f"{'is' if count == 1 else 'are'} declared by no AIWorkload"
    )
    if count > MAX_LISTED:
        message += f"; the first {MAX_LISTED} are listed"
    ready = build_condition("Ready", True, "ShadowAIFound", message, None, now, _conditions(previous))
    status = ShadowAIReportStatus(
        count=count,
        workloads=[
            ShadowAIWorkload(
                kind=s.kind,
                name=s.name,
                pods=s.pods,
                category=s.category,
                confidence=round(s.confidence, 3),
                evidence=[e[:EVIDENCE_CHARS] for e in s.evidence],
            )
            for s in shadows[:MAX_LISTED]
        ],
        conditions=[ready],
    )
    return {
        "apiVersion": API_VERSION,
        "kind": "ShadowAIReport",
        "metadata": {
            "name": SHADOW_REPORT,
            "namespace": namespace,
            "labels": {MANAGED_BY[0]: MANAGED_BY[1]},
        },
        "spec": {},
        "status": status.model_dump(by_alias=True, exclude_none=True, mode="json"),
    }


def _conditions(status: Mapping[str, Any] | None) -> list[Condition]:
    try:
        return [Condition.model_validate(c) for c in (status or {}).get("conditions") or []]
    except (ValidationError, TypeError):
        return []  # not ours to keep: rendered afresh


def is_adopted(labels: Mapping[str, str]) -> bool:
    """An AIWorkload the operator created for shadow AI (``--shadow-adopt``)."""
    return labels.get(ADOPTED_LABEL) == "true" and labels.get(MANAGED_BY[0]) == MANAGED_BY[1]


def adopted_name(shadow: ShadowWorkload) -> str:
    """The AIWorkload adopting ``shadow``: its owner's name, so a second adoption collides (409)."""
    return shadow.name


def build_adopted_policy(namespace: str) -> dict[str, Any]:
    """The audit-mode TrustPolicy that adopted AIWorkloads reference: scored, never enforced."""
    return {
        "apiVersion": API_VERSION,
        "kind": "TrustPolicy",
        "metadata": {
            "name": ADOPTED_POLICY,
            "namespace": namespace,
            "labels": {MANAGED_BY[0]: MANAGED_BY[1], ADOPTED_LABEL: "true"},
        },
        "spec": {"mode": Mode.AUDIT.value},
    }


def build_adopted_workload(shadow: ShadowWorkload) -> dict[str, Any] | None:
    """An AIWorkload in audit mode that selects ``shadow``'s pods, or None when none can.

    None for vector stores (a DataSource, not an AIWorkload) and for pods without a label to
    select them by (an empty selector would select the whole namespace).
    """
    if not shadow.labels:
        return None
    kind = _ADOPTED_KINDS.get(shadow.category or "inference")
    if kind is None:
        return None
    evidence = {
        "kind": shadow.kind,
        "name": shadow.name,
        "category": shadow.category,
        "confidence": round(shadow.confidence, 3),
        "evidence": [e[:200] for e in shadow.evidence],
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "AIWorkload",
        "metadata": {
            "name": adopted_name(shadow),
            "namespace": shadow.namespace,
            "labels": {MANAGED_BY[0]: MANAGED_BY[1], ADOPTED_LABEL: "true"},
            "annotations": {
                ADOPTED_FROM_ANNOTATION: f"{shadow.kind}/{shadow.name}",
                EVIDENCE_ANNOTATION: json.dumps(evidence, sort_keys=True),
            },
        },
        "spec": {
            "kind": kind.value,
            "selector": {"matchLabels": dict(sorted(shadow.labels.items()))},
            "trustPolicyRef": {"name": ADOPTED_POLICY},
        },
    }


def render_policy_report(namespace: str, shadows: Sequence[ShadowWorkload]) -> dict[str, Any]:
    """A wgpolicyk8s.io PolicyReport, so Policy Reporter and friends show shadow AI.

    At most ``MAX_LISTED`` failing results; past that, one ``warn`` result says how many more."""
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
        for s in shadows[:MAX_LISTED]
    ]
    unlisted = len(shadows) - len(results)
    if unlisted:
        results.append(
            {
                "policy": "aitrust-shadow-ai",
                "rule": "ai-workload-declared",
                "result": "warn",
                "severity": "medium",
                "category": "AI inventory",
                "source": "aitrust",
                "message": f"{unlisted} more AI workloads declared by no AIWorkload are not listed",
            }
        )
    return {
        "apiVersion": "wgpolicyk8s.io/v1alpha2",
        "kind": "PolicyReport",
        "metadata": {
            "name": "aitrust-shadow-ai",
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "aitrust"},
        },
        "summary": {
            "pass": 0,
            "fail": len(results) - bool(unlisted),
            "warn": int(bool(unlisted)),
            "error": 0,
            "skip": 0,
        },
        "results": results,
    }
