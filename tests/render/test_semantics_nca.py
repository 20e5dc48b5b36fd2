"""An independent reading of the rendered NetworkPolicies: np-guard's network-config-analyzer (nca).

nca computes the pod-to-pod and pod-to-IP connectivity that a set of NetworkPolicies allows; the
test checks it against what ``EffectiveTrust.grants`` says. Install: see ``_find_nca``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from aitrust.api.v1alpha1 import LabelSelector, Tier
from aitrust.core.effective import EffectiveTrust, ExternalDestination, InClusterDestination
from aitrust.core.selectors import selector_matches
from aitrust.render.networkpolicy import render_endpoint_ingress_policy, render_workload_policy
from tests.render.scenarios import (
    QUARANTINE_POLICY,
    SERVICE_SELECTORS,
    TARGETS,
    effective,
    owner_of,
    policy,
    target_owner,
    workload,
)

ALL = "All connections"
Conn = frozenset[tuple[str, int]] | str  # ALL, or (protocol, port) pairs
WORKLOAD_POD = "team-a/agent-0"
BYSTANDER_POD = "team-a/bystander-0"
NAMESPACES = ["team-a", "models", "data", "kube-system", "monitoring", "ingress-nginx"]
FIXED_PODS = [
    ("team-a", "agent-0", {"app": "agent"}),
    ("team-a", "bystander-0", {"app": "bystander"}),
    ("kube-system", "coredns-0", {"k8s-app": "kube-dns"}),
    ("monitoring", "prom-0", {"app": "prom"}),
    ("monitoring", "otel-0", {"app": "otel"}),
]


def _find_nca() -> str:
    found = os.environ.get("AITRUST_NCA") or shutil.which("nca")
    if not found:
        pytest.fail(
            "nca not found: set AITRUST_NCA or put nca on PATH. Install it in its own venv (it pins "
            "PyYAML==6.0.2): python3 -m venv .nca-venv && "
            ".nca-venv/bin/pip install network-config-analyzer==2.1.0"
        )
    return found


def _scenario(variant: str) -> EffectiveTrust:
    wl = workload(
        model_endpoints=[
            {"name": "llm", "namespace": "models"},
            {"name": "embed"},
            {"name": "bedrock", "namespace": "models", "minTier": "restricted"},
        ],
        data_sources=[{"name": "pii", "namespace": "data"}],
    )
    if variant == "restricted":
        return effective(Tier.RESTRICTED, wl=wl)
    if variant == "trusted-no-dns":
        return effective(Tier.TRUSTED, wl=wl, pol=policy(allowDNS=False))
    if variant == "quarantined":
        return effective(Tier.QUARANTINED, wl=wl, pol=QUARANTINE_POLICY)
    return effective(Tier.QUARANTINED, wl=wl, pol=policy(quarantine={"allowDNS": False}))


@dataclass
class Cluster:
    namespaces: dict[str, dict[str, str]]
    pods: dict[str, dict[str, str]]  # "ns/name" -> labels

    def matching(
        self, namespace_selector: LabelSelector | None, pod_selector: LabelSelector | None, ns: str
    ) -> set[str]:
        out = set()
        for pod, labels in self.pods.items():
            pod_ns = pod.split("/")[0]
            if namespace_selector is None and pod_ns != ns:
                continue
            if namespace_selector is not None and not selector_matches(
                namespace_selector, self.namespaces[pod_ns]
            ):
                continue
            if pod_selector is None or selector_matches(pod_selector, labels):
                out.add(pod)
        return out


def _write_cluster(eff: EffectiveTrust, root: Path, layers: frozenset[str]) -> Cluster:
    pods = [*FIXED_PODS]
    for grant in eff.grants:
        if isinstance(grant.destination, InClusterDestination):
            labels = dict(grant.destination.pod_selector.match_labels or {})
            pods.append((grant.destination.namespace, f"{grant.name}-0", labels))
    cluster = Cluster(
        namespaces={n: {"kubernetes.io/metadata.name": n} for n in NAMESPACES},
        pods={f"{ns}/{name}": labels for ns, name, labels in pods},
    )
    policies = [render_workload_policy(eff, owner_of(eff))] if "egress" in layers else []
    for grant in eff.grants:
        if "ingress" in layers and isinstance(grant.destination, InClusterDestination):
            target = TARGETS[grant.key]
            policies.append(
                render_endpoint_ingress_policy(target, [eff], target_owner(target), SERVICE_SELECTORS)
            )
    (root / "policies").mkdir()
    for i, manifest in enumerate(policies):
        (root / "policies" / f"{i:02d}.yaml").write_text(yaml.safe_dump(manifest))
    (root / "namespaces.yaml").write_text(
        yaml.safe_dump_all(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "labels": labels}}
            for n, labels in cluster.namespaces.items()
        )
    )
    (root / "pods.yaml").write_text(
        yaml.safe_dump_all(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": pod.split("/")[1], "namespace": pod.split("/")[0], "labels": labels},
                "spec": {"containers": [{"name": "main", "image": "registry.example/app:1"}]},
            }
            for pod, labels in cluster.pods.items()
        )
    )
    return cluster


_LINE = re.compile(r"^(?P<src>\S+) => (?P<dst>\S+) : (?P<conn>.+)$")
_CONN = re.compile(r"^\{protocols:(?P<protocols>[A-Z, ]+),dst_ports:(?P<ports>[0-9,\-]+)\}$")


def _parse_conn(text: str) -> Conn:
    if text == ALL:
        return ALL
    m = _CONN.match(text)
    assert m, f"unexpected nca connection format: {text!r}"
    pairs = set()
    for proto in m["protocols"].split(","):
        for part in m["ports"].split(","):
            lo, _, hi = part.partition("-")
            assert int(hi or lo) - int(lo) < 1000, f"unexpectedly wide port range {part}"
            pairs |= {(proto.strip(), p) for p in range(int(lo), int(hi or lo) + 1)}
    return frozenset(pairs)


def _run_nca(root: Path) -> dict[tuple[str, str], Conn]:
    proc = subprocess.run(
        [
            _find_nca(),
            "--connectivity",
            str(root / "policies"),
            "--pod_list",
            str(root / "pods.yaml"),
            "--ns_list",
            str(root / "namespaces.yaml"),
            "--output_format",
            "txt_no_fw_rules",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    conns: dict[tuple[str, str], Conn] = {}
    for line in proc.stdout.splitlines():
        m = _LINE.match(line.strip())
        if not m:
            continue
        src, dst = (n.removesuffix("[Pod]") for n in (m["src"], m["dst"]))
        conn = _parse_conn(m["conn"])
        prev = conns.get((src, dst))
        if prev is None or conn == ALL:
            conns[(src, dst)] = conn
        elif prev != ALL:
            assert isinstance(prev, frozenset) and isinstance(conn, frozenset)
            conns[(src, dst)] = prev | conn
    assert conns, f"nca reported no connectivity at all:\n{proc.stdout}\n{proc.stderr}"
    return conns


def _is_ip_range(node: str) -> bool:
    return "/" not in node


def _ip_interval(node: str) -> tuple[int, int]:
    lo, hi = node.split("-")
    return int(ipaddress.IPv4Address(lo)), int(ipaddress.IPv4Address(hi))


def _merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _cidr_interval(cidr: str) -> tuple[int, int]:
    net = ipaddress.IPv4Network(cidr)
    return int(net.network_address), int(net.broadcast_address)


def _ports(ports: Any) -> frozenset[tuple[str, int]]:
    return frozenset((p.protocol, p.port) for p in ports)


def _expected_egress(
    eff: EffectiveTrust, cluster: Cluster
) -> tuple[dict[str, Conn], dict[tuple[int, int], Conn]]:
    """What the workload's pod may reach: pods -> connection, and IP intervals -> connection."""
    pods: dict[str, Conn] = {}
    ips: dict[tuple[int, int], Conn] = {}
    if eff.allow_dns:
        pods["kube-system/coredns-0"] = frozenset({("UDP", 53), ("TCP", 53)})
    if eff.quarantined:
        for rule in eff.quarantine_egress:
            conn = _ports(rule.ports)
            if rule.cidr:
                ips[_cidr_interval(rule.cidr)] = conn
            if rule.namespace_selector or rule.pod_selector:
                for pod in cluster.matching(rule.namespace_selector, rule.pod_selector, eff.namespace):
                    pods[pod] = conn
        return pods, ips
    for grant in eff.grants:
        dest = grant.destination
        if not grant.allowed:
            continue
        if isinstance(dest, InClusterDestination):
            pods[f"{dest.namespace}/{grant.name}-0"] = _ports(dest.ports)
        elif isinstance(dest, ExternalDestination):
            for cidr in dest.cidrs:
                ips[_cidr_interval(cidr)] = _ports(dest.ports)
    return pods, ips


