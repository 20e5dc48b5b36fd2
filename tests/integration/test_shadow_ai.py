"""Undeclared AI workloads are found, counted and reported; declaring them clears the finding."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from aitrust.testing.cluster import wait_until
from aitrust.testing.processes import free_port
from tests.conftest import Kubectl, OperatorFactory

# A stand-in for the wg-policy PolicyReport CRD (shape only), so the report path runs for real.
POLICY_REPORT_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "policyreports.wgpolicyk8s.io"},
    "spec": {
        "group": "wgpolicyk8s.io",
        "names": {"kind": "PolicyReport", "plural": "policyreports", "singular": "policyreport"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1alpha2",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                },
            }
        ],
    },
}

OLLAMA = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "ollama"},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "ollama"}},
        "template": {
            "metadata": {"labels": {"app": "ollama"}},
            "spec": {
                "containers": [
                    {
                        "name": "ollama",
                        "image": "ollama/ollama:0.5.7",
                        "ports": [{"containerPort": 11434}],
                        "resources": {"limits": {"nvidia.com/gpu": "1"}},
                    }
                ]
            },
        },
    },
}
NGINX = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web"},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [{"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]
            },
        },
    },
}


def _gauge(url: str, namespace: str) -> float | None:
    text = httpx.get(url).text
    match = re.search(rf'aitrust_shadow_ai_workloads{{namespace="{namespace}"}} ([0-9.]+)', text)
    return float(match.group(1)) if match else None


def test_shadow_ai_is_found_reported_and_cleared(
    kubectl: Kubectl, namespace: str, start_operator: OperatorFactory
) -> None:
    kubectl.run("apply", "--server-side", "-f", "-", input=json.dumps(POLICY_REPORT_CRD))
    kubectl.run("wait", "--for=condition=Established", "crd/policyreports.wgpolicyk8s.io")
    metrics_port = free_port()
    start_operator(f"--metrics-port={metrics_port}", "--metrics-host=127.0.0.1")
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    for obj in (OLLAMA, NGINX):
        kubectl.run("apply", "-n", namespace, "-f", "-", input=json.dumps(obj))

    assert wait_until(lambda: _gauge(metrics_url, namespace) == 1.0, timeout=45, interval=0.5)

    def report() -> dict[str, Any] | None:
        proc = kubectl.run(
            "get", "policyreport", "aitrust-shadow-ai", "-n", namespace, "-o", "json", check=False
        )
        return json.loads(proc.stdout) if proc.returncode == 0 else None

    doc = wait_until(report, timeout=20)
    assert [r["resources"][0]["name"] for r in doc["results"]] == ["ollama"]  # nginx is not AI
    assert doc["results"][0]["resources"][0]["kind"] == "Deployment"

    declared = {
        "apiVersion": "aitrust.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {"name": "ollama"},
        "spec": {"kind": "inference", "selector": {"matchLabels": {"app": "ollama"}}},
    }
    kubectl.run("apply", "-n", namespace, "-f", "-", input=json.dumps(declared))
    assert wait_until(lambda: _gauge(metrics_url, namespace) == 0.0, timeout=30, interval=0.5)
    wait_until(lambda: (report() or {}).get("summary", {}).get("fail") == 0, timeout=20)
