"""Offline scan: what the operator would conclude from a set of manifests, without a cluster.

``build_scan_report`` takes parsed Kubernetes objects (with where they came from) and, for
every workload object, classifies it (AI or not), runs the posture checks and scores it
under the TrustPolicy that would apply; for every AIWorkload in the set it runs the
operator's own evaluation (``build_evaluation``) against the scanned pods, ModelEndpoints,
DataSources and Services, and renders the NetworkPolicies and OPA data the operator would
write. Nothing here reads files or the clock: the caller passes documents and ``now``.

An AIWorkload's stored status (signals, previous tier) is ignored: a scan evaluates the
manifests as if they were applied fresh, so posture is all that counts.

``build_tier_gap`` (used by ``aitrust explain``) says what it would take for a workload to
reach the next tier: the points missing and the factors worth the most to fix.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aitrust.api.v1alpha1 import (
    AIWorkload,
    DataSource,
    Factor,
    Grant,
    Mode,
    ModelEndpoint,
    Tier,
    TrustPolicy,
    TrustPolicySpec,
)
from aitrust.core.classify import Classification, classify_workload, pod_specs_of
from aitrust.core.effective import EffectiveTrust, InClusterDestination, resolve_destination
from aitrust.core.evaluate import Inputs, build_evaluation
from aitrust.core.posture import CHECKS, Finding, score_posture, validate_posture_settings
from aitrust.core.scoring import score_workload
from aitrust.core.selectors import selector_matches
from aitrust.core.signatures import key_ref_id
from aitrust.core.workloads import PodTemplateView
from aitrust.render.networkpolicy import (
    owner_reference,
    render_endpoint_ingress_policy,
    render_workload_policy,
)
from aitrust.render.opa import render_opa_data

__all__ = [
    "BUILTIN_POLICY",
    "OPA_REVISION",
    "WORKLOAD_KINDS",
    "AIWorkloadReport",
    "Document",
    "Fix",
    "ScanError",
    "ScanFinding",
    "ScanReport",
    "ScanSummary",
    "Source",
    "TierGap",
    "WorkloadReport",
    "build_scan_report",
    "build_tier_gap",
    "is_workload_object",
]

BUILTIN_POLICY = "(built-in)"
OPA_REVISION = "aitrust-scan"
# Kinds scanned as workloads; other objects with a pod template (e.g. Argo Rollouts) are too.
WORKLOAD_KINDS = frozenset(
    {
        "Pod",
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "Job",
        "CronJob",
        "InferenceService",
        "RayCluster",
        "RayJob",
        "RayService",
        "PyTorchJob",
        "TFJob",
        "MPIJob",
        "XGBoostJob",
        "Notebook",
        "LeaderWorkerSet",
    }
)
_AITRUST_KINDS = frozenset({"AIWorkload", "ModelEndpoint", "DataSource", "TrustPolicy"})
_NOT_WORKLOADS = frozenset(
    {"ServingRuntime", "ClusterServingRuntime", "PodTemplate", "Service", "ConfigMap", "Secret"}
)


@dataclass(frozen=True, slots=True)
class Document:
    """One parsed object and where it came from (``line`` 1-based, ``index`` 0-based)."""

    obj: Any
    file: str
    index: int
    line: int | None = None


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")


class Source(_Out):
    file: str
    line: int | None = None
    index: int = Field(description="0-based document index in the file")


class ScanError(_Out):
    file: str
    index: int
    line: int | None = None
    message: str


class ScanFinding(_Out):
    id: str
    severity: str
    title: str
    points: int
    reason: str
    remediation: str
    references: list[str]


class WorkloadReport(_Out):
    namespace: str
    name: str
    kind: str
    api_version: str = Field(alias="apiVersion")
    ai: Classification
    managed: bool
    managed_by: list[str] = Field(alias="managedBy")
    trust_score: int = Field(alias="trustScore")
    posture_score: int = Field(alias="postureScore")
    tier: Tier
    policy: str
    findings: list[ScanFinding]
    source: Source


class AIWorkloadReport(_Out):
    namespace: str
    name: str
    kind: str
    trust_score: int = Field(alias="trustScore")
    tier: Tier
    mode: Mode
    policy: str
    workloads: list[str]
    grants: list[Grant]
    factors: list[Factor]
    problems: list[str]
    source: Source


class ScanSummary(_Out):
    documents: int
    workloads: int
    ai: int
    managed: int
    shadow_ai: int = Field(alias="shadowAI")
    ai_workloads: int = Field(alias="aiWorkloads")
    network_policies: int = Field(alias="networkPolicies")
    by_tier: dict[str, int] = Field(alias="byTier")
    by_category: dict[str, int] = Field(alias="byCategory")
    skipped: int


class ScanReport(_Out):
    workloads: list[WorkloadReport]
    ai_workloads: list[AIWorkloadReport] = Field(alias="aiWorkloads")
    network_policies: list[dict[str, Any]] = Field(alias="networkPolicies")
    opa_data: dict[str, Any] = Field(alias="opaData")
    summary: ScanSummary
    errors: list[ScanError]


# --- inputs ------------------------------------------------------------------------------


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _meta(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = _map(obj.get("metadata"))
    name = meta.get("name")
    namespace = meta.get("namespace")
    return (
        namespace if isinstance(namespace, str) and namespace else "default",
        name if isinstance(name, str) else "",
    )


def is_workload_object(obj: Mapping[str, Any], views: Sequence[PodTemplateView] | None = None) -> bool:
    """Whether a scan treats ``obj`` as a workload: a known kind, or anything with a pod template."""
    kind = obj.get("kind")
    if not isinstance(kind, str) or kind in _AITRUST_KINDS or kind in _NOT_WORKLOADS:
        return False
    if kind in WORKLOAD_KINDS:
        return True
    return bool(views if views is not None else pod_specs_of(obj))


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {err['msg']}" if loc else str(err["msg"]))
    return "; ".join(parts)


@dataclass(slots=True)
class _Scanned:
    workloads: list[tuple[Document, list[PodTemplateView]]]
    ai_workloads: list[tuple[Document, AIWorkload]]
    targets: dict[tuple[str, str, str], tuple[Document, ModelEndpoint | DataSource]]
    policies: dict[tuple[str, str], TrustPolicySpec]
    services: dict[str, list[Mapping[str, Any]]]
    keys: dict[tuple[str, str], str]  # (namespace, "<name>/<key>") -> PEM
    errors: list[ScanError]
    skipped: int


def _secret_values(obj: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    kind = obj.get("kind")
    if kind == "ConfigMap":
        out.update({str(k): str(v) for k, v in _map(obj.get("data")).items()})
    elif kind == "Secret":
        for key, value in _map(obj.get("data")).items():
            try:
                out[str(key)] = base64.b64decode(str(value), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                continue
        out.update({str(k): str(v) for k, v in _map(obj.get("stringData")).items()})
    return out


def _runtimes(docs: Sequence[Document]) -> dict[str, dict[str, Mapping[str, Any]]]:
    """ServingRuntimes by namespace ("" holds ClusterServingRuntimes, which every namespace sees)."""
    out: dict[str, dict[str, Mapping[str, Any]]] = {"": {}}
    for doc in docs:
        obj = doc.obj
        kind = obj.get("kind")
        if kind == "ClusterServingRuntime":
            out[""][_meta(obj)[1]] = obj
        elif kind == "ServingRuntime":
            ns, name = _meta(obj)
            out.setdefault(ns, {})[name] = obj
    return out


def _error(doc: Document, message: str) -> ScanError:
    return ScanError(file=doc.file, index=doc.index, line=doc.line, message=message)


def _partition(docs: Sequence[Document]) -> _Scanned:
    mappings = [d for d in docs if isinstance(d.obj, Mapping)]
    runtimes = _runtimes(mappings)
    scanned = _Scanned([], [], {}, {}, {}, {}, [], len(docs) - len(mappings))
    for doc in mappings:
        obj = doc.obj
        kind = obj.get("kind")
        ns, name = _meta(obj)
        if not isinstance(kind, str) or not kind:
            scanned.skipped += 1
            continue
        try:
            if kind == "AIWorkload":
                workload = AIWorkload.model_validate(obj)
                selector = workload.spec.selector
                if not selector.match_labels and not selector.match_expressions:
                    scanned.errors.append(_error(doc, f"AIWorkload {ns}/{name}: selector must not be empty"))
                    continue
                scanned.ai_workloads.append((doc, workload))
                continue
            if kind in ("ModelEndpoint", "DataSource"):
                target = (ModelEndpoint if kind == "ModelEndpoint" else DataSource).model_validate(obj)
                scanned.targets[(kind, ns, name)] = (doc, target)
                continue
            if kind == "TrustPolicy":
                scanned.policies[(ns, name)] = TrustPolicy.model_validate(obj).spec
                continue
        except ValidationError as exc:
            scanned.errors.append(_error(doc, f"{kind} {ns}/{name}: {_describe(exc)}"))
            continue
        if kind == "Service":
            scanned.services.setdefault(ns, []).append(obj)
        elif kind in ("ConfigMap", "Secret"):
            for key, value in _secret_values(obj).items():
                scanned.keys[(ns, f"{name}/{key}")] = value
        else:
            views = pod_specs_of(obj, {**runtimes[""], **runtimes.get(ns, {})})
            if is_workload_object(obj, views):
                scanned.workloads.append((doc, views))
            else:
                scanned.skipped += 1
    return scanned


# --- evaluation --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Policy:
    spec: TrustPolicySpec
    name: str
    errors: tuple[str, ...]


def _resolve_policy(scanned: _Scanned, override: _Policy | None, namespace: str, ref: str | None) -> _Policy:
    if override is not None:
        return override
    name = ref or "default"
    spec = scanned.policies.get((namespace, name))
    if spec is None:
        errors = (f"TrustPolicy {namespace}/{ref} not found",) if ref else ()
        return _Policy(TrustPolicySpec(), BUILTIN_POLICY, errors)
    return _Policy(spec, name, tuple(f"TrustPolicy {name}: {p}" for p in validate_posture_settings(spec)))


def _finding(f: Finding, cache: dict[int, tuple[Finding, ScanFinding]]) -> ScanFinding:
    # Findings are interned by score_posture, so most workloads share theirs; the cache holds
    # each finding, so its id cannot be reused while the cache lives.
    hit = cache.get(id(f))
    if hit is not None and hit[0] is f:
        return hit[1]
    out = ScanFinding(
        id=f.check_id,
        severity=f.severity.value,
        title=f.title,
        points=f.points,
        reason=f.reason,
        remediation=f.remediation,
        references=list(f.references),
    )
    cache[id(f)] = (f, out)
    return out


def _pod_dict(view: PodTemplateView) -> dict[str, Any]:
    """A Pod as the operator would see it, from a template (``build_evaluation`` takes pods)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": view.name,
            "namespace": view.namespace,
            "labels": dict(view.labels),
            "annotations": dict(view.annotations),
        },
        "spec": view.spec,
    }