VARIANTS = ["restricted", "trusted-no-dns", "quarantined", "quarantined-no-dns"]
# Each layer must hold on its own: the endpoint policy may be missing (external or unmanaged
# target) and the egress policy may be missing (audit mode, or a CNI without egress support).
CASES = (
    [(v, "egress+ingress") for v in VARIANTS]
    + [(v, "egress") for v in VARIANTS]
    + [("restricted", "ingress")]
)


@pytest.mark.parametrize(("variant", "layer_names"), CASES)
def test_nca_connectivity_matches_grants(variant: str, layer_names: str, tmp_path: Path) -> None:
    layers = frozenset(layer_names.split("+"))
    eff = _scenario(variant)
    cluster = _write_cluster(eff, tmp_path, layers)
    conns = _run_nca(tmp_path)
    assert any(g.allowed for g in eff.grants) is (variant in ("restricted", "trusted-no-dns"))
    assert any(not g.allowed for g in eff.grants) is (variant != "trusted-no-dns")

    # Per grant: allowed => permitted on exactly its ports, denied => not at all.
    for grant in eff.grants:
        dest = grant.destination
        permitted = grant.allowed and not eff.quarantined
        if isinstance(dest, InClusterDestination):
            pod = f"{dest.namespace}/{grant.name}-0"
            assert conns.get((WORKLOAD_POD, pod)) == (_ports(dest.ports) if permitted else None), grant.target
            if "ingress" in layers:  # the target admits only granted workloads
                assert (BYSTANDER_POD, pod) not in conns, grant.target
                assert not any(_is_ip_range(src) and dst == pod for src, dst in conns), grant.target
            else:
                assert conns[(BYSTANDER_POD, pod)] == ALL
        elif isinstance(dest, ExternalDestination) and "egress" in layers:
            for cidr in dest.cidrs:
                lo, hi = _cidr_interval(cidr)
                covered = [
                    c
                    for (s, d), c in conns.items()
                    if s == WORKLOAD_POD
                    and _is_ip_range(d)
                    and _ip_interval(d)[0] <= lo
                    and hi <= _ip_interval(d)[1]
                ]
                assert covered == ([_ports(dest.ports)] if permitted else []), (grant.target, cidr)

    if "egress" not in layers:
        assert conns[(WORKLOAD_POD, "kube-system/coredns-0")] == ALL
        return

    # Egress of the workload: exactly the allowed grants (or quarantine allowances), nothing else.
    expected_pods, expected_ips = _expected_egress(eff, cluster)
    actual_pods = {dst: c for (src, dst), c in conns.items() if src == WORKLOAD_POD and not _is_ip_range(dst)}
    actual_ips = [
        (_ip_interval(dst), c) for (src, dst), c in conns.items() if src == WORKLOAD_POD and _is_ip_range(dst)
    ]
    assert actual_pods == expected_pods
    assert _merge([i for i, _ in actual_ips]) == _merge(list(expected_ips))
    for interval, conn in actual_ips:
        assert any(
            lo <= interval[0] and interval[1] <= hi and conn == c for (lo, hi), c in expected_ips.items()
        )

    # Ingress to the workload: open unless quarantined, then only from the allowed namespaces.
    senders = {src for (src, dst), c in conns.items() if dst == WORKLOAD_POD}
    if eff.quarantined:
        allowed_ns = set(eff.quarantine_ingress_namespaces)
        assert senders == {p for p in cluster.pods if p.split("/")[0] in allowed_ns}
    else:
        assert BYSTANDER_POD in senders
        assert "0.0.0.0-255.255.255.255" in senders
        assert conns[(BYSTANDER_POD, WORKLOAD_POD)] == ALL
