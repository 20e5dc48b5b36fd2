"""Least privilege, proven: the operator runs as the chart's ServiceAccount and does all its work."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from aitrust.testing.cluster import LocalControlPlane, wait_until
from aitrust.testing.processes import free_port
from tests.charts.test_rbac import Installed, _install
from tests.conftest import Kubectl, operator_process
from tests.integration.test_shadow_ai import shadow_ai_report, without_policy_report_crd
from tests.integration.test_signals import falco_event, setup_estate

# An AI pod that no AIWorkload declares (no kubelet runs it: the classifier reads its spec).
UNDECLARED_OLLAMA = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "ollama", "labels": {"app": "ollama"}},
    "spec": {
        "containers": [
            {"name": "ollama", "image": "ollama/ollama:0.5.7", "ports": [{"containerPort": 11434}]}
        ]
    },
}


@pytest.fixture(scope="module")
def installed(kubectl: Kubectl, control_plane: LocalControlPlane) -> Iterator[Installed]:
    yield from _install(kubectl, control_plane.kubeconfig)


def _sa_kubeconfig(kubectl: Kubectl, control_plane: LocalControlPlane, who: Installed, path: Path) -> Path:
    sa_name = who.service_account.rsplit(":", 1)[1]
    token = kubectl.run("create", "token", sa_name, "-n", who.namespace, "--duration=1h").stdout.strip()
    admin = yaml.safe_load(control_plane.kubeconfig.read_text())
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": admin["clusters"],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [
            {"name": "operator", "context": {"cluster": admin["clusters"][0]["name"], "user": "operator"}}
        ],
        "current-context": "operator",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_operator_reconciles_enforces_and_ingests_as_its_serviceaccount(
    kubectl: Kubectl, control_plane: LocalControlPlane, installed: Installed, tmp_path: Path
) -> None:
    kubeconfig = _sa_kubeconfig(kubectl, control_plane, installed, tmp_path / "operator.kubeconfig")
    as_operator = Kubectl(kubeconfig)
    workloads_ns = installed.other
    setup_estate(kubectl, workloads_ns)
    without_policy_report_crd(kubectl)  # so shadow AI goes to a ShadowAIReport
    # The chart's model: the token Secret lives in the operator's own namespace.
    token = base64.b64encode(b"a-long-enough-signal-token").decode()
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "tokens"},
        "data": {"falcosidekick": token},
    }
    kubectl.apply(installed.namespace, secret)
    lease = installed.service_account.rsplit(":", 1)[1]
    # Its own Pod, as the Deployment would have made it (no kubelet runs it; it is an API object).
    own_pod = "aitrust-operator-sa-0"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": own_pod, "labels": {"app.kubernetes.io/name": "aitrust-operator"}},
        "spec": {"containers": [{"name": "operator", "image": "registry.example.com/aitrust:test"}]},
    }
    kubectl.apply(installed.namespace, pod)
    port = free_port()
    proc = operator_process(
        control_plane,
        tmp_path,
        f"--secrets-namespace={installed.namespace}",
        "--leader-elect",
        f"--leader-election-namespace={installed.namespace}",
        f"--leader-election-lease={lease}",
        f"--signals-port={port}",
        "--signals-host=127.0.0.1",
        "--signals-token-secret=tokens",
        env={"KUBECONFIG": str(kubeconfig), "POD_NAME": own_pod, "POD_NAMESPACE": installed.namespace},
        kubeconfig=kubeconfig,
    )
    try:
        # Reconcile: status written.
        status: Any = wait_until(
            lambda: (
                kubectl.json("get", "aiw", "agent", "-n", workloads_ns).get("status", {}).get("tier") and True
            ),
            timeout=20,
        )
        assert status
        # Enforce: the NetworkPolicy exists.
        wait_until(
            lambda: (
                kubectl.run(
                    "get", "networkpolicy", "aitrust-agent", "-n", workloads_ns, check=False
                ).returncode
                == 0
            ),
            timeout=20,
        )
        # Ingest: an authenticated signal is recorded in status.
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/signals/falco",
            json=falco_event(workloads_ns),
            headers={"Authorization": "Bearer a-long-enough-signal-token"},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] == 1
        # Leadership: the Role lets it label its own Pod, which the signal Service selects.
        wait_until(
            lambda: (
                kubectl.json("get", "pod", own_pod, "-n", installed.namespace)["metadata"]["labels"].get(
                    "aitrust.dev/role"
                )
                == "leader"
            ),
            timeout=20,
        )
        # Shadow AI: its namespace's ShadowAIReport is listed, created and status-patched, and
        # deleted once the shadow workload is gone.
        kubectl.run("apply", "-n", workloads_ns, "-f", "-", input=json.dumps(UNDECLARED_OLLAMA))
        report = wait_until(
            lambda: (
                (shadow_ai_report(kubectl, workloads_ns) or {}).get("status", {}).get("count") == 1
                and shadow_ai_report(kubectl, workloads_ns)
            ),
            timeout=30,
        )
        assert [w["name"] for w in report["status"]["workloads"]] == ["ollama"]
        kubectl.run("delete", "pod", "ollama", "-n", workloads_ns, "--grace-period=0", "--force")
        wait_until(lambda: shadow_ai_report(kubectl, workloads_ns) is None, timeout=30)
        assert "forbidden" not in proc.log_path.read_text().lower()
        assert "cannot label Pod" not in proc.log_path.read_text()
    finally:
        proc.stop()

    # And outside its role, the same identity is refused.
    denied = [
        ("get", "secrets", "-n", workloads_ns),
        ("delete", "pod", "agent-0", "-n", workloads_ns),
        ("create", "clusterrolebinding", "x", "--clusterrole=cluster-admin", "--user=x"),
        # Pods are patchable in its own namespace only: not the workloads it watches.
        ("label", "pod", "agent-0", "-n", workloads_ns, "aitrust.dev/role=leader"),
    ]
    for args in denied:
        out = as_operator.run(*args, check=False)
        assert out.returncode != 0 and "forbidden" in out.stderr.lower(), (args, out.stderr)
    patch = as_operator.run(
        "patch",
        "aiw",
        "agent",
        "-n",
        workloads_ns,
        "--type=merge",
        "-p",
        '{"spec":{"kind":"training"}}',
        check=False,
    )
    assert patch.returncode != 0 and "forbidden" in patch.stderr.lower()
