"""A real Prometheus server scrapes the operator and finds the trust score of a test workload."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import yaml

from aitrust.testing.cluster import wait_until
from aitrust.testing.processes import ManagedProcess, free_port
from aitrust.testing.testbin import find_binary
from tests.conftest import Kubectl, OperatorFactory


def test_prometheus_scrapes_trust_score(
    kubectl: Kubectl, namespace: str, start_operator: OperatorFactory, tmp_path: Path
) -> None:
    metrics_port, prom_port = free_port(), free_port()
    start_operator(f"--metrics-port={metrics_port}", "--metrics-host=127.0.0.1")
    workload = {
        "apiVersion": "aitrust.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {"name": "scraped"},
        "spec": {"kind": "agent", "selector": {"matchLabels": {"app": "scraped"}}},
    }
    kubectl.run("apply", "-n", namespace, "-f", "-", input=json.dumps(workload))
    score = wait_until(
        lambda: kubectl.json("get", "aiw", "scraped", "-n", namespace).get("status", {}).get("trustScore"),
        timeout=15,
    )

    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": "aitrust", "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}]}
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    prometheus = ManagedProcess(
        "prometheus",
        [
            find_binary("prometheus"),
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        tmp_path,
    ).start()
    try:

        def query() -> list[Any]:
            if not prometheus.alive():
                raise AssertionError(f"prometheus exited:\n{prometheus.log_tail()}")
            try:
                r = httpx.get(
                    f"http://127.0.0.1:{prom_port}/api/v1/query",
                    params={"query": f'aitrust_trust_score{{namespace="{namespace}",workload="scraped"}}'},
                    timeout=2,
                )
            except httpx.TransportError:
                return []  # not listening yet
            if r.status_code == 503:
                return []  # listening, still starting ("Service Unavailable")
            r.raise_for_status()
            result: list[Any] = r.json()["data"]["result"]
            return result

        result = wait_until(query, timeout=30, interval=0.5)
        assert float(result[0]["value"][1]) == score
        up = httpx.get(
            f"http://127.0.0.1:{prom_port}/api/v1/query", params={"query": "aitrust_build_info"}
        ).json()
        assert up["data"]["result"][0]["metric"]["version"]
    finally:
        prometheus.stop()
