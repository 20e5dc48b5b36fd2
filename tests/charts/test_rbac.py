"""Least privilege: the chart's RBAC, read statically and asked of the real authorizer."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aitrust.testing.processes import wait_for
from tests.charts.helm import (
    CHART,
    SCENARIOS,
    container,
    helm,
    of_kind,
    one,
    template,
    unique_release,
    walk_strings,
)
from tests.conftest import Kubectl

pytestmark = pytest.mark.integration

RULE_KEYS = ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs")


def _rules(manifests: list[dict[str, Any]], kind: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (m["metadata"]["name"], m["metadata"].get("namespace", ""), r)
        for m in of_kind(manifests, kind)
        for r in m["rules"]
    ]


def _grants(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) triples."""
    return {(g, res, v) for r in rules for g in r["apiGroups"] for res in r["resources"] for v in r["verbs"]}


@pytest.mark.parametrize("values", SCENARIOS, ids=lambda p: p.stem)
def test_no_wildcards_anywhere(values: Path) -> None:
    manifests = template(values_files=[values], sets=["peering.enabled=true"])
    for kind in ("ClusterRole", "Role"):
        for name, _, rule in _rules(manifests, kind):
            for key in RULE_KEYS:
                assert "*" not in "".join(walk_strings(rule.get(key, []))), f"{kind} {name}: {rule}"
            assert "nonResourceURLs" not in rule
    for binding in of_kind(manifests, "ClusterRoleBinding") + of_kind(manifests, "RoleBinding"):
        assert binding["roleRef"]["name"].startswith("ait-aitrust-operator")
        assert [s["kind"] for s in binding["subjects"]] == ["ServiceAccount"]


@pytest.mark.parametrize("values", SCENARIOS, ids=lambda p: p.stem)
def test_secrets_only_through_a_namespaced_read_only_role(values: Path) -> None:
    manifests = template(values_files=[values])
    for _, _, rule in _rules(manifests, "ClusterRole"):
        assert "secrets" not in rule["resources"]
    secret_rules = [(name, ns, r) for name, ns, r in _rules(manifests, "Role") if "secrets" in r["resources"]]
    assert len(secret_rules) == 1
    _, _, rule = secret_rules[0]
    assert rule["verbs"] == ["get", "list", "watch"] and rule["apiGroups"] == [""]


def test_cluster_roles_grant_exactly_what_the_operator_needs() -> None:
    manifests = template()
    namespaced = _grants(one(manifests, "ClusterRole", "ait-aitrust-operator")["rules"])
    read = ("get", "list", "watch")
    expected = {("", res, v) for res in ("pods", "services", "serviceaccounts") for v in read}
    kinds = ("aiworkloads", "modelendpoints", "datasources", "trustpolicies")
    expected |= {("aitrust.dev", k, v) for k in kinds for v in read}
    # Only the verbs the operator's calls use: status is merge-patched, policies are PUT
    # (update), reports are read and PUT, events and leases are created and PUT.
    expected |= {("aitrust.dev", f"{k}/status", "patch") for k in kinds}
    # ShadowAIReports (no PolicyReport CRD): listed, created, status merge-patched, deleted.
    expected |= {("aitrust.dev", "shadowaireports", v) for v in ("list", "create", "delete")}
    expected |= {("aitrust.dev", "shadowaireports/status", "patch")}
    expected |= {("networking.k8s.io", "networkpolicies", v) for v in (*read, "create", "update", "delete")}
    expected |= {("wgpolicyk8s.io", "policyreports", v) for v in ("get", "create", "update")}
    expected |= {(g, "events", "create") for g in ("", "events.k8s.io")}
    assert namespaced == expected
    cluster = _grants(one(manifests, "ClusterRole", "ait-aitrust-operator-cluster")["rules"])
    assert cluster == {("", "namespaces", v) for v in read} | {
        ("apiextensions.k8s.io", "customresourcedefinitions", v) for v in read
    }
    leases = _grants(one(manifests, "Role", "ait-aitrust-operator-leader-election")["rules"])
    # Leases, and each instance's own Pod: merge-patched with its role label (never read back).
    assert leases == {("coordination.k8s.io", "leases", v) for v in ("get", "create", "update")} | {
        ("", "pods", "patch")
    }
    assert one(manifests, "Role", "ait-aitrust-operator-leader-election")["metadata"]["namespace"] == (
        "aitrust-system"
    )
    journal = _grants(one(manifests, "Role", "ait-aitrust-operator-signal-journal")["rules"])
    assert journal == {("", "configmaps", v) for v in ("list", "create", "delete")}
    assert of_kind(template(sets=["leaderElection.enabled=false", "signals.enabled=false"]), "Role") == [
        one(manifests, "Role", "ait-aitrust-operator-secrets")
    ]