def _public_keys(scanned: _Scanned, namespace: str, workload: AIWorkload | None) -> dict[str, str]:
    keys: dict[str, str] = {}
    for model in workload.spec.models if workload is not None else ():
        ref = model.signature.key_ref if model.signature is not None else None
        if ref is not None:
            pem = scanned.keys.get((namespace, key_ref_id(ref)))
            if pem is not None:
                keys[key_ref_id(ref)] = pem
    return keys


def _service_selectors(
    scanned: _Scanned, namespaces: Iterable[str] | None = None
) -> dict[tuple[str, str], dict[str, str]]:
    """(namespace, Service) -> pod selector, for ``namespaces`` (all when None)."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    wanted = (
        scanned.services if namespaces is None else {ns: scanned.services.get(ns, []) for ns in namespaces}
    )
    for ns, services in wanted.items():
        for svc in services:
            selector = _map(_map(svc.get("spec")).get("selector"))
            if selector:
                out[(ns, _meta(svc)[1])] = {str(k): str(v) for k, v in selector.items()}
    return out


def _evaluate_ai_workloads(
    scanned: _Scanned,
    override: _Policy | None,
    matches: Mapping[int, list[tuple[Document, list[PodTemplateView]]]],
    now: datetime,
) -> tuple[list[AIWorkloadReport], list[EffectiveTrust]]:
    reports: list[AIWorkloadReport] = []
    effective: list[EffectiveTrust] = []
    for i, (doc, raw) in enumerate(scanned.ai_workloads):
        # Fresh, as if just applied: stored signals and tiers are the cluster's, not the manifests'.
        workload = raw.model_copy(update={"status": type(raw.status)()})
        ns = workload.metadata.namespace
        ref = workload.spec.trust_policy_ref.name if workload.spec.trust_policy_ref else None
        policy = _resolve_policy(scanned, override, ns, ref)
        targets: dict[tuple[str, str, str], ModelEndpoint | DataSource] = {}
        missing: list[str] = []
        refs = [("ModelEndpoint", r) for r in workload.spec.access.model_endpoints]
        refs += [("DataSource", r) for r in workload.spec.access.data_sources]
        for kind, access in refs:
            key = (kind, access.namespace or ns, access.name)
            found = scanned.targets.get(key)
            if found is None:
                missing.append(f"{kind} {key[1]}/{key[2]}")
            else:
                targets[key] = found[1]
        matched = matches.get(i, [])
        pods = tuple(
            d.obj if d.obj.get("kind") == "Pod" else _pod_dict(v) for d, views in matched for v in views
        )
        inputs = Inputs(
            workload=workload,
            policy=policy.spec,
            policy_name=policy.name,
            policy_errors=policy.errors,
            targets=targets,
            missing_targets=tuple(missing),
            pods=pods,
            services=tuple(scanned.services.get(ns, ())),
            # Only the namespaces it involves, as the operator gathers them.
            service_selectors=_service_selectors(scanned, {ns} | {key[1] for key in targets}),
            public_keys=_public_keys(scanned, ns, workload),
        )
        evaluation = build_evaluation(inputs, now)
        effective.append(evaluation.effective)
        status = evaluation.status
        reports.append(
            AIWorkloadReport(
                namespace=ns,
                name=workload.metadata.name,
                kind=workload.spec.kind.value,
                trust_score=evaluation.result.score,
                tier=evaluation.result.tier,
                mode=evaluation.effective.mode,
                policy=policy.name,
                workloads=[f"{d.obj.get('kind')}/{_meta(d.obj)[1]}" for d, _ in matched],
                grants=status.grants,
                factors=status.factors,
                problems=([f"missing: {', '.join(missing)}"] if missing else []) + list(policy.errors),
                source=Source(file=doc.file, line=doc.line, index=doc.index),
            )
        )
    return reports, effective


def _render_policies(scanned: _Scanned, effective: Sequence[EffectiveTrust]) -> list[dict[str, Any]]:
    """What the operator would write: enforce-mode workload policies, then the targets' ingress."""
    manifests: list[dict[str, Any]] = []
    ordered = sorted(effective, key=lambda e: (e.namespace, e.name))
    for eff in ordered:
        if eff.mode is Mode.ENFORCE:
            manifests.append(
                render_workload_policy(eff, owner_reference("AIWorkload", eff.name, eff.uid or ""))
            )
    selectors = _service_selectors(scanned)
    by_target: dict[tuple[str, str, str], list[EffectiveTrust]] = {}
    for eff in ordered:
        for grant in eff.grants:
            by_target.setdefault(grant.key, []).append(eff)
    for key in sorted(scanned.targets):
        target = scanned.targets[key][1]
        referencing = by_target.get(key, [])
        if not any(e.mode is Mode.ENFORCE for e in referencing):
            continue
        if not isinstance(resolve_destination(target, selectors), InClusterDestination):
            continue
        owner = owner_reference(key[0], key[2], target.metadata.uid or "")
        manifests.append(render_endpoint_ingress_policy(target, referencing, owner, selectors))
    return manifests


