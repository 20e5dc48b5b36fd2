"""`aitrust explain` and `aitrust get`: the presentation, then against a real kube-apiserver."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from aitrust.api.v1alpha1 import AIWorkload, Thresholds, TrustPolicySpec
from aitrust.cli import main
from aitrust.cli_tools.explain_cmd import parse_target, print_explain, print_get
from aitrust.testing.cluster import LocalControlPlane
from tests.conftest import Kubectl

# A status as the operator writes it: the factors sum to the score.
STATUS: dict[str, Any] = {
    "trustScore": 54,
    "postureScore": 62,
    "tier": "restricted",
    "mode": "enforce",
    "matchedPods": 2,
    "factors": [
        {
            "id": "BASE",
            "points": 100,
            "reason": "Starting score before posture and signals",
            "source": "policy",
        },
        {
            "id": "AIT-P001",
            "points": -30,
            "reason": 'Privileged container: pod: container "vllm" is privileged',
            "source": "posture",
            "references": ["NSA-CISA:pod-security-enforcement", "K8S-PSS:baseline"],
        },
        {
            "id": "AIT-P016",
            "points": -8,
            "reason": 'Mutable image tag: pod: container "vllm" uses vllm/vllm-openai:latest',
            "source": "posture",
            "references": ["LLM03:2025", "AML.T0010.004"],
        },
        {
            "id": "falco:Terminal shell in container",
            "points": -8,
            "reason": "1 signal falco:Terminal shell in container, latest 2026-05-01T11:40:00Z: "
            "35 points before decay",
            "source": "signal",
        },
    ],
    "grants": [
        {
            "target": "ModelEndpoint/llm/llama",
            "allowed": True,
            "reason": "tier restricted meets minTier restricted",
        },
        {
            "target": "DataSource/llm/customer-db",
            "allowed": False,
            "reason": "tier restricted is below minTier trusted",
        },
    ],
    "conditions": [{"type": "Ready", "status": "True", "reason": "Reconciled", "message": "2 pod(s) scored"}],
}


def _aiw(name: str, namespace: str = "llm", status: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "aitrust.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "kind": "inference",
            "selector": {"matchLabels": {"app": name}},
            "access": {"modelEndpoints": [{"name": "llama"}], "dataSources": [{"name": "customer-db"}]},
        },
    }
    if status is not None:
        body["status"] = status
    return body


def _explain(body: dict[str, Any], policy: TrustPolicySpec | None = None) -> str:
    out = io.StringIO()
    print_explain(AIWorkload.model_validate(body), policy or TrustPolicySpec(), "default", out, no_color=True)
    return out.getvalue()


# --- presentation -------------------------------------------------------------------------------


def test_explain_shows_score_factors_access_and_the_way_up() -> None:
    out = _explain(_aiw("vllm", status=STATUS))
    assert "AIWorkload llm/vllm (inference)" in out
    assert re.search(r"Score 54/100\s+Tier restricted\s+Posture 62\s+Mode enforce\s+Policy default", out)
    for factor in STATUS["factors"]:
        row = next(line for line in out.splitlines() if line.startswith(factor["id"]))
        assert f"{factor['points']:+d}" in row
        for ref in factor.get("references", []):
            assert ref in row
    assert re.search(r"ModelEndpoint/llm/llama\s+allowed\s+tier restricted meets", out)
    assert re.search(r"DataSource/llm/customer-db\s+denied\s+tier restricted is below minTier trusted", out)
    # Built-in policy: trusted at 80, plus 5 of hysteresis to rise.
    assert "To reach trusted: score 85 (threshold 80 + hysteresis 5); 31 points missing." in out
    fixes = [line.split() for line in out.splitlines() if re.match(r"^\d+\s+\S", line)]
    assert [f[1] for f in fixes[:3]] == ["AIT-P001", "AIT-P016", "falco:Terminal"]
    assert fixes[0][2:4] == ["+30", "30"]
    enough = next(line for line in out.splitlines() if "<- enough" in line)
    assert enough.split()[1] == "AIT-P016"  # 30 + 8 = 38 >= 31


def test_the_policy_thresholds_drive_the_gap() -> None:
    policy = TrustPolicySpec(thresholds=Thresholds(trusted=60, restricted=30), hysteresis=2)
    out = _explain(_aiw("vllm", status=STATUS), policy)
    assert "To reach trusted: score 62 (threshold 60 + hysteresis 2); 8 points missing." in out


def test_explain_a_trusted_a_quarantined_and_an_unevaluated_workload() -> None:
    trusted = {**STATUS, "trustScore": 92, "tier": "trusted", "factors": STATUS["factors"][:1]}
    assert "Already trusted; 12 points above the trusted threshold." in _explain(_aiw("a", status=trusted))
    held = {
        **STATUS,
        "tier": "quarantined",
        "quarantine": {
            "active": True,
            "reason": "falco:Terminal shell in container",
            "since": "2026-05-01T11:40:00Z",
            "until": "2026-05-01T12:10:00Z",
        },
    }
    out = _explain(_aiw("b", status=held))
    assert "Quarantine hold since 2026-05-01T11:40:00Z until 2026-05-01T12:10:00Z" in out
    assert "The quarantine hold must end" in out
    assert "Not evaluated yet" in _explain(_aiw("c"))


def test_get_lists_workloads() -> None:
    out = io.StringIO()
    print_get([_aiw("b", status=STATUS), _aiw("a", "other")], all_namespaces=True, out=out, no_color=True)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["NAMESPACE", "NAME", "KIND", "TIER", "SCORE", "POSTURE", "MODE", "PODS"]
    assert lines[1].split() == ["llm", "b", "inference", "restricted", "54", "62", "enforce", "2"]
    assert lines[2].split() == ["other", "a", "inference", "-", "-", "-", "-", "-"]


@pytest.mark.parametrize(
    ("target", "namespace", "expected"),
    [
        ("llm/vllm", None, ("llm", "vllm")),
        ("vllm", "llm", ("llm", "vllm")),
        ("vllm", None, ("ctx", "vllm")),
        ("a/b/c", None, None),
        ("/b", None, None),
        ("", None, None),
    ],
)
def test_parse_target(target: str, namespace: str | None, expected: tuple[str, str] | None) -> None:
    assert parse_target(target, namespace, "ctx") == expected


# --- against a real API server ---------------------------------------------------------------------


def _create(kubectl: Kubectl, namespace: str, name: str, status: dict[str, Any] | None) -> None:
    kubectl.run("apply", "-n", namespace, "-f", "-", input=json.dumps(_aiw(name, namespace)))
    if status is not None:
        kubectl.patch_status("aiw", name, namespace, status)


@pytest.mark.integration
def test_explain_reads_the_status_the_operator_wrote(
    control_plane: LocalControlPlane,
    kubectl: Kubectl,
    namespace: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _create(kubectl, namespace, "vllm", STATUS)
    kubeconfig = str(control_plane.kubeconfig)
    assert main(["explain", f"{namespace}/vllm", "--kubeconfig", kubeconfig]) == 0
    out = capsys.readouterr().out
    assert f"AIWorkload {namespace}/vllm (inference)" in out
    assert "Score 54/100" in out and "Policy (built-in)" in out
    assert "AIT-P001" in out and "NSA-CISA:pod-security-enforcement" in out
    assert "DataSource/llm/customer-db" in out and "denied" in out
    assert "31 points missing" in out

    # A TrustPolicy named default in the namespace is the one the operator applies.
    policy = {
        "apiVersion": "aitrust.dev/v1alpha1",
        "kind": "TrustPolicy",
        "metadata": {"name": "default", "namespace": namespace},
        "spec": {"thresholds": {"trusted": 70, "restricted": 40}, "hysteresis": 3},
    }
    kubectl.run("apply", "-f", "-", input=json.dumps(policy))
    assert main(["explain", "vllm", "-n", namespace, "--kubeconfig", kubeconfig, "--no-color"]) == 0
    out = capsys.readouterr().out
    assert "Policy default" in out
    assert "To reach trusted: score 73 (threshold 70 + hysteresis 3); 19 points missing." in out


@pytest.mark.integration
def test_explain_a_missing_workload_fails(
    control_plane: LocalControlPlane, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["explain", f"{namespace}/ghost", "--kubeconfig", str(control_plane.kubeconfig)])
    assert code == 1
    assert f"AIWorkload {namespace}/ghost not found" in capsys.readouterr().err


@pytest.mark.integration
def test_get_in_a_namespace_and_everywhere(
    control_plane: LocalControlPlane,
    kubectl: Kubectl,
    namespace: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _create(kubectl, namespace, "scored", STATUS)
    _create(kubectl, namespace, "fresh", None)
    kubeconfig = str(control_plane.kubeconfig)
    assert main(["get", "-n", namespace, "--kubeconfig", kubeconfig]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows["scored"][1:] == ["inference", "restricted", "54", "62", "enforce", "2"]
    assert rows["fresh"][2:] == ["-", "-", "-", "-", "-"]

    assert main(["get", "-A", "--kubeconfig", kubeconfig]) == 0
    everywhere = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert everywhere[0][0] == "NAMESPACE"
    assert [namespace, "scored", "inference", "restricted"] in [row[:4] for row in everywhere]


@pytest.mark.integration
def test_works_as_a_kubectl_plugin(
    control_plane: LocalControlPlane, kubectl: Kubectl, namespace: str
) -> None:
    _create(kubectl, namespace, "plugged", STATUS)
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "kubectl-aitrust").exists()
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "KUBECONFIG": str(control_plane.kubeconfig),
    }
    proc = subprocess.run(
        [kubectl.binary, "aitrust", "explain", f"{namespace}/plugged"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Score 54/100" in proc.stdout and "\x1b[" not in proc.stdout


@pytest.mark.integration
def test_inventory_from_the_cluster(
    control_plane: LocalControlPlane,
    kubectl: Kubectl,
    namespace: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "tgi", "namespace": namespace},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "tgi"}},
            "template": {
                "metadata": {"labels": {"app": "tgi"}},
                "spec": {
                    "containers": [
                        {"name": "tgi", "image": "ghcr.io/huggingface/text-generation-inference:3.0.1"}
                    ]
                },
            },
        },
    }
    endpoint = {
        "apiVersion": "aitrust.dev/v1alpha1",
        "kind": "ModelEndpoint",
        "metadata": {"name": "bedrock", "namespace": namespace},
        "spec": {"provider": "aws-bedrock", "hosts": ["bedrock-runtime.us-east-1.amazonaws.com"]},
    }
    kubectl.run(
        "apply",
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [deployment, endpoint]}),
    )
    code = main(["inventory", "--cluster", "--kubeconfig", str(control_plane.kubeconfig), "-o", "cyclonedx"])
    out = capsys.readouterr().out
    assert code == 0
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(out) is None
    bom = json.loads(out)
    refs = {c["bom-ref"] for c in [*bom["components"], *bom["services"]]}
    assert f"workload:{namespace}/Deployment/tgi" in refs
    assert f"endpoint:{namespace}/bedrock" in refs
    assert "image:ghcr.io/huggingface/text-generation-inference:3.0.1" in refs
