"""Prometheus metrics. The names are a contract (alerts and dashboards use them); labels stay bounded."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

from aitrust import __version__

REGISTRY = CollectorRegistry(auto_describe=True)

TIERS = ("trusted", "restricted", "quarantined")


class WorkloadGauges:
    """``aitrust_trust_score`` and ``aitrust_workload_tier``, rendered at scrape time from one
    dict. As Gauge children they cost four labelled values with a lock each per workload: about
    3 KB a workload, 15 MB of a 5,000-workload operator."""

    def __init__(self) -> None:
        self.workloads: dict[tuple[str, str], tuple[int, str]] = {}

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "aitrust_trust_score", "Trust score of a workload (0-100).", labels=["namespace", "workload"]
            ),
            GaugeMetricFamily(
                "aitrust_workload_tier",
                "1 for the workload's current tier.",
                labels=["namespace", "workload", "tier"],
            ),
        )

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        score, tier = self._families()
        # One C-level copy under the GIL: the event loop may update the dict meanwhile.
        for (namespace, workload), (value, current) in list(self.workloads.items()):
            score.add_metric([namespace, workload], value)
            for t in TIERS:
                tier.add_metric([namespace, workload, t], 1 if t == current else 0)
        yield score
        yield tier


WORKLOAD_GAUGES = WorkloadGauges()
REGISTRY.register(WORKLOAD_GAUGES)
WORKLOADS = Gauge("aitrust_workloads", "Workloads by tier and mode.", ["tier", "mode"], registry=REGISTRY)
SIGNALS = Counter(
    "aitrust_signals_total",
    "Signals received, by source and result (accepted, unmatched, rejected, duplicate).",
    ["source", "result"],
    registry=REGISTRY,
)
ENFORCEMENT_LATENCY = Histogram(
    "aitrust_enforcement_latency_seconds",
    "From a trust change to NetworkPolicy and OPA writes acknowledged.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
SIGNAL_COMMIT_LATENCY = Histogram(
    "aitrust_signal_commit_seconds",
    "Journal write of one group commit: what a signal sender waits for before its 2xx.",
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)
SIGNAL_BACKLOG = Gauge(
    "aitrust_signal_backlog",
    "Acknowledged signals not yet in their workload's status (waiting in the journal).",
    registry=REGISTRY,
)
OPA_SYNC_ERRORS = Counter(
    "aitrust_opa_sync_errors_total", "Failed OPA writes.", ["target"], registry=REGISTRY
)
RECONCILE_ERRORS = Counter(
    "aitrust_reconcile_errors_total", "Failed reconciles.", ["kind"], registry=REGISTRY
)
SHADOW_AI = Gauge(
    "aitrust_shadow_ai_workloads",
    "AI workloads that no AIWorkload selects.",
    ["namespace"],
    registry=REGISTRY,
)
BUILD_INFO = Gauge("aitrust_build_info", "Build information.", ["version"], registry=REGISTRY)
BUILD_INFO.labels(version=__version__).set(1)


def record_workload(namespace: str, workload: str, score: int, tier: str) -> None:
    WORKLOAD_GAUGES.workloads[(namespace, workload)] = (score, tier)


def forget_workload(namespace: str, workload: str) -> None:
    WORKLOAD_GAUGES.workloads.pop((namespace, workload), None)


def record_population(counts: dict[tuple[str, str], int]) -> None:
    for tier in TIERS:
        for mode in ("enforce", "audit"):
            WORKLOADS.labels(tier, mode).set(counts.get((tier, mode), 0))