class _SelectorIndex:
    """AIWorkloads by namespace and one of their matchLabels pairs, so matching is not W x A."""

    def __init__(self, workloads: Sequence[tuple[Document, AIWorkload]]) -> None:
        self.by_pair: dict[tuple[str, str, str], list[tuple[int, AIWorkload]]] = {}
        self.always: dict[str, list[tuple[int, AIWorkload]]] = {}
        for i, (_, aiw) in enumerate(workloads):
            ns = aiw.metadata.namespace
            labels = aiw.spec.selector.match_labels
            if labels:
                key, value = min(labels.items())
                self.by_pair.setdefault((ns, key, value), []).append((i, aiw))
            else:
                self.always.setdefault(ns, []).append((i, aiw))

    def selecting(self, namespace: str, views: Sequence[PodTemplateView]) -> list[tuple[int, AIWorkload]]:
        found: dict[int, AIWorkload] = {}
        for view in views:
            candidates = list(self.always.get(namespace, ()))
            for key, value in view.labels.items():
                candidates.extend(self.by_pair.get((namespace, key, value), ()))
            for i, aiw in candidates:
                if i not in found and selector_matches(aiw.spec.selector, view.labels):
                    found[i] = aiw
        return sorted(found.items())


def build_scan_report(
    documents: Iterable[Document],
    now: datetime,
    policy: TrustPolicySpec | None = None,
    policy_name: str = "--policy",
) -> ScanReport:
    """Classify, posture-check and score every workload in ``documents``; evaluate the AIWorkloads.

    ``policy`` overrides every TrustPolicy (a ``--policy`` file); otherwise a workload uses its
    AIWorkload's ``trustPolicyRef``, else the scanned TrustPolicy ``default`` of its namespace,
    else the built-in defaults. Objects that fail their aitrust schema land in ``errors``.
    """
    docs = list(documents)
    scanned = _partition(docs)
    override = (
        None if policy is None else _Policy(policy, policy_name, tuple(validate_posture_settings(policy)))
    )

    index = _SelectorIndex(scanned.ai_workloads)
    matches: dict[int, list[tuple[Document, list[PodTemplateView]]]] = {}

    reports: list[WorkloadReport] = []
    finding_cache: dict[int, tuple[Finding, ScanFinding]] = {}
    policy_cache: dict[tuple[str, str | None], _Policy] = {}
    for doc, views in scanned.workloads:
        obj = doc.obj
        ns, name = _meta(obj)
        managers = index.selecting(ns, views)
        for i, _ in managers:
            matches.setdefault(i, []).append((doc, views))
        manager = min(managers, key=lambda m: m[1].metadata.name)[1] if managers else None
        ref = manager.spec.trust_policy_ref.name if manager and manager.spec.trust_policy_ref else None
        pol = policy_cache.get((ns, ref))
        if pol is None:
            pol = policy_cache[(ns, ref)] = _resolve_policy(scanned, override, ns, ref)
        services = scanned.services.get(ns, ())
        spec = manager.spec if manager is not None else None
        keys = _public_keys(scanned, ns, manager)
        findings = score_posture(views, pol.spec, spec, services, keys)
        result = score_workload(views, pol.spec, now, workload=spec, services=services, public_keys=keys)
        reports.append(
            WorkloadReport(
                namespace=ns,
                name=name,
                kind=str(obj.get("kind")),
                api_version=str(obj.get("apiVersion") or ""),
                ai=classify_workload(obj, views=views),
                managed=bool(managers),
                managed_by=sorted(m[1].metadata.name for m in managers),
                trust_score=result.score,
                posture_score=result.posture_score,
                tier=result.tier,
                policy=pol.name,
                findings=[_finding(f, finding_cache) for f in findings],
                source=Source(file=doc.file, line=doc.line, index=doc.index),
            )
        )

    ai_reports, effective = _evaluate_ai_workloads(scanned, override, matches, now)
    policies = _render_policies(scanned, effective)
    by_tier = {t.value: 0 for t in Tier}
    by_category: dict[str, int] = {}
    for r in reports:
        by_tier[r.tier.value] += 1
        if r.ai.category is not None:
            by_category[r.ai.category] = by_category.get(r.ai.category, 0) + 1
    summary = ScanSummary(
        documents=len(docs),
        workloads=len(reports),
        ai=sum(r.ai.is_ai for r in reports),
        managed=sum(r.managed for r in reports),
        shadow_ai=sum(r.ai.is_ai and not r.managed for r in reports),
        ai_workloads=len(ai_reports),
        network_policies=len(policies),
        by_tier=by_tier,
        by_category=dict(sorted(by_category.items())),
        skipped=scanned.skipped,
    )
    return ScanReport(
        workloads=reports,
        ai_workloads=ai_reports,
        network_policies=policies,
        opa_data=render_opa_data(effective, OPA_REVISION),
        summary=summary,
        errors=scanned.errors,
    )


