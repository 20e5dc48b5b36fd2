"""Prometheus metrics. The names are a contract (alerts and dashboards use them); labels stay bounded."""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from aitrust import __version__

REGISTRY = CollectorRegistry(auto_describe=True)

TRUST_SCORE = Gauge(
    "aitrust_trust_score", "Trust score of a workload (0-100).", ["namespace", "workload"], registry=REGISTRY
)
WORKLOAD_TIER = Gauge(
    "aitrust_workload_tier",
    "1 for the workload's current tier.",
    ["namespace", "workload", "tier"],
    registry=REGISTRY,
)
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

TIERS = ("trusted", "restricted", "quarantined")


def record_workload(namespace: str, workload: str, score: int, tier: str) -> None:
    TRUST_SCORE.labels(namespace, workload).set(score)
    for t in TIERS:
        WORKLOAD_TIER.labels(namespace, workload, t).set(1 if t == tier else 0)


def forget_workload(namespace: str, workload: str) -> None:
    with contextlib.suppress(KeyError):
        TRUST_SCORE.remove(namespace, workload)
    for t in TIERS:
        with contextlib.suppress(KeyError):
            WORKLOAD_TIER.remove(namespace, workload, t)


def record_population(counts: dict[tuple[str, str], int]) -> None:
    for tier in TIERS:
        for mode in ("enforce", "audit"):
            WORKLOADS.labels(tier, mode).set(counts.get((tier, mode), 0))
