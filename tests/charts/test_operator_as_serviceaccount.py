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
from tests.integration.test_signals import falco_event, setup_estate


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
    # The chart's model: the token Secret lives in the operator's own namespace.
    token = base64.b64encode(b"a-long-enough-signal-token").decode()
    kubectl.run(
        "apply",
        "-n",
        installed.namespace,
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "tokens"},
                "data": {"falcosidekick": token},
            }
        ),
    )
    lease = installed.service_account.rsplit(":", 1)[1]
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
        env={"KUBECONFIG": str(kubeconfig)},
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
        assert "forbidden" not in proc.log_path.read_text().lower()
    finally:
        proc.stop()

    # And outside its role, the same identity is refused.
    denied = [
        ("get", "secrets", "-n", workloads_ns),
        ("delete", "pod", "agent-0", "-n", workloads_ns),
        ("create", "clusterrolebinding", "x", "--clusterrole=cluster-admin", "--user=x"),
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