def test_peering_adds_only_peering_reads_and_patch() -> None:
    base = template()
    peering = template(sets=["peering.enabled=true"])
    added = set()
    for name in ("ait-aitrust-operator", "ait-aitrust-operator-cluster"):
        added |= _grants(one(peering, "ClusterRole", name)["rules"]) - _grants(
            one(base, "ClusterRole", name)["rules"]
        )
    verbs = ("get", "list", "watch", "patch")
    assert added == {("kopf.dev", r, v) for r in ("kopfpeerings", "clusterkopfpeerings") for v in verbs}


# --- the real authorizer ----------------------------------------------------------------


@dataclass
class Installed:
    namespace: str
    other: str
    service_account: str


def can(
    kubectl: Kubectl, who: Installed, verb: str, resource: str, *scope: str, subresource: str = ""
) -> bool:
    args = ["auth", "can-i", verb, resource, f"--as={who.service_account}", *scope]
    if subresource:
        args.append(f"--subresource={subresource}")
    proc = kubectl.run(*args, check=False)
    answer = proc.stdout.strip().splitlines()[0] if proc.stdout.strip() else ""
    assert answer in ("yes", "no"), f"kubectl {' '.join(args)}: {proc.stdout}{proc.stderr}"
    return answer == "yes"


def _namespace(kubectl: Kubectl, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    kubectl.run("create", "namespace", name)
    return name


def _install(kubectl: Kubectl, kubeconfig: Path, *sets: str) -> Iterator[Installed]:
    namespace = _namespace(kubectl, "rbac")
    other = _namespace(kubectl, "other")
    release = unique_release("rbac")
    set_args = [a for s in ("crds.enabled=false", *sets) for a in ("--set", s.replace("@OTHER@", other))]
    helm("install", release, str(CHART), f"--namespace={namespace}", *set_args, kubeconfig=kubeconfig)
    sa = f"system:serviceaccount:{namespace}:{release}-aitrust-operator"
    who = Installed(namespace, other, sa)
    # RBAC is cached by the authorizer; wait until the bindings are visible.
    wait_for("RBAC bindings", lambda: can(kubectl, who, "get", "secrets", "-n", namespace), 30)
    try:
        yield who
    finally:
        helm("uninstall", release, f"--namespace={namespace}", kubeconfig=kubeconfig, check=False)
        for ns in (namespace, other):
            kubectl.run("delete", "namespace", ns, "--wait=false", check=False)


@pytest.fixture(scope="module")
def clusterwide(kubectl: Kubectl, control_plane: Any) -> Iterator[Installed]:
    yield from _install(kubectl, control_plane.kubeconfig)


@pytest.fixture(scope="module")
def namespaced(kubectl: Kubectl, control_plane: Any) -> Iterator[Installed]:
    yield from _install(kubectl, control_plane.kubeconfig, "watchNamespaces={@OTHER@}")


ALLOWED = [
    ("list", "pods", ("--all-namespaces",), ""),
    ("watch", "pods", ("--all-namespaces",), ""),
    ("list", "services", ("--all-namespaces",), ""),
    ("list", "serviceaccounts", ("--all-namespaces",), ""),
    ("watch", "namespaces", (), ""),
    ("list", "aiworkloads.aitrust.dev", ("--all-namespaces",), ""),
    ("watch", "trustpolicies.aitrust.dev", ("--all-namespaces",), ""),
    ("patch", "aiworkloads.aitrust.dev", ("-n", "@OTHER@"), "status"),
    ("patch", "modelendpoints.aitrust.dev", ("-n", "@OTHER@"), "status"),
    ("list", "shadowaireports.aitrust.dev", ("--all-namespaces",), ""),
    ("create", "shadowaireports.aitrust.dev", ("-n", "@OTHER@"), ""),
    ("delete", "shadowaireports.aitrust.dev", ("-n", "@OTHER@"), ""),
    ("patch", "shadowaireports.aitrust.dev", ("-n", "@OTHER@"), "status"),
    ("create", "networkpolicies.networking.k8s.io", ("-n", "@OTHER@"), ""),
    ("delete", "networkpolicies.networking.k8s.io", ("-n", "@OTHER@"), ""),
    ("create", "events", ("-n", "@OTHER@"), ""),
    ("create", "events.events.k8s.io", ("-n", "@OTHER@"), ""),
    ("list", "customresourcedefinitions.apiextensions.k8s.io", (), ""),
    ("get", "secrets", ("-n", "@OWN@"), ""),
    ("watch", "secrets", ("-n", "@OWN@"), ""),
    ("create", "leases.coordination.k8s.io", ("-n", "@OWN@"), ""),
    ("update", "leases.coordination.k8s.io", ("-n", "@OWN@"), ""),
    ("get", "pods", ("-n", "@OWN@"), ""),
    ("patch", "pods", ("-n", "@OWN@"), ""),
    ("create", "configmaps", ("-n", "@OWN@"), ""),
    ("delete", "configmaps", ("-n", "@OWN@"), ""),
]

DENIED = [
    ("get", "secrets", ("-n", "@OTHER@"), ""),
    ("list", "secrets", ("--all-namespaces",), ""),
    ("create", "secrets", ("-n", "@OWN@"), ""),
    ("delete", "pods", ("-n", "@OTHER@"), ""),
    ("patch", "pods", ("-n", "@OTHER@"), ""),
    ("patch", "pods", ("-n", "default"), ""),
    ("patch", "pods", ("-n", "@OWN@"), "status"),
    ("update", "pods", ("-n", "@OWN@"), ""),
    ("delete", "pods", ("-n", "@OWN@"), ""),
    ("create", "pods", ("-n", "@OWN@"), ""),
    ("create", "pods", ("-n", "@OTHER@"), "exec"),
    ("patch", "aiworkloads.aitrust.dev", ("-n", "@OTHER@"), ""),
    ("update", "aiworkloads.aitrust.dev", ("-n", "@OTHER@"), ""),
    ("delete", "aiworkloads.aitrust.dev", ("-n", "@OTHER@"), ""),
    ("create", "trustpolicies.aitrust.dev", ("-n", "@OTHER@"), ""),
    # Its own reports: status is the only part it writes; the object is never replaced.
    ("patch", "shadowaireports.aitrust.dev", ("-n", "@OTHER@"), ""),
    ("update", "shadowaireports.aitrust.dev", ("-n", "@OTHER@"), ""),
    ("update", "shadowaireports.aitrust.dev", ("-n", "@OTHER@"), "status"),
    ("watch", "shadowaireports.aitrust.dev", ("--all-namespaces",), ""),
    ("create", "clusterroles.rbac.authorization.k8s.io", (), ""),
    ("create", "rolebindings.rbac.authorization.k8s.io", ("-n", "@OWN@"), ""),
    ("escalate", "clusterroles.rbac.authorization.k8s.io", (), ""),
    ("impersonate", "serviceaccounts", ("-n", "@OTHER@"), ""),
    ("create", "serviceaccounts", ("-n", "@OTHER@"), "token"),
    ("get", "configmaps", ("-n", "@OTHER@"), ""),
    ("create", "configmaps", ("-n", "@OTHER@"), ""),
    ("update", "configmaps", ("-n", "@OWN@"), ""),
    ("create", "leases.coordination.k8s.io", ("-n", "@OTHER@"), ""),
    ("patch", "customresourcedefinitions.apiextensions.k8s.io", (), ""),
    ("delete", "namespaces", (), ""),
    ("create", "deployments.apps", ("-n", "@OWN@"), ""),
]


def _scope(scope: tuple[str, ...], who: Installed) -> list[str]:
    return [s.replace("@OTHER@", who.other).replace("@OWN@", who.namespace) for s in scope]


@pytest.mark.parametrize(("verb", "resource", "scope", "sub"), ALLOWED)
def test_service_account_can(
    kubectl: Kubectl, clusterwide: Installed, verb: str, resource: str, scope: tuple[str, ...], sub: str
) -> None:
    assert can(kubectl, clusterwide, verb, resource, *_scope(scope, clusterwide), subresource=sub)


@pytest.mark.parametrize(("verb", "resource", "scope", "sub"), DENIED)
def test_service_account_cannot(
    kubectl: Kubectl, clusterwide: Installed, verb: str, resource: str, scope: tuple[str, ...], sub: str
) -> None:
    assert not can(kubectl, clusterwide, verb, resource, *_scope(scope, clusterwide), subresource=sub)


def review(kubectl: Kubectl, who: Installed, verb: str, group: str, resource: str, namespace: str) -> bool:
    """A SubjectAccessReview, for APIs the cluster does not serve (kubectl can-i cannot resolve them)."""
    ns_of_sa = who.service_account.split(":")[2]
    sar = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": who.service_account,
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{ns_of_sa}",
                "system:authenticated",
            ],
            "resourceAttributes": {
                "verb": verb,
                "group": group,
                "resource": resource,
                "namespace": namespace,
            },
        },
    }
    result = kubectl.run("create", "-f", "-", "-o", "json", input=json.dumps(sar))
    allowed: bool = json.loads(result.stdout)["status"].get("allowed", False)
    return allowed


