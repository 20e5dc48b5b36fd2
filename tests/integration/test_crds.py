"""The CRDs install, their samples apply, and invalid objects are rejected by the real API server."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CRDS, Kubectl

SAMPLES = sorted((CRDS / "samples").glob("*.yaml"))


def test_crds_are_established(kubectl: Kubectl) -> None:
    crds = kubectl.json("get", "crd", "-l", "app.kubernetes.io/part-of=aitrust")
    names = {c["metadata"]["name"] for c in crds["items"]}
    assert names == {
        "aiworkloads.aitrust.dev",
        "modelendpoints.aitrust.dev",
        "datasources.aitrust.dev",
        "trustpolicies.aitrust.dev",
        "shadowaireports.aitrust.dev",
    }
    for crd in crds["items"]:
        established = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert established["Established"] == "True"
        assert established.get("NonStructuralSchema") is None


def test_kubectl_explain_shows_descriptions(kubectl: Kubectl) -> None:
    out = kubectl.run("explain", "aiw.spec.access").stdout
    assert "ModelEndpoints this workload may call." in out
    assert "DataSources this workload may read or write." in out


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.stem for s in SAMPLES])
def test_sample_applies(kubectl: Kubectl, namespace: str, sample: Path) -> None:
    kubectl.run("apply", "-n", namespace, "-f", str(sample))
    doc = kubectl.json("get", "-n", namespace, "-f", str(sample))
    assert doc["metadata"]["namespace"] == namespace


def _custom(kind: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def build(spec: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": "aitrust.dev/v1alpha1", "kind": kind, "metadata": {"name": "bad"}, "spec": spec}

    return build


_aiw, _mep, _ds, _tp = (_custom(k) for k in ("AIWorkload", "ModelEndpoint", "DataSource", "TrustPolicy"))


SELECTOR = {"matchLabels": {"app": "x"}}
INVALID: list[tuple[str, dict[str, Any], str]] = [
    (
        "unknown-workload-kind",
        _aiw({"kind": "chatbot", "selector": SELECTOR}),
        'Unsupported value: "chatbot"',
    ),
    ("empty-selector", _aiw({"kind": "agent", "selector": {}}), "selector must not be empty"),
    (
        "selector-values-for-exists",
        _aiw(
            {
                "kind": "agent",
                "selector": {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
            }
        ),
        "values must be non-empty for In and NotIn, and empty for Exists",
    ),
    (
        "bad-model-digest",
        _aiw(
            {
                "kind": "inference",
                "selector": SELECTOR,
                "models": [{"name": "m", "source": "s3://b/m", "digest": "md5:1"}],
            }
        ),
        "spec.models[0].digest",
    ),
    (
        "signature-with-two-keys",
        _aiw(
            {
                "kind": "inference",
                "selector": SELECTOR,
                "models": [
                    {
                        "name": "m",
                        "source": "s3://b/m",
                        "signature": {
                            "algorithm": "ed25519",
                            "signature": "AA==",
                            "publicKey": "pem",
                            "keyRef": {"name": "k", "key": "pub"},
                        },
                    }
                ],
            }
        ),
        "give exactly one of publicKey or keyRef",
    ),
    (
        "in-cluster-without-selector",
        _mep({"provider": "in-cluster", "ports": [{"port": 8000}]}),
        "provider in-cluster requires selector or service",
    ),
    (
        "external-without-destination",
        _mep({"provider": "openai"}),
        "an external provider requires cidrs or hosts",
    ),
    (
        "bad-cidr",
        _mep({"provider": "external", "cidrs": ["10.0.0.0/33"]}),
        "every entry of cidrs must be a valid CIDR",
    ),
    (
        "datasource-without-destination",
        _ds({"type": "postgres", "ports": [{"port": 5432}]}),
        "a DataSource needs selector or service (in-cluster), or cidrs or hosts (external)",
    ),
    (
        "datasource-unknown-type",
        _ds({"type": "mainframe", "hosts": ["db.example.com"]}),
        "spec.type",
    ),
    (
        "inverted-thresholds",
        _tp({"thresholds": {"trusted": 40, "restricted": 60}}),
        "thresholds.trusted must be greater than thresholds.restricted",
    ),
    ("bad-half-life", _tp({"signals": {"halfLife": "soon"}}), "spec.signals.halfLife"),
    (
        "port-out-of-range",
        _mep({"provider": "in-cluster", "selector": SELECTOR, "ports": [{"port": 70000}]}),
        "spec.ports[0].port",
    ),
]


@pytest.mark.parametrize(("obj", "message"), [(o, m) for _, o, m in INVALID], ids=[i for i, _, _ in INVALID])
def test_invalid_object_is_rejected(
    kubectl: Kubectl, namespace: str, obj: dict[str, Any], message: str
) -> None:
    proc = kubectl.run("apply", "-n", namespace, "-f", "-", input=json.dumps(obj), check=False)
    assert proc.returncode != 0, f"accepted an invalid {obj['kind']}"
    assert message in proc.stderr
    assert kubectl.run("get", obj["kind"].lower(), "bad", "-n", namespace, check=False).returncode != 0


def patch_report_status(
    kubectl: Kubectl, namespace: str, status: dict[str, Any], check: bool = True
) -> subprocess.CompletedProcess[str]:
    return kubectl.patch_status("sair", "shadow-ai", namespace, status, check=check)


def test_every_kind_has_its_short_name_and_columns(kubectl: Kubectl, namespace: str) -> None:
    for sample in ("modelendpoint-vllm", "datasource-vectordb", "trustpolicy-default"):
        kubectl.run("apply", "-n", namespace, "-f", str(CRDS / f"samples/{sample}.yaml"))
    # The operator writes ShadowAIReports (no sample): created, then the status subresource.
    report = {
        "apiVersion": "aitrust.dev/v1alpha1",
        "kind": "ShadowAIReport",
        "metadata": {"name": "shadow-ai"},
    }
    kubectl.run("create", "-n", namespace, "-f", "-", input=json.dumps(report))
    patch_report_status(kubectl, namespace, {"count": 3, "workloads": []})
    # `ds` is registered, but kubectl resolves it to the built-in DaemonSets first (it warns):
    # DataSources are listed by their name.
    expected = {
        "mep": ("modelendpoints", ["NAME", "PROVIDER", "MIN-TIER", "SENSITIVITY", "AGE"]),
        "datasources": ("datasources", ["NAME", "TYPE", "MIN-TIER", "SENSITIVITY", "AGE"]),
        "tp": ("trustpolicies", ["NAME", "MODE", "TRUSTED", "RESTRICTED", "AGE"]),
        "sair": ("shadowaireports", ["NAME", "COUNT", "AGE"]),
    }
    resources = kubectl.run("api-resources", "--api-group=aitrust.dev").stdout
    shorts = (
        ("modelendpoints", "mep"),
        ("datasources", "ds"),
        ("trustpolicies", "tp"),
        ("shadowaireports", "sair"),
    )
    for name, short in shorts:
        assert any(line.split()[:2] == [name, short] for line in resources.splitlines()), resources
    for resource, (_, header) in expected.items():
        out = kubectl.run("get", resource, "-n", namespace).stdout
        assert out.split()[: len(header)] == header, out
    assert kubectl.run("get", "sair", "-n", namespace).stdout.splitlines()[1].split()[:2] == [
        "shadow-ai",
        "3",
    ]
    # Every kind is in the `aitrust` category.
    listed = kubectl.run("get", "aitrust", "-n", namespace, "-o", "name").stdout.split()
    assert "shadowaireport.aitrust.dev/shadow-ai" in listed, listed


def test_a_shadow_ai_report_spec_is_empty_and_its_status_validated(kubectl: Kubectl, namespace: str) -> None:
    report: dict[str, Any] = {
        "apiVersion": "aitrust.dev/v1alpha1",
        "kind": "ShadowAIReport",
        "metadata": {"name": "shadow-ai"},
        "spec": {"anything": "at all"},
    }
    proc = kubectl.run("create", "-n", namespace, "-f", "-", input=json.dumps(report), check=False)
    assert proc.returncode != 0 and 'unknown field "spec.anything"' in proc.stderr, proc.stderr
    report["spec"] = {}
    kubectl.run("create", "-n", namespace, "-f", "-", input=json.dumps(report))
    assert kubectl.json("get", "sair", "shadow-ai", "-n", namespace)["spec"] == {}
    proc = patch_report_status(kubectl, namespace, {"count": -1}, check=False)
    assert proc.returncode != 0 and "status.count" in proc.stderr, proc.stderr
