"""Resolve a Signal to the AIWorkload(s) it concerns, from an index built once per cluster snapshot.

Building the index does the selector matching; ``map_signal`` is dictionary lookups only, so a
burst of signals costs nothing per workload.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aitrust.api.v1alpha1 import AIWorkload, LabelSelector
from aitrust.core.selectors import selector_matches
from aitrust.core.signal import Signal, WorkloadHint

WorkloadKey = tuple[str, str]  # (namespace, name)
PodKey = tuple[str, str]  # (namespace, pod name)
AwsRoleKey = tuple[str, str, str]  # (partition, account, role name in lower case)
MatchVia = Literal["workload", "pod", "container", "aws", "gcp", "azure"]

AWS_ROLE_ANNOTATION = "eks.amazonaws.com/role-arn"
GCP_SA_ANNOTATION = "iam.gke.io/gcp-service-account"
AZURE_CLIENT_ID_ANNOTATION = "azure.workload.identity/client-id"
DEFAULT_SERVICE_ACCOUNT = "default"
SHORT_CONTAINER_ID = 12  # what Falco reports

_ROLE_ARN = re.compile(r"^arn:(aws[a-zA-Z-]*):iam::([0-9]{12}):role/(?:[^/]+/)*([^/]+)$")
_ASSUMED_ROLE_ARN = re.compile(r"^arn:(aws[a-zA-Z-]*):sts::([0-9]{12}):assumed-role/([^/]+)/.+$")
_HEX = re.compile(r"^[0-9a-f]+$")


# --- identity normalisation -----------------------------------------------------------


def aws_role_key(arn: str) -> AwsRoleKey | None:
    """Key an IAM role by partition, account and name.

    Role names are unique per account whatever their path, and an assumed-role ARN drops the
    path, so the name (case-insensitive in IAM) is what both sides share.
    """
    text = arn.strip()
    match = _ROLE_ARN.match(text) or _ASSUMED_ROLE_ARN.match(text)
    if match is None:
        return None
    partition, account, name = match.groups()
    return partition, account, name.lower()


def gcp_principal_key(principal: str) -> str:
    return principal.strip().removeprefix("serviceAccount:").lower()


def azure_client_key(client_id: str) -> str:
    return client_id.strip().lower()


def container_id_key(container_id: str) -> str | None:
    """The bare lower-case hex id: strips ``containerd://`` and friends; None if not an id."""
    bare = container_id.strip().split("://", 1)[-1].lower()
    return bare if bare and _HEX.match(bare) else None