# --- tier gap ----------------------------------------------------------------------------

_UNFIXABLE = frozenset({"BASE", "ROUNDING", "CLAMP", "CLAMP-POSTURE", "QUARANTINE-HOLD", "OTHER"})


class Fix(_Out):
    id: str
    points: int = Field(description="Points the score would gain")
    source: str
    reason: str
    action: str
    references: list[str]
    cumulative: int = Field(description="Points gained by this fix and all before it")


class TierGap(_Out):
    tier: Tier
    score: int
    next_tier: Tier | None = Field(alias="nextTier")
    required_score: int | None = Field(alias="requiredScore")
    gap: int = Field(description="Points still missing to reach the next tier (0 when none)")
    hold: bool = Field(description="A quarantine hold keeps quarantined whatever the score, until it ends")
    fixes: list[Fix]
    sufficient: int = Field(
        description="How many fixes, taken in order, close the gap (0: none needed or not enough)"
    )


_NEXT: Mapping[Tier, Tier | None] = {
    Tier.QUARANTINED: Tier.RESTRICTED,
    Tier.RESTRICTED: Tier.TRUSTED,
    Tier.TRUSTED: None,
}


def _action(factor: Factor, policy: TrustPolicySpec) -> str:
    if factor.source == "posture":
        check = CHECKS.get(factor.id)
        return check.remediation if check is not None else "Fix the posture finding."
    if factor.source in ("signal", "baseline"):
        return (
            f"Investigate the signal; its penalty halves every {policy.signals.half_life} "
            "and stops counting once it decays."
        )
    if factor.source == "signature":
        return "Sign the declared models and make their keys available."
    return "Review the factor."


