"""NetworkPolicy renderers: pure functions from effective trust to networking.k8s.io/v1 manifests.

Design: aitrust never writes to user pods (no pod labels). Each managed workload gets ONE egress
policy selecting its pods by the workload's own selector, and each in-cluster target gets ONE
ingress policy listing the workloads granted it now. So new pods are covered at once, RBAC needs
no pod patch, and a tier change rewrites 1 egress policy plus the k endpoint policies that workload
references (k is small) instead of relabelling every pod. Endpoint policies grow with the number of
granted workloads, which stays a fine size up to ~1,000 workloads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aitrust.api.v1alpha1 import (
    API_VERSION,
    DataSource,
    EgressRule,
    LabelSelector,
    Mode,
    ModelEndpoint,
    PortSpec,
)
from aitrust.core.effective import (
    EffectiveGrant,
    EffectiveTrust,
    ExternalDestination,
    InClusterDestination,
    resolve_destination,
)
from aitrust.render.hashing import SPEC_HASH_ANNOTATION, canonical_json, spec_hash

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "aitrust"
WORKLOAD_LABEL = "aitrust.dev/workload"
ENDPOINT_LABEL = "aitrust.dev/endpoint"
ENDPOINT_KIND_LABEL = "aitrust.dev/endpoint-kind"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
NETWORK_POLICY_API = "networking.k8s.io/v1"

_MAX_NAME = 253
_MAX_LABEL_VALUE = 63

Manifest = dict[str, Any]


def owner_reference(kind: str, name: str, uid: str, api_version: str = API_VERSION) -> dict[str, Any]:
    """A controller owner reference in the form the renderers expect as ``owner``."""
    return {"apiVersion": api_version, "kind": kind, "name": name, "uid": uid}


def workload_policy_name(workload: str) -> str:
    return _bounded(f"aitrust-{workload}", _MAX_NAME)


def endpoint_policy_name(endpoint: str) -> str:
    return _bounded(f"aitrust-ingress-{endpoint}", _MAX_NAME)


def workload_policy_labels(workload: str) -> dict[str, str]:
    return {MANAGED_BY_LABEL: MANAGED_BY, WORKLOAD_LABEL: _label_value(workload)}


def endpoint_policy_labels(kind: str, endpoint: str) -> dict[str, str]:
    return {MANAGED_BY_LABEL: MANAGED_BY, ENDPOINT_LABEL: _label_value(endpoint), ENDPOINT_KIND_LABEL: kind}


def policy_owner(labels: Mapping[str, str]) -> tuple[str, str] | None:
    """The object a generated policy belongs to, from its labels (kind, name label value)."""
    if WORKLOAD_LABEL in labels:
        return ("AIWorkload", labels[WORKLOAD_LABEL])
    if ENDPOINT_LABEL in labels:
        return (labels.get(ENDPOINT_KIND_LABEL, "ModelEndpoint"), labels[ENDPOINT_LABEL])
    return None


def render_workload_policy(eff: EffectiveTrust, owner: Mapping[str, Any]) -> Manifest:
    """The workload's egress policy (default deny once managed); ingress stays open unless quarantined."""
    egress: list[dict[str, Any]] = [_dns_rule()] if eff.allow_dns else []
    ingress: list[dict[str, Any]]
    if eff.quarantined:
        egress += [_quarantine_egress_rule(rule) for rule in eff.quarantine_egress]
        peers = [_namespace_peer(ns) for ns in eff.quarantine_ingress_namespaces]
        ingress = [{"from": peers}] if peers else []
    else:
        for grant in sorted(eff.grants, key=lambda g: g.key):
            rule = _grant_egress_rule(grant) if grant.allowed else None
            if rule is not None:
                egress.append(rule)
        # This policy exists to control egress; ingress to the workload is not aitrust's business.
        ingress = [{}]
    spec = {
        "podSelector": _selector(eff.pod_selector),
        "policyTypes": ["Ingress", "Egress"],
        "ingress": ingress,
        "egress": _unique(egress),
    }
    labels = workload_policy_labels(eff.name)
    return _manifest(workload_policy_name(eff.name), eff.namespace, labels, owner, spec)


def render_endpoint_ingress_policy(
    endpoint: ModelEndpoint | DataSource,
    granted_workloads: Iterable[EffectiveTrust],
    owner: Mapping[str, Any],
    service_selectors: Mapping[tuple[str, str], Mapping[str, str]] = {},
) -> Manifest:
    """Ingress to an in-cluster target, on its ports, only from workloads granted it now.

    Workloads passed in without a current grant are left out, so callers may pass every workload
    that references the target. Audit-mode workloads that reference it are admitted: audit must not
    block anything, and this policy is shared, so the shell cannot simply skip writing it.
    Raises ValueError when the target has no in-cluster pods to select.
    """
    dest = resolve_destination(endpoint, service_selectors)
    key = (endpoint.kind, endpoint.metadata.namespace, endpoint.metadata.name)
    if not isinstance(dest, InClusterDestination):
        raise ValueError(f"{'/'.join(key)} is not in-cluster")
    admitted = sorted((e for e in granted_workloads if _admits(e, key)), key=lambda e: (e.namespace, e.name))
    peers = _unique(
        [
            {
                "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: e.namespace}},
                "podSelector": _selector(e.pod_selector),
            }
            for e in admitted
        ]
    )
    ingress: list[dict[str, Any]] = []
    if peers:
        rule: dict[str, Any] = {"from": peers}
        if dest.ports:
            rule["ports"] = _ports(dest.ports)
        ingress.append(rule)
    spec = {"podSelector": _selector(dest.pod_selector), "policyTypes": ["Ingress"], "ingress": ingress}
    labels = endpoint_policy_labels(endpoint.kind, endpoint.metadata.name)
    return _manifest(
        endpoint_policy_name(endpoint.metadata.name), endpoint.metadata.namespace, labels, owner, spec
    )