@pytest.mark.parametrize("verb", ["get", "list", "watch", "create", "patch", "update", "delete"])
def test_service_account_writes_policy_reports(kubectl: Kubectl, clusterwide: Installed, verb: str) -> None:
    used = verb in ("get", "create", "update")  # read, then create or replace
    assert review(kubectl, clusterwide, verb, "wgpolicyk8s.io", "policyreports", clusterwide.other) is used
    assert not review(kubectl, clusterwide, verb, "wgpolicyk8s.io", "clusterpolicyreports", "")


def test_namespaced_install_is_confined(kubectl: Kubectl, namespaced: Installed) -> None:
    who = namespaced
    assert can(kubectl, who, "list", "pods", "-n", who.other)
    assert can(kubectl, who, "patch", "aiworkloads.aitrust.dev", "-n", who.other, subresource="status")
    assert can(kubectl, who, "list", "shadowaireports.aitrust.dev", "-n", who.other)
    assert can(kubectl, who, "create", "networkpolicies.networking.k8s.io", "-n", who.other)
    assert can(kubectl, who, "list", "namespaces")
    assert can(kubectl, who, "get", "secrets", "-n", who.namespace)
    # Outside the watched namespace: nothing namespaced, and no cluster-wide listing.
    assert not can(kubectl, who, "list", "pods", "--all-namespaces")
    assert not can(kubectl, who, "list", "shadowaireports.aitrust.dev", "--all-namespaces")
    assert not can(kubectl, who, "create", "shadowaireports.aitrust.dev", "-n", "default")
    assert not can(kubectl, who, "list", "pods", "-n", "default")
    assert not can(kubectl, who, "create", "networkpolicies.networking.k8s.io", "-n", "default")
    assert not can(kubectl, who, "get", "secrets", "-n", who.other)


def test_shadow_adopt_adds_only_create_on_aiworkloads_and_trustpolicies() -> None:
    base = template()
    adopt = template(sets=["shadowAI.adopt=true"])
    added = set()
    for name in ("ait-aitrust-operator", "ait-aitrust-operator-cluster"):
        added |= _grants(one(adopt, "ClusterRole", name)["rules"]) - _grants(
            one(base, "ClusterRole", name)["rules"]
        )
    assert added == {("aitrust.dev", "aiworkloads", "create"), ("aitrust.dev", "trustpolicies", "create")}
    assert "--shadow-adopt" in container(adopt)["args"]
    assert "--shadow-adopt" not in container(base)["args"]