def build_tier_gap(
    score: int,
    tier: Tier,
    factors: Sequence[Factor],
    policy: TrustPolicySpec,
    hold: bool = False,
) -> TierGap:
    """What must change for a workload at ``score``/``tier`` to reach the next tier up.

    Rising needs ``threshold + hysteresis`` (a lower tier applies at once, a higher one only
    with margin). Fixes are the negative factors, largest first; ``sufficient`` counts how many
    of them close the gap. Posture can never exceed 100, which caps what fixes can earn.
    """
    next_tier = _NEXT[tier]
    required: int | None = None
    gap = 0
    if next_tier is not None:
        threshold = policy.thresholds.trusted if next_tier is Tier.TRUSTED else policy.thresholds.restricted
        required = min(100, threshold + policy.hysteresis)
        gap = max(0, required - score)
    negatives = sorted(
        (f for f in factors if f.points < 0 and f.id not in _UNFIXABLE),
        key=lambda f: (f.points, f.id),
    )
    fixes: list[Fix] = []
    total = 0
    sufficient = 0
    headroom = 100 - score
    for factor in negatives:
        gain = min(-factor.points, max(0, headroom - total))
        total += gain
        fixes.append(
            Fix(
                id=factor.id,
                points=-factor.points,
                source=factor.source,
                reason=factor.reason,
                action=_action(factor, policy),
                references=list(factor.references),
                cumulative=total,
            )
        )
        if gap > 0 and sufficient == 0 and total >= gap:
            sufficient = len(fixes)
    return TierGap(
        tier=tier,
        score=score,
        next_tier=next_tier,
        required_score=required,
        gap=gap,
        hold=hold,
        fixes=fixes,
        sufficient=sufficient,
    )