def render_enforcement_plan(eff: EffectiveTrust) -> list[dict[str, Any]]:
    """What enforcement would write for this workload; audit mode reports it instead of applying it.

    First the workload's own policy (with its manifest), then one entry per referenced in-cluster
    target saying whether that target's ingress policy would admit the workload.
    """
    owner = owner_reference("AIWorkload", eff.name, eff.uid or "")
    manifest = render_workload_policy(eff, owner)
    reachable = [
        g for g in eff.grants if g.allowed and not eff.quarantined and _grant_egress_rule(g) is not None
    ]
    if eff.quarantined:
        egress = (["DNS"] if eff.allow_dns else []) + [
            f"quarantine allowedEgress[{i}]" for i in range(len(eff.quarantine_egress))
        ]
        ingress = list(eff.quarantine_ingress_namespaces)
    else:
        egress = (["DNS"] if eff.allow_dns else []) + sorted(g.target for g in reachable)
        ingress = ["*"]
    blocked = sorted(f"{g.target}: {g.reason}" for g in eff.grants if g not in reachable)
    plan: list[dict[str, Any]] = [
        {
            "kind": "NetworkPolicy",
            "namespace": eff.namespace,
            "name": manifest["metadata"]["name"],
            "egress": egress,
            "blocked": blocked,
            "ingress": ingress,
            "manifest": manifest,
        }
    ]
    for grant in sorted(eff.grants, key=lambda g: g.key):
        if isinstance(grant.destination, InClusterDestination):
            plan.append(
                {
                    "kind": "NetworkPolicy",
                    "namespace": grant.namespace,
                    "name": endpoint_policy_name(grant.name),
                    "target": grant.target,
                    "admit": grant.allowed and not eff.quarantined,
                    "reason": grant.reason,
                }
            )
    return plan


# --- pieces ------------------------------------------------------------------------


def _admits(eff: EffectiveTrust, key: tuple[str, str, str]) -> bool:
    grant = eff.grant_for(*key)
    if grant is None:
        return False
    return eff.mode is Mode.AUDIT or (grant.allowed and not eff.quarantined)


def _grant_egress_rule(grant: EffectiveGrant) -> dict[str, Any] | None:
    dest = grant.destination
    if isinstance(dest, InClusterDestination):
        peer = {
            "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: dest.namespace}},
            "podSelector": _selector(dest.pod_selector),
        }
        return _rule([peer], dest.ports)
    if isinstance(dest, ExternalDestination) and dest.cidrs:
        return _rule([{"ipBlock": {"cidr": c}} for c in dest.cidrs], dest.ports)
    return None  # no address NetworkPolicy can name (missing target, hosts only)


def _quarantine_egress_rule(rule: EgressRule) -> dict[str, Any]:
    peers: list[dict[str, Any]] = []
    if rule.cidr:
        peers.append({"ipBlock": {"cidr": rule.cidr}})
    if rule.namespace_selector is not None or rule.pod_selector is not None:
        peer: dict[str, Any] = {}
        if rule.namespace_selector is not None:
            peer["namespaceSelector"] = _selector(rule.namespace_selector)
        if rule.pod_selector is not None:
            peer["podSelector"] = _selector(rule.pod_selector)
        peers.append(peer)
    unique = {(p.protocol, p.port): p for p in rule.ports}
    return _rule(peers, tuple(unique[k] for k in sorted(unique)))


def _dns_rule() -> dict[str, Any]:
    peer = {
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: "kube-system"}},
        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
    }
    return {"to": [peer], "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}


def _namespace_peer(namespace: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}}}


def _rule(peers: list[dict[str, Any]], ports: Sequence[PortSpec]) -> dict[str, Any]:
    rule: dict[str, Any] = {}
    if peers:
        rule["to"] = peers
    if ports:
        rule["ports"] = _ports(ports)
    return rule


def _ports(ports: Sequence[PortSpec]) -> list[dict[str, Any]]:
    return [{"port": p.port, "protocol": p.protocol} for p in ports]


def _selector(selector: LabelSelector) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if selector.match_labels:
        out["matchLabels"] = dict(sorted(selector.match_labels.items()))
    if selector.match_expressions:
        out["matchExpressions"] = [r.model_dump(exclude_none=True) for r in selector.match_expressions]
    return out


def _unique(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out = []
    for item in items:
        text = canonical_json(item)
        if text not in seen:
            seen.add(text)
            out.append(item)
    return out


def _manifest(
    name: str, namespace: str, labels: dict[str, str], owner: Mapping[str, Any], spec: dict[str, Any]
) -> Manifest:
    owners = [
        {
            "apiVersion": owner.get("apiVersion", API_VERSION),
            "kind": owner["kind"],
            "name": owner["name"],
            "uid": owner["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    return {
        "apiVersion": NETWORK_POLICY_API,
        "kind": "NetworkPolicy",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": {SPEC_HASH_ANNOTATION: spec_hash(spec, labels, owners)},
            "ownerReferences": owners,
        },
        "spec": spec,
    }


def _bounded(value: str, limit: int) -> str:
    """Cut an over-long name and keep it unique with a short hash of the whole."""
    if len(value) <= limit:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    return f"{value[: limit - 9]}-{digest}"


def _label_value(name: str) -> str:
    return _bounded(name, _MAX_LABEL_VALUE)