# --- raw pod/service-account access -----------------------------------------------------
# Pods and ServiceAccounts come as raw API dicts (camelCase); the snake_case of the kubernetes
# client's to_dict() is accepted too.


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _field(obj: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        if obj.get(name) is not None:
            return obj[name]
    return None


def _str_dict(value: Any) -> dict[str, str]:
    return {k: v for k, v in _mapping(value).items() if isinstance(k, str) and isinstance(v, str)}


def _meta(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    meta = _mapping(obj.get("metadata"))
    name = meta.get("name")
    namespace = meta.get("namespace") or "default"
    if not isinstance(name, str) or not name or not isinstance(namespace, str):
        return None
    return namespace, name


def _container_ids(pod: Mapping[str, Any]) -> Iterable[str]:
    status = _mapping(pod.get("status"))
    for group in (
        ("containerStatuses", "container_statuses"),
        ("initContainerStatuses", "init_container_statuses"),
        ("ephemeralContainerStatuses", "ephemeral_container_statuses"),
    ):
        statuses = _field(status, *group)
        if not isinstance(statuses, list):
            continue
        for entry in statuses:
            raw = _field(_mapping(entry), "containerID", "container_id")
            key = container_id_key(raw) if isinstance(raw, str) else None
            if key:
                yield key


def _service_account(pod: Mapping[str, Any]) -> str:
    spec = _mapping(pod.get("spec"))
    name = _field(spec, "serviceAccountName", "service_account_name", "serviceAccount", "service_account")
    return name if isinstance(name, str) and name else DEFAULT_SERVICE_ACCOUNT


# --- the index --------------------------------------------------------------------------


def _frozen(groups: Mapping[Any, set[WorkloadKey]]) -> Mapping[Any, tuple[WorkloadKey, ...]]:
    return MappingProxyType({k: tuple(sorted(v)) for k, v in groups.items()})


@dataclass(frozen=True)
class WorkloadIndex:
    """Lookup tables from what a signal names to the AIWorkloads it concerns."""

    workloads: frozenset[WorkloadKey] = frozenset()
    by_name: Mapping[str, tuple[WorkloadKey, ...]] = field(default_factory=dict)
    by_pod: Mapping[PodKey, tuple[WorkloadKey, ...]] = field(default_factory=dict)
    pods: frozenset[PodKey] = frozenset()
    # Keyed by the 12-character short id; each entry keeps the full id to check longer ones.
    containers: Mapping[str, tuple[tuple[str, PodKey], ...]] = field(default_factory=dict)
    by_aws_role: Mapping[AwsRoleKey, tuple[WorkloadKey, ...]] = field(default_factory=dict)
    by_gcp_principal: Mapping[str, tuple[WorkloadKey, ...]] = field(default_factory=dict)
    by_azure_client_id: Mapping[str, tuple[WorkloadKey, ...]] = field(default_factory=dict)


class _PodsOfNamespace:
    """Pods of one namespace with an inverted label index, so selectors scan few pods."""

    def __init__(self) -> None:
        self.labels: dict[str, dict[str, str]] = {}
        self.by_label: dict[tuple[str, str], set[str]] = defaultdict(set)

    def add(self, name: str, labels: dict[str, str]) -> None:
        self.labels[name] = labels
        for item in labels.items():
            self.by_label[item].add(name)

    def select(self, selector: LabelSelector) -> list[str]:
        required = sorted(
            (self.by_label.get(item, set()) for item in (selector.match_labels or {}).items()), key=len
        )
        candidates: Iterable[str] = set.intersection(*required) if required else self.labels
        return sorted(name for name in candidates if selector_matches(selector, self.labels[name]))


def build_workload_index(
    workloads: Sequence[AIWorkload],
    pods: Sequence[Mapping[str, Any]],
    service_accounts: Sequence[Mapping[str, Any]],
) -> WorkloadIndex:
    """Index workloads by name, pod, container and cloud identity (declared or from pods' SAs)."""
    namespaces: dict[str, _PodsOfNamespace] = defaultdict(_PodsOfNamespace)
    pod_sa: dict[PodKey, str] = {}
    containers: dict[str, set[tuple[str, PodKey]]] = defaultdict(set)
    for pod in pods:
        key = _meta(pod)
        if key is None:
            continue
        namespaces[key[0]].add(key[1], _str_dict(_mapping(pod.get("metadata")).get("labels")))
        pod_sa[key] = _service_account(pod)
        for cid in _container_ids(pod):
            if len(cid) >= SHORT_CONTAINER_ID:
                containers[cid[:SHORT_CONTAINER_ID]].add((cid, key))

    sa_annotations: dict[PodKey, dict[str, str]] = {}
    for sa in service_accounts:
        key = _meta(sa)
        if key is not None:
            sa_annotations[key] = _str_dict(_mapping(sa.get("metadata")).get("annotations"))

    names: dict[str, set[WorkloadKey]] = defaultdict(set)
    by_pod: dict[PodKey, set[WorkloadKey]] = defaultdict(set)
    aws: dict[AwsRoleKey, set[WorkloadKey]] = defaultdict(set)
    gcp: dict[str, set[WorkloadKey]] = defaultdict(set)
    azure: dict[str, set[WorkloadKey]] = defaultdict(set)
    keys: set[WorkloadKey] = set()
    for workload in workloads:
        wkey = (workload.metadata.namespace, workload.metadata.name)
        keys.add(wkey)
        names[wkey[1]].add(wkey)
        role_arns: set[str] = set()
        gcp_principals: set[str] = set()
        azure_ids: set[str] = set()
        identities = workload.spec.cloud_identities
        if identities is not None:
            if identities.aws:
                role_arns.add(identities.aws.role_arn)
            if identities.gcp:
                gcp_principals.add(identities.gcp.service_account)
            if identities.azure:
                azure_ids.add(identities.azure.client_id)
        in_namespace = namespaces.get(wkey[0])
        for pod_name in in_namespace.select(workload.spec.selector) if in_namespace else []:
            pkey = (wkey[0], pod_name)
            by_pod[pkey].add(wkey)
            annotations = sa_annotations.get((wkey[0], pod_sa[pkey]), {})
            role_arns.update(v for k, v in annotations.items() if k == AWS_ROLE_ANNOTATION)
            gcp_principals.update(v for k, v in annotations.items() if k == GCP_SA_ANNOTATION)
            azure_ids.update(v for k, v in annotations.items() if k == AZURE_CLIENT_ID_ANNOTATION)
        for arn in role_arns:
            role = aws_role_key(arn)
            if role is not None:
                aws[role].add(wkey)
        for principal in gcp_principals:
            gcp[gcp_principal_key(principal)].add(wkey)
        for client_id in azure_ids:
            azure[azure_client_key(client_id)].add(wkey)

    return WorkloadIndex(
        workloads=frozenset(keys),
        by_name=_frozen(names),
        by_pod=_frozen(by_pod),
        pods=frozenset(pod_sa),
        containers=MappingProxyType({k: tuple(sorted(v)) for k, v in containers.items()}),
        by_aws_role=_frozen(aws),
        by_gcp_principal=_frozen(gcp),
        by_azure_client_id=_frozen(azure),
    )


# --- mapping ----------------------------------------------------------------------------


class MappingResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    workloads: list[tuple[str, str]] = Field(default_factory=list, description="(namespace, name), sorted.")
    reason: str = Field(description="How the signal was matched, or why it was not.")
    via: MatchVia | None = Field(default=None, description="Which hint matched; None when unmatched.")


_Attempt = tuple[tuple[WorkloadKey, ...], str]


def _by_workload(index: WorkloadIndex, hint: WorkloadHint) -> _Attempt:
    name = hint.workload or ""
    if hint.namespace:
        key = (hint.namespace, name)
        if key in index.workloads:
            return (key,), f"names AIWorkload {hint.namespace}/{name}"
        return (), f"no AIWorkload {hint.namespace}/{name}"
    found = index.by_name.get(name, ())
    if len(found) == 1:
        return found, f"names AIWorkload {name}"
    if found:
        return (), f"AIWorkload name {name!r} is ambiguous without a namespace"
    return (), f"no AIWorkload named {name!r}"


def _pod_workloads(index: WorkloadIndex, pod: PodKey, how: str) -> _Attempt:
    found = index.by_pod.get(pod, ())
    if found:
        return found, f"{how} pod {pod[0]}/{pod[1]}, selected by {_names(found)}"
    if pod in index.pods:
        return (), f"{how} pod {pod[0]}/{pod[1]}, which no AIWorkload selects"
    return (), f"{how} pod {pod[0]}/{pod[1]}, which is not known"


def _by_container(index: WorkloadIndex, raw: str) -> _Attempt:
    cid = container_id_key(raw)
    if cid is None or len(cid) < SHORT_CONTAINER_ID:
        return (), f"container id {raw!r} is not a usable id"
    pods = sorted(
        {pod for full, pod in index.containers.get(cid[:SHORT_CONTAINER_ID], ()) if full.startswith(cid)}
    )
    if not pods:
        return (), f"container {cid[:SHORT_CONTAINER_ID]} is in no known pod"
    if len(pods) > 1:
        return (), f"container {cid[:SHORT_CONTAINER_ID]} is ambiguous ({len(pods)} pods share the short id)"
    return _pod_workloads(index, pods[0], f"container {cid[:SHORT_CONTAINER_ID]} is in")


def _by_identity(found: tuple[WorkloadKey, ...], what: str) -> _Attempt:
    if found:
        return found, f"{what} belongs to {_names(found)}"
    return (), f"{what} belongs to no AIWorkload"


def _names(keys: Iterable[WorkloadKey]) -> str:
    return ", ".join(f"{ns}/{name}" for ns, name in keys)


def _attempts(index: WorkloadIndex, hint: WorkloadHint) -> Iterable[tuple[MatchVia, _Attempt]]:
    # Most specific first: a named workload, then the pod, then identities shared by many pods.
    if hint.workload:
        yield "workload", _by_workload(index, hint)
    if hint.namespace and hint.pod:
        yield "pod", _pod_workloads(index, (hint.namespace, hint.pod), "signal names")
    if hint.container_id:
        yield "container", _by_container(index, hint.container_id)
    if hint.aws_arn:
        role = aws_role_key(hint.aws_arn)
        if role is None:
            yield "aws", ((), f"AWS principal {hint.aws_arn} is not an IAM role")
        else:
            yield "aws", _by_identity(index.by_aws_role.get(role, ()), f"AWS role {hint.aws_arn}")
    if hint.gcp_principal:
        found = index.by_gcp_principal.get(gcp_principal_key(hint.gcp_principal), ())
        yield "gcp", _by_identity(found, f"GCP principal {hint.gcp_principal}")
    if hint.azure_client_id:
        found = index.by_azure_client_id.get(azure_client_key(hint.azure_client_id), ())
        yield "azure", _by_identity(found, f"Azure client id {hint.azure_client_id}")


def map_signal(index: WorkloadIndex, signal: Signal) -> MappingResult:
    """The AIWorkloads a signal concerns, via the first of its hints that resolves."""
    misses: list[str] = []
    for via, (found, reason) in _attempts(index, signal.target):
        if found:
            return MappingResult(workloads=sorted(found), reason=reason, via=via)
        misses.append(reason)
    if not misses:
        reason = "signal names no workload, pod, container or cloud identity"
        if signal.target.namespace:
            reason += " (a namespace alone is not enough)"
        return MappingResult(reason=reason)
    return MappingResult(reason="unmatched: " + "; ".join(misses))
