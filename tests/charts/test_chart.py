"""The Helm chart: lint, schema, rendering, CRD sync, and real installs on the local control plane."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from tests.charts.helm import (
    CHART,
    ROOT,
    SCENARIOS,
    Manifest,
    container,
    helm,
    of_kind,
    one,
    template,
    template_error,
    unique_release,
)
from tests.conftest import CRDS, Kubectl, install_crds

pytestmark = pytest.mark.integration

SYNC_SCRIPT = ROOT / "hack" / "sync-chart-crds.py"
MONITORING_CRDS = Path(__file__).with_name("monitoring-crds.yaml")
RULES = ROOT / "deploy" / "prometheus" / "aitrust-rules.yaml"


FULLNAME = "ait-aitrust-operator"
ROLE_LABEL = "aitrust.dev/role"


def _args(manifests: list[Manifest]) -> list[str]:
    args: list[str] = container(manifests)["args"]
    return args


# --- lint and schema -------------------------------------------------------------


def test_scenarios_exist() -> None:
    names = {p.name for p in SCENARIOS}
    assert {
        "default-values.yaml",
        "ha-values.yaml",
        "enforce-with-opa-values.yaml",
        "namespaced-values.yaml",
        "minimal-values.yaml",
    } <= names


def test_lint_strict_defaults() -> None:
    proc = helm("lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in proc.stdout


@pytest.mark.parametrize("values", SCENARIOS, ids=lambda p: p.stem)
def test_lint_strict_scenario(values: Path) -> None:
    proc = helm("lint", "--strict", str(CHART), "-f", str(values))
    assert "0 chart(s) failed" in proc.stdout


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("unknownTopLevel=1", "additional properties 'unknownTopLevel' not allowed"),
        ("image.tagg=x", "additional properties 'tagg' not allowed"),
        ("trustPolicy.mode=strict", "value must be one of 'audit', 'enforce'"),
        ("signals.port=70000", "/signals/port"),
        ("image.digest=latest", "/image/digest"),
        ("watchNamespaces[0]=Not_A_Namespace", "/watchNamespaces/0"),
        ("opa.targets[0]=opa.svc:8181", "/opa/targets/0"),
        ("opa.bundle.signingKey.algorithm=HS256", "/opa/bundle/signingKey/algorithm"),
        ("signals.maxBodyBytes=10", "/signals/maxBodyBytes"),
        ("trustPolicy.spec.mode=enforce", "/trustPolicy/spec"),
    ],
)
def test_schema_rejects_bad_values(setting: str, message: str) -> None:
    assert message in template_error(sets=[setting])


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (
            ["signals.auth.create=false"],
            "signals need bearer tokens",
        ),
        (["opa.bundle.enabled=true"], "opa.bundle.enabled needs opa.bundle.signingKey.existingSecret"),
        (["replicas=2", "leaderElection.enabled=false"], "replicas > 1 needs leaderElection.enabled"),
        (
            ["replicas=2", "leaderElection.enabled=false", "peering.enabled=true"],
            "replicas > 1 needs leaderElection.enabled",
        ),
        (["metrics.port=8443"], "port 8443 is used by both"),
        (
            ["signals.tls.enabled=false", "signals.mtls.clientCASecret=ca"],
            "signals.mtls needs signals.tls.enabled",
        ),
    ],
)
def test_render_refuses_unsafe_combinations(sets: list[str], message: str) -> None:
    assert message in template_error(sets=sets)


def test_mtls_alone_is_enough_auth() -> None:
    manifests = template(sets=["signals.auth.create=false", "signals.mtls.clientCASecret=clients"])
    args = _args(manifests)
    assert "--signals-client-ca-file=/etc/aitrust/signals-client-ca/ca.crt" in args
    assert not any(a.startswith("--signals-token-file") for a in args)
    assert not [s for s in of_kind(manifests, "Secret") if s["metadata"]["name"].endswith("-signals-auth")]


# --- CRDs: rendered from the generated files ---------------------------------------


def _generated_crds() -> dict[str, Any]:
    docs = [yaml.safe_load(p.read_text()) for p in sorted(CRDS.glob("aitrust.dev_*.yaml"))]
    return {d["metadata"]["name"]: d for d in docs}


def test_rendered_crds_are_the_generated_crds_plus_keep() -> None:
    rendered = {c["metadata"]["name"]: c for c in of_kind(template(), "CustomResourceDefinition")}
    generated = _generated_crds()
    assert set(rendered) == set(generated)
    for name, crd in rendered.items():
        annotations = crd["metadata"].pop("annotations")
        assert annotations == {"helm.sh/resource-policy": "keep"}
        assert crd == generated[name], f"{name} differs from crds/"


def test_artifacthub_lists_every_generated_crd() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    listed = yaml.safe_load(chart["annotations"]["artifacthub.io/crds"])
    generated = _generated_crds()
    assert {c["name"] for c in listed} == set(generated)
    for entry in listed:
        crd = generated[entry["name"]]
        assert entry["kind"] == crd["spec"]["names"]["kind"]
        assert entry["version"] == crd["spec"]["versions"][0]["name"]


def test_crds_keep_and_enabled_toggles() -> None:
    not_kept = of_kind(template(sets=["crds.keep=false"]), "CustomResourceDefinition")
    assert len(not_kept) == len(_generated_crds())
    assert all("annotations" not in c["metadata"] for c in not_kept)
    assert of_kind(template(sets=["crds.enabled=false"]), "CustomResourceDefinition") == []


def test_peering_crds_only_with_peering() -> None:
    names = {c["metadata"]["name"] for c in of_kind(template(), "CustomResourceDefinition")}
    assert not any(n.endswith(".kopf.dev") for n in names)
    with_peering = template(sets=["peering.enabled=true"])
    names = {c["metadata"]["name"] for c in of_kind(with_peering, "CustomResourceDefinition")}
    assert {"clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"} <= names
    assert one(with_peering, "ClusterKopfPeering")["metadata"]["name"] == "aitrust"
    assert "--peering=aitrust" in _args(with_peering)


def test_chart_copies_match_their_sources() -> None:
    files = CHART / "files"
    for src in sorted(CRDS.glob("aitrust.dev_*.yaml")):
        assert (files / "crds" / src.name).read_bytes() == src.read_bytes(), (
            f"{src.name} drifted: run python hack/sync-chart-crds.py"
        )
    assert (files / "crds" / "kopf-peering.yaml").read_bytes() == (
        CRDS / "kopf" / "peering.yaml"
    ).read_bytes()
    assert (files / "prometheus" / "aitrust-rules.yaml").read_bytes() == RULES.read_bytes()
    copies = {p.name for p in (files / "crds").glob("*.yaml")}
    sources = {p.name for p in CRDS.glob("aitrust.dev_*.yaml")} | {"kopf-peering.yaml"}
    assert copies == sources
    check = subprocess.run([sys.executable, str(SYNC_SCRIPT), "--check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def _sync(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SYNC_SCRIPT), f"--root={root}", *args], capture_output=True, text=True
    )


def test_sync_script_detects_and_repairs_drift(tmp_path: Path) -> None:
    shutil.copytree(CRDS, tmp_path / "crds")
    shutil.copytree(ROOT / "deploy" / "prometheus", tmp_path / "deploy" / "prometheus")
    shutil.copytree(CHART / "files", tmp_path / "charts" / "aitrust-operator" / "files")
    assert _sync(tmp_path, "--check").returncode == 0

    source = tmp_path / "crds" / "aitrust.dev_aiworkloads.yaml"
    source.write_text(source.read_text() + "# changed\n")
    (tmp_path / "charts/aitrust-operator/files/crds/aitrust.dev_stale.yaml").write_text("{}\n")
    (tmp_path / "deploy/prometheus/aitrust-rules.yaml").write_text("groups: []\n")
    check = _sync(tmp_path, "--check")
    assert check.returncode == 1
    assert "aitrust.dev_aiworkloads.yaml differs" in check.stderr
    assert "stale copy" in check.stderr
    assert "aitrust-rules.yaml differs" in check.stderr

    assert _sync(tmp_path).returncode == 0
    assert _sync(tmp_path, "--check").returncode == 0
    copy = tmp_path / "charts/aitrust-operator/files/crds/aitrust.dev_aiworkloads.yaml"
    assert copy.read_text().endswith("# changed\n")
    assert not (tmp_path / "charts/aitrust-operator/files/crds/aitrust.dev_stale.yaml").exists()


# --- Prometheus objects ---------------------------------------------------------------


def test_prometheus_rule_is_the_rules_file() -> None:
    manifests = template(sets=["prometheusRule.enabled=true", "prometheusRule.labels.release=kps"])
    rule = one(manifests, "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kps"
    assert rule["spec"] == {"groups": yaml.safe_load(RULES.read_text())["groups"]}
    assert of_kind(template(), "PrometheusRule") == []


def test_service_monitor_scrapes_metrics_port_with_honor_labels() -> None:
    manifests = template(sets=["serviceMonitor.enabled=true", "serviceMonitor.interval=15s"])
    monitor = one(manifests, "ServiceMonitor")
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "metrics"
    assert endpoint["honorLabels"] is True
    assert endpoint["interval"] == "15s"
    # It selects the metrics Service (every replica), not the signal Service (the leader only).
    selected = [
        s
        for s in of_kind(manifests, "Service")
        if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
    ]
    assert [s["metadata"]["name"] for s in selected] == ["ait-aitrust-operator-metrics"]
    assert [p["name"] for p in selected[0]["spec"]["ports"]] == ["metrics"]
    # No metrics port, no monitor.
    off = template(sets=["serviceMonitor.enabled=true", "metrics.enabled=false"])
    assert of_kind(off, "ServiceMonitor") == []
    assert "--metrics-port=0" in _args(off)


# --- Deployment ----------------------------------------------------------------------


def test_deployment_defaults_are_hardened() -> None:
    manifests = template()
    deploy = one(manifests, "Deployment")
    pod = deploy["spec"]["template"]["spec"]
    op = container(manifests)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = op["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc["runAsUser"] == 65532
    assert op["image"] == "ghcr.io/aitrust/aitrust-operator:0.1.0"
    assert op["command"] == ["aitrust", "run"]
    assert op["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert op["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert {"name": "health", "containerPort": 8081, "protocol": "TCP"} in op["ports"]
    tmp = next(v for v in pod["volumes"] if v["name"] == "tmp")
    assert "emptyDir" in tmp
    assert {"name": "tmp", "mountPath": "/tmp"} in op["volumeMounts"]
    assert pod["serviceAccountName"] == one(manifests, "ServiceAccount")["metadata"]["name"]
    assert pod["automountServiceAccountToken"] is True
    assert deploy["spec"]["replicas"] == 1
    assert "affinity" not in pod
    assert of_kind(manifests, "PodDisruptionBudget") == []


def test_default_args() -> None:
    args = _args(template(namespace="ops"))
    expected = [
        "--health-port=8081",
        "--workers=8",
        "--startup-workers=32",
        "--secrets-namespace=ops",
        "--default-policy-mode=audit",
        "--leader-elect",
        "--leader-election-namespace=ops",
        "--leader-election-lease=ait-aitrust-operator",
        "--metrics-port=9090",
        "--signals-port=8443",
        "--signals-tls-cert-file=/etc/aitrust/signals-tls/tls.crt",
        "--signals-tls-key-file=/etc/aitrust/signals-tls/tls.key",
        "--signals-token-file=/etc/aitrust/signals-auth/tokens",
        "--signals-max-body-bytes=1048576",
        "--signals-rate-limit=2000",
        "--signals-rate-burst=4000",
        "--signals-journal-namespace=ops",
    ]
    assert args == expected


def test_image_digest_pins_the_image() -> None:
    digest = "sha256:" + "ab" * 32
    op = container(template(sets=[f"image.digest={digest}", "image.tag=9.9.9"]))
    assert op["image"] == f"ghcr.io/aitrust/aitrust-operator@{digest}"
    assert container(template(sets=["image.tag=9.9.9"]))["image"].endswith(":9.9.9")


def test_generated_signal_credentials() -> None:
    manifests = template(namespace="ops")
    secrets = {s["metadata"]["name"]: s for s in of_kind(manifests, "Secret")}
    tls = secrets["ait-aitrust-operator-signals-tls"]
    assert tls["type"] == "kubernetes.io/tls"
    cert = base64.b64decode(tls["data"]["tls.crt"]).decode()
    assert cert.startswith("-----BEGIN CERTIFICATE-----")
    parsed = x509.load_pem_x509_certificate(cert.encode())
    sans = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "ait-aitrust-operator.ops.svc" in sans.get_values_for_type(x509.DNSName)
    assert "ait-aitrust-operator.ops.svc.cluster.local" in sans.get_values_for_type(x509.DNSName)
    token = base64.b64decode(secrets["ait-aitrust-operator-signals-auth"]["data"]["tokens"]).decode()
    assert len(token) == 48 and token.isalnum()
    # Existing secrets replace the generated ones.
    external = template(sets=["signals.tls.existingSecret=my-tls", "signals.auth.existingSecret=my-tokens"])
    assert of_kind(external, "Secret") == []
    volumes = {v["name"]: v for v in one(external, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    assert volumes["signals-tls"]["secret"]["secretName"] == "my-tls"
    assert volumes["signals-auth"]["secret"]["secretName"] == "my-tokens"


def test_ha_spreads_replicas_and_budgets_disruptions() -> None:
    manifests = template(values_files=[CHART / "ci" / "ha-values.yaml"])
    deploy = one(manifests, "Deployment")
    assert deploy["spec"]["replicas"] == 2
    anti = deploy["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    term = anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == deploy["spec"]["selector"]["matchLabels"]
    pdb = one(manifests, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"] == deploy["spec"]["selector"]
    # Every replica is Ready (the standby too), so the budget allows one eviction; a rollout
    # surges a new (standby, Ready) Pod before it stops an old one.
    assert deploy["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    assert "--leader-elect" in _args(manifests)
    # An explicit affinity wins over the generated one.
    custom = template(sets=["replicas=3", "affinity.nodeAffinity.x=y"])
    assert one(custom, "Deployment")["spec"]["template"]["spec"]["affinity"] == {"nodeAffinity": {"x": "y"}}


def test_enforce_with_opa_scenario_flags_and_mounts() -> None:
    manifests = template(values_files=[CHART / "ci" / "enforce-with-opa-values.yaml"])
    args = _args(manifests)
    assert "--default-policy-mode=enforce" in args
    assert [a for a in args if a.startswith("--opa-url=")] == [
        "--opa-url=http://opa.ci-opa.svc:8181",
        "--opa-url=http://opa-gateway.ci-opa.svc:8181",
    ]
    for flag in (
        "--opa-token-file=/etc/aitrust/opa-auth/token",
        "--opa-bundle-port=8082",
        "--opa-bundle-signing-key-file=/etc/aitrust/opa-bundle/signing.pem",
        "--opa-bundle-signing-alg=ES256",
        "--opa-bundle-key-id=aitrust-ci",
        "--signals-client-ca-file=/etc/aitrust/signals-client-ca/ca.crt",
        "--signals-token-file=/etc/aitrust/signals-auth/tokens",
    ):
        assert flag in args
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    secrets = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert secrets["opa-bundle"] == "aitrust-bundle-signing"
    assert secrets["opa-auth"] == "aitrust-opa-token"
    assert secrets["signals-client-ca"] == "aitrust-signal-clients"
    assert secrets["signals-auth"] == "aitrust-signal-tokens"
    mounts = {m["name"]: m for m in container(manifests)["volumeMounts"]}
    assert all(mounts[name]["readOnly"] for name in secrets)
    policy = one(manifests, "TrustPolicy")
    assert policy["metadata"] == policy["metadata"] | {"name": "default", "namespace": "ci-ai-serving"}
    assert policy["spec"]["mode"] == "enforce"
    assert policy["spec"]["thresholds"] == {"trusted": 85, "restricted": 55}
    service_ports = {p["name"]: p["port"] for p in one(manifests, "Service", FULLNAME)["spec"]["ports"]}
    assert service_ports == {"signals": 8443, "opa-bundle": 8082}
    metrics = one(manifests, "Service", f"{FULLNAME}-metrics")["spec"]["ports"]
    assert [(p["name"], p["port"]) for p in metrics] == [("metrics", 9090)]


def test_trust_policies_wait_for_their_api() -> None:
    sets = ["trustPolicy.namespaces={team-a,team-b}"]
    # CRDs in this release and not served yet: Helm could not map the kind, so nothing is rendered.
    assert of_kind(template(sets=sets, installed_apis=()), "TrustPolicy") == []
    served = of_kind(template(sets=sets), "TrustPolicy")
    assert [(p["metadata"]["namespace"], p["spec"]) for p in served] == [
        ("team-a", {"mode": "audit"}),
        ("team-b", {"mode": "audit"}),
    ]
    # CRDs managed elsewhere: render them, the install fails loudly if the API is missing.
    unmanaged = of_kind(template(sets=[*sets, "crds.enabled=false"], installed_apis=()), "TrustPolicy")
    assert len(unmanaged) == 2
    assert of_kind(template(sets=[*sets, "trustPolicy.create=false"]), "TrustPolicy") == []


def test_minimal_scenario() -> None:
    manifests = template(values_files=[CHART / "ci" / "minimal-values.yaml"])
    assert of_kind(manifests, "NetworkPolicy") == []
    args = _args(manifests)
    assert "--metrics-port=0" in args
    assert "--workers=2" in args
    assert not any(a.startswith("--signals-tls") for a in args)
    ports = one(manifests, "Service", FULLNAME)["spec"]["ports"]
    assert [(p["name"], p["appProtocol"]) for p in ports] == [("signals", "http")]
    assert [s["metadata"]["name"] for s in of_kind(manifests, "Service")] == [FULLNAME]
    assert [s["metadata"]["name"] for s in of_kind(manifests, "Secret")] == [
        "ait-aitrust-operator-signals-auth"
    ]


def test_no_service_without_ports() -> None:
    manifests = template(sets=["signals.enabled=false", "metrics.enabled=false"])
    assert of_kind(manifests, "Service") == []
    metrics_only = template(sets=["signals.enabled=false"])
    assert [s["metadata"]["name"] for s in of_kind(metrics_only, "Service")] == [f"{FULLNAME}-metrics"]
    assert of_kind(manifests, "Secret") == []
    args = _args(manifests)
    assert "--signals-port=0" in args and "--metrics-port=0" in args


# --- NetworkPolicy ---------------------------------------------------------------------


def _rule_ports(rule: dict[str, Any]) -> set[Any]:
    return {p["port"] for p in rule.get("ports", [])}


def test_networkpolicy_defaults() -> None:
    manifests = template()
    policy = one(manifests, "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["podSelector"] == one(manifests, "Deployment")["spec"]["selector"]
    # Only Prometheus may connect by default; no signal sender is admitted until configured.
    assert [_rule_ports(r) for r in policy["ingress"]] == [{"metrics"}]
    (source,) = policy["ingress"][0]["from"]
    assert source["namespaceSelector"]["matchExpressions"][0]["values"] == ["monitoring"]
    egress = [_rule_ports(r) for r in policy["egress"]]
    assert egress == [{53}, {443, 6443}]
    assert policy["egress"][0]["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}


def test_networkpolicy_admits_falcosidekick_and_opa() -> None:
    manifests = template(values_files=[CHART / "ci" / "enforce-with-opa-values.yaml"])
    policy = one(manifests, "NetworkPolicy")["spec"]
    by_port = {frozenset(_rule_ports(r)): r for r in policy["ingress"]}
    assert set(by_port) == {frozenset({"signals"}), frozenset({"metrics"}), frozenset({"opa-bundle"})}
    signal_from = by_port[frozenset({"signals"})]["from"]
    assert signal_from[0]["namespaceSelector"]["matchExpressions"][0]["values"] == ["ci-falco"]
    assert by_port[frozenset({"opa-bundle"})]["from"][0]["namespaceSelector"]["matchExpressions"][0][
        "values"
    ] == ["ci-opa"]
    opa_egress = [r for r in policy["egress"] if _rule_ports(r) == {8181}]
    assert opa_egress[0]["to"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ci-opa"}}}
    ]

    falco = one(template(sets=["falcosidekick.enabled=true"]), "NetworkPolicy")["spec"]
    signals = next(r for r in falco["ingress"] if _rule_ports(r) == {"signals"})
    assert signals["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "falco"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "falcosidekick"}},
        }
    ]
    # No OPA targets: no OPA egress.
    assert not [r for r in falco["egress"] if _rule_ports(r) == {8181}]


@pytest.mark.parametrize("values", SCENARIOS, ids=lambda p: p.stem)
def test_named_ports_resolve(values: Path) -> None:
    manifests = template(values_files=[values])
    container_ports = {p["name"] for p in container(manifests)["ports"]}
    for service in of_kind(manifests, "Service"):
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in container_ports
    for policy in of_kind(manifests, "NetworkPolicy"):
        for rule in policy["spec"].get("ingress") or []:
            for port in _rule_ports(rule):
                assert isinstance(port, int) or port in container_ports
    for mount in container(manifests)["volumeMounts"]:
        volumes = one(manifests, "Deployment")["spec"]["template"]["spec"]["volumes"]
        assert mount["name"] in {v["name"] for v in volumes}


def test_namespaced_scenario_binds_per_namespace() -> None:
    manifests = template(values_files=[CHART / "ci" / "namespaced-values.yaml"])
    args = _args(manifests)
    assert [a for a in args if a.startswith("--namespace=")] == [
        "--namespace=ci-team-a",
        "--namespace=ci-team-b",
    ]
    assert "--secrets-namespace=ci-team-a" in args
    assert "--peering=aitrust-ci" in args
    crbs = {b["roleRef"]["name"] for b in of_kind(manifests, "ClusterRoleBinding")}
    assert crbs == {"ait-aitrust-operator-cluster"}
    per_namespace = [
        b["metadata"]["namespace"]
        for b in of_kind(manifests, "RoleBinding")
        if b["roleRef"]
        == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ait-aitrust-operator"}
    ]
    assert per_namespace == ["ci-team-a", "ci-team-b"]
    secrets_role = one(manifests, "Role", "ait-aitrust-operator-secrets")
    assert secrets_role["metadata"]["namespace"] == "ci-team-a"
    peerings = of_kind(manifests, "KopfPeering")
    assert [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in peerings] == [
        ("ci-team-a", "aitrust-ci"),
        ("ci-team-b", "aitrust-ci"),
    ]
    assert of_kind(manifests, "ClusterKopfPeering") == []
    assert {p["metadata"]["namespace"] for p in of_kind(manifests, "TrustPolicy")} == {
        "ci-team-a",
        "ci-team-b",
    }


# --- against the real API server ----------------------------------------------------------


@pytest.fixture(scope="module")
def monitoring_crds(kubectl: Kubectl) -> Iterator[None]:
    """prometheus-operator stand-in CRDs (see monitoring-crds.yaml), removed afterwards."""
    kubectl.run("apply", "--server-side", "--field-manager=aitrust-chart-tests", "-f", str(MONITORING_CRDS))
    kubectl.run(
        "wait", "--for=condition=Established", "--timeout=60s", "crd", "-l", "aitrust.dev/test-fixture=chart"
    )
    yield
    kubectl.run("delete", "-f", str(MONITORING_CRDS), "--wait=false", check=False)


@pytest.fixture(scope="module")
def scenario_namespaces(kubectl: Kubectl) -> Iterator[None]:
    """The fixed namespaces the ci scenarios place objects in."""
    wanted: set[str] = set()
    for values in SCENARIOS:
        for manifest in template(values_files=[values]):
            namespace = manifest["metadata"].get("namespace")
            if namespace and namespace.startswith("ci-"):
                wanted.add(namespace)
    created = [
        ns for ns in sorted(wanted) if kubectl.run("create", "namespace", ns, check=False).returncode == 0
    ]
    yield
    for ns in created:
        kubectl.run("delete", "namespace", ns, "--wait=false", check=False)


def _rendered_text(values: Path, namespace: str, release: str) -> str:
    return helm(
        "template",
        release,
        str(CHART),
        f"--namespace={namespace}",
        "--api-versions=aitrust.dev/v1alpha1/TrustPolicy",
        "--api-versions=kopf.dev/v1/KopfPeering",
        "--api-versions=kopf.dev/v1/ClusterKopfPeering",
        "-f",
        str(values),
    ).stdout


@pytest.mark.parametrize("values", SCENARIOS, ids=lambda p: p.stem)
def test_manifests_pass_strict_server_validation(
    values: Path,
    kubectl: Kubectl,
    namespace: str,
    monitoring_crds: None,
    scenario_namespaces: None,
) -> None:
    rendered = _rendered_text(values, namespace, unique_release("dry"))
    kinds = {d["kind"] for d in yaml.safe_load_all(rendered) if d}
    proc = kubectl.run(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=aitrust-chart-dry-run",
        "--dry-run=server",
        "--validate=strict",
        "-f",
        "-",
        input=rendered,
    )
    applied = [line for line in proc.stdout.splitlines() if "(server dry run)" in line]
    assert len(applied) == sum(1 for d in yaml.safe_load_all(rendered) if d), proc.stdout
    assert {"Deployment", "ClusterRole", "ServiceAccount"} <= kinds


def test_strict_validation_catches_a_bad_manifest(kubectl: Kubectl, namespace: str) -> None:
    # The same command must reject an unknown field, or the test above proves nothing.
    rendered = _rendered_text(CHART / "ci" / "default-values.yaml", namespace, unique_release("dry"))
    broken = rendered.replace("enableServiceLinks: false", "enableServiceLinks: false\n      notAField: 1")
    assert broken != rendered
    proc = kubectl.run(
        "apply",
        "--server-side",
        "--dry-run=server",
        "--validate=strict",
        "-f",
        "-",
        input=broken,
        check=False,
    )
    assert proc.returncode != 0
    assert "notAField" in proc.stderr


def test_helm_install_upgrade_uninstall(kubectl: Kubectl, namespace: str, control_plane: Any) -> None:
    release = unique_release("inst")
    kubeconfig = control_plane.kubeconfig
    fullname = f"{release}-aitrust-operator"
    sets = ["--set", "crds.enabled=false", "--set", f"trustPolicy.namespaces={{{namespace}}}"]
    try:
        helm("install", release, str(CHART), f"--namespace={namespace}", *sets, kubeconfig=kubeconfig)
        deploy = kubectl.json("get", "deployment", fullname, "-n", namespace)
        assert deploy["spec"]["template"]["spec"]["serviceAccountName"] == fullname
        kubectl.run("get", "serviceaccount", fullname, "-n", namespace)
        kubectl.run("get", "service", fullname, "-n", namespace)
        kubectl.run("get", "service", f"{fullname}-metrics", "-n", namespace)
        kubectl.run("get", "networkpolicy", fullname, "-n", namespace)
        kubectl.run(
            "get",
            "role,rolebinding",
            f"{fullname}-secrets",
            f"{fullname}-leader-election",
            f"{fullname}-signal-journal",
            "-n",
            namespace,
        )
        for name in (fullname, f"{fullname}-cluster"):
            kubectl.run("get", "clusterrole", name)
            kubectl.run("get", "clusterrolebinding", name)
        policy = kubectl.json("get", "trustpolicy", "default", "-n", namespace)
        assert policy["spec"]["mode"] == "audit"
        secret = f"{fullname}-signals-auth"
        token = kubectl.json("get", "secret", secret, "-n", namespace)["data"]["tokens"]
        cert = kubectl.json("get", "secret", f"{fullname}-signals-tls", "-n", namespace)["data"]["tls.crt"]

        # Upgrade: generated credentials survive (lookup), changed values apply.
        helm(
            "upgrade",
            release,
            str(CHART),
            f"--namespace={namespace}",
            *sets,
            "--set",
            "trustPolicy.mode=enforce",
            kubeconfig=kubeconfig,
        )
        assert kubectl.json("get", "secret", secret, "-n", namespace)["data"]["tokens"] == token
        tls = kubectl.json("get", "secret", f"{fullname}-signals-tls", "-n", namespace)["data"]["tls.crt"]
        assert tls == cert
        assert kubectl.json("get", "trustpolicy", "default", "-n", namespace)["spec"]["mode"] == "enforce"
        args = kubectl.json("get", "deployment", fullname, "-n", namespace)["spec"]["template"]["spec"][
            "containers"
        ][0]["args"]
        assert "--default-policy-mode=enforce" in args
    finally:
        helm("uninstall", release, f"--namespace={namespace}", kubeconfig=kubeconfig, check=False)
    for name in (fullname, f"{fullname}-cluster"):
        assert kubectl.run("get", "clusterrole", name, check=False).returncode != 0


def test_helm_owns_crds_and_keeps_them(kubectl: Kubectl, namespace: str, control_plane: Any) -> None:
    """crds.enabled adopts and upgrades the CRDs; crds.keep leaves them (and the CRs) on uninstall."""
    release = unique_release("crds")
    kubeconfig = control_plane.kubeconfig
    kubectl.run("apply", "-f", str(CRDS / "samples" / "trustpolicy-default.yaml"), "-n", namespace)
    try:
        helm(
            "install",
            release,
            str(CHART),
            f"--namespace={namespace}",
            "--take-ownership",
            "--set",
            "trustPolicy.create=false",
            kubeconfig=kubeconfig,
        )
        crd = kubectl.json("get", "crd", "aiworkloads.aitrust.dev")
        annotations = crd["metadata"]["annotations"]
        assert annotations["meta.helm.sh/release-name"] == release
        assert annotations["helm.sh/resource-policy"] == "keep"
        helm("uninstall", release, f"--namespace={namespace}", kubeconfig=kubeconfig)
        for name in _generated_crds():
            kubectl.run("get", "crd", name)
        kubectl.run("get", "trustpolicy", "default", "-n", namespace)
    finally:
        helm("uninstall", release, f"--namespace={namespace}", kubeconfig=kubeconfig, check=False)
        # Whatever happened, leave the session's CRDs as the fixture installed them.
        install_crds(kubectl)


# --- documentation -----------------------------------------------------------------------


def _value_paths(values: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, bool]]:
    """(dotted path, is a leaf) for every key of values.yaml."""
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else key
        nested = isinstance(value, dict) and bool(value)
        yield path, not nested
        if nested:
            yield from _value_paths(value, path)


def test_readme_documents_every_value() -> None:
    readme = (CHART / "README.md").read_text()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    section = readme.split("\n## Values\n", 1)[1]
    table = {line.split("`")[1] for line in section.splitlines() if line.startswith("| `")}
    paths = dict(_value_paths(values))
    for path in (p for p, leaf in paths.items() if leaf):
        # A leaf is documented itself or through a documented parent (e.g. `resources`).
        parts = path.split(".")
        assert any(".".join(parts[:i]) in table for i in range(len(parts), 0, -1)), path
    assert table <= set(paths), table - set(paths)


def test_schema_covers_every_value() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def walk(node: dict[str, Any], value: Any, path: str) -> None:
        if "$ref" in node:
            node = schema["definitions"][node["$ref"].split("/")[-1]]
        if isinstance(value, dict) and node.get("additionalProperties") is False:
            assert set(value) <= set(node["properties"]), path
            for key, item in value.items():
                walk(node["properties"][key], item, f"{path}.{key}")

    assert schema["additionalProperties"] is False
    walk(schema, values, "")
    assert set(values) <= set(schema["properties"])


def test_install_notes_show_signal_settings() -> None:
    proc = helm(
        "install",
        "notes",
        str(CHART),
        "--dry-run=client",
        "--namespace=ops",
        "--set",
        "falcosidekick.enabled=true",
    )
    notes = proc.stdout.split("NOTES:", 1)[1]
    assert "https://notes-aitrust-operator.ops.svc:8443/v1/signals/falco" in notes
    assert "get secret notes-aitrust-operator-signals-auth" in notes
    assert "Policy mode of the built-in policy: audit" in notes


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.stem for s in SCENARIOS])
def test_rendered_args_are_accepted_by_the_operator(scenario: Path) -> None:
    """The chart and `aitrust run` agree on every flag: no drift between the two."""
    from aitrust.cli import build_parser
    from aitrust.controller.options import OperatorOptions

    args = build_parser().parse_args(["run", *_args(template(values_files=[scenario]))])
    options = OperatorOptions.from_args(args)
    assert options.health_port == 8081


# --- high availability: the signal Service reaches the leader only --------------------------


def test_signal_service_selects_the_leader_and_metrics_every_replica() -> None:
    manifests = template(values_files=[CHART / "ci" / "enforce-with-opa-values.yaml"], sets=["replicas=2"])
    pod_labels = one(manifests, "Deployment")["spec"]["template"]["metadata"]["labels"]
    selector = one(manifests, "Deployment")["spec"]["selector"]["matchLabels"]
    signals = one(manifests, "Service", FULLNAME)["spec"]
    assert {p["name"] for p in signals["ports"]} == {"signals", "opa-bundle"}
    assert signals["selector"] == {**selector, ROLE_LABEL: "leader"}
    # The role label is the operator's to set at run time, never the chart's.
    assert ROLE_LABEL not in pod_labels
    metrics = one(manifests, "Service", f"{FULLNAME}-metrics")["spec"]
    assert metrics["selector"] == selector
    assert ROLE_LABEL not in metrics["selector"]
    # Without leader election there is one active replica and no role label.
    single = one(template(sets=["leaderElection.enabled=false"]), "Service", FULLNAME)["spec"]
    assert single["selector"] == selector


def test_pdb_must_allow_an_eviction() -> None:
    error = template_error(sets=["replicas=2", "pdb.minAvailable=2"])
    assert "pdb.minAvailable (2) must be below replicas (2)" in error
    # So does a percentage that leaves no replica to evict; a lower one is the user's call.
    error = template_error(sets=["replicas=2", "pdb.minAvailable=100%"])
    assert "pdb.minAvailable (100%) must be below 100%" in error
    assert one(template(sets=["replicas=3", "pdb.minAvailable=50%"]), "PodDisruptionBudget")
    # A single replica has no budget at all.
    assert of_kind(template(sets=["pdb.minAvailable=1"]), "PodDisruptionBudget") == []


def test_recreate_strategy_renders_without_rolling_update_settings() -> None:
    # The API server rejects rollingUpdate next to type Recreate; the defaults carry one.
    deploy = one(template(sets=["strategy.type=Recreate"]), "Deployment")
    assert deploy["spec"]["strategy"] == {"type": "Recreate"}
    rolling = one(template(), "Deployment")["spec"]["strategy"]
    assert rolling["type"] == "RollingUpdate" and rolling["rollingUpdate"]["maxUnavailable"] == 0
