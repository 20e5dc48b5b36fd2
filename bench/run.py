"""`make bench`: aitrust against a real local control plane and a real OPA.

Measures signal -> enforcement latency (100 and 1,000 AIWorkloads, under background signal
load), signal ingestion throughput (1, 100 and 1,000 workloads), operator cold start (1,000 and
5,000 workloads) with peak RSS, OPA decision latency (10,000 workloads of data), offline scan
throughput (bench/bench_scan.py) and scoring throughput (bench/bench_scoring.py).

Signal load (ingestion, and the background stream during enforcement trials) comes from vegeta
(bench/lib/vegeta.py, pinned in hack/testbin.sh): a Python client cost so much CPU on the 2-core
machine that it capped what the operator could be measured at and took the core it needed.

Writes bench/results/latest.json and latest.png; the previous latest.json becomes
previous.json and every metric is printed with its ratio new/old. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "operator")]

from bench.lib import coldstart, estate, opa_decisions, plot, vegeta  # noqa: E402
from bench.lib.compare import Better, Target, compare_metrics, evaluate_targets, format_comparison, metric  # noqa: E402
from bench.lib.harness import (  # noqa: E402
    TOKEN,
    Cluster,
    OperatorCounters,
    cpu_seconds,
    fetch_metrics_text,
    fetch_operator_counters,
    memory_kb,
    request_latency,
    sample_value,
)
from bench.lib.latency import TRIAL_TIMEOUT_S, OpaProbe, PolicyTracker, TrialResults, run_trials  # noqa: E402
from bench.lib.stats import percentile, rate, summarise, thin  # noqa: E402

from aitrust.server.ingestor import COALESCE, FOLD_RATE, MAX_COALESCE  # noqa: E402
from aitrust.testing.processes import ManagedProcess, free_port  # noqa: E402
from aitrust.testing.testbin import find_binary  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SCHEMA = 1

TARGETS = [
    Target("enforcement.w1000.p99_ms", "<=", 250, "signal -> NetworkPolicy + OPA p99 at 1,000 workloads"),
    Target("ingestion.w1.signals_per_sec", ">=", 2000, "accepted signals/s, 1 workload"),
    Target("ingestion.w1000.signals_per_sec", ">=", 2000, "accepted signals/s, 1,000 workloads"),
    Target("ingestion.w1.post_p99_ms", "<=", 100, "POST -> 2xx p99, 1 workload"),
    Target("ingestion.w1000.post_p99_ms", "<=", 100, "POST -> 2xx p99, 1,000 workloads"),
    Target("cold_start.w5000.seconds", "<=", 60, "cold start with 5,000 workloads"),
    Target("cold_start.w5000.peak_rss_mb", "<=", 250, "operator peak RSS, 5,000 workloads"),
    Target("opa.decision_p99_ms", "<=", 2, "OPA decision p99 (server time), 10,000 workloads"),
    Target("scan.seconds", "<=", 10, "offline scan of 10,000 manifests"),
]

_T0 = time.monotonic()


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S} +{time.monotonic() - _T0:6.1f}s] {message}", flush=True)


@dataclass
class Config:
    trials: int
    trial_budget: float
    cold_wait: float
    small: int
    large: int
    cold: list[int]
    ingest_seconds: float
    ingest_concurrency: int
    ingest_rates: list[int]
    noise_rate: float
    per_namespace: int
    only: set[str]
    workdir: Path
    py_spy: str | None
    keep: bool
    output_dir: Path
    operator_src: Path | None
    replot: bool


@dataclass
class Results:
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, name: str, value: float, unit: str, better: Better | None) -> None:
        self.metrics[name] = metric(round(value, 3), unit, better)


# --- helpers ------------------------------------------------------------------------------------


class Profiler:
    """py-spy sampling of the operator while a phase runs (collapsed stacks, for bench/README.md)."""

    def __init__(self, cfg: Config, name: str, pid: int) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        if cfg.py_spy:
            out = cfg.workdir / "profiles" / f"{name}.txt"
            out.parent.mkdir(parents=True, exist_ok=True)
            self.proc = subprocess.Popen(
                [
                    cfg.py_spy,
                    "record",
                    "--nonblocking",
                    "--format",
                    "raw",
                    "-o",
                    str(out),
                    "--pid",
                    str(pid),
                    "--rate",
                    "200",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            log(f"  py-spy recording the operator into {out}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(30)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'operator'}"}


def signal_targets(cfg: Config, name: str, url: str, workloads: list[estate.Workload], count: int) -> Path:
    """A vegeta targets file of ``count`` distinct 0-point Falco alerts, round-robin over ``workloads``."""
    return vegeta.write_targets(cfg.workdir / f"{name}.targets.json", url, workloads, count)


async def wait_ready(
    tracker: PolicyTracker, probe: OpaProbe, workloads: list[estate.Workload], wait_s: float
) -> None:
    """Every workload's NetworkPolicy allows its egress and OPA allows it."""
    deadline = time.monotonic() + wait_s
    for w in workloads:
        left = max(1.0, deadline - time.monotonic())
        await tracker.wait_for((w.namespace, w.policy), True, left)
        await probe.wait_for(w, True, left, interval=0.05)


# The ingestion attack is sized for this many requests/s at most, twice over (the operator's
# target is 2,000); the null server is far faster, so its attack gets more bodies.
INGEST_RATE_BOUND = 4_000.0
CEILING_RATE_BOUND = 10_000.0


async def drive(
    cfg: Config,
    name: str,
    targets: Path,
    token: str,
    per_sec: float = 0,
    workers: int = 0,
    settle_s: float = 0.0,
) -> vegeta.Summary:
    """POST the targets' alerts for ``settle_s`` then ``cfg.ingest_seconds`` more: closed loop
    (``per_sec`` 0, with ``cfg.ingest_concurrency`` clients back to back) or open loop at
    ``per_sec``. The summary's latencies are those of the last ``cfg.ingest_seconds``."""
    seconds = settle_s + cfg.ingest_seconds
    proc, results = vegeta.start(
        cfg.workdir,
        name,
        targets,
        token,
        workers=workers or cfg.ingest_concurrency,
        per_sec=per_sec,
        seconds=seconds,
    )
    out = await vegeta.finish(proc, results, targets, seconds + 120, settle_s=settle_s)
    if out.ran_out:
        log(f"  WARNING: {name} used every target body; it stopped after {out.seconds:.1f}s")
    return out


def loadgen_cpu(out: vegeta.Summary) -> dict[str, float]:
    """vegeta's own CPU over its run: what the load costs the machine besides the server."""
    return {
        "loadgen_cpu_cores": round(out.cpu_cores, 3),
        "loadgen_cpu_us_per_request": round(out.cpu_us_per_request, 1),
    }


async def client_ceiling(cfg: Config, res: Results, cluster: Cluster) -> None:
    """The same load generator against a server that does nothing: what the client can drive here."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    targets = await asyncio.to_thread(
        signal_targets,
        cfg,
        "ceiling",
        url,
        [estate.workload(0, cluster.per_namespace)],
        vegeta.target_count(cfg.ingest_seconds, CEILING_RATE_BOUND),
    )
    server = ManagedProcess(
        f"nullserver-{port}",
        [sys.executable, "-m", "bench.lib.nullserver", str(port)],
        cfg.workdir,
        env=_env(),
        cwd=ROOT,
    ).start()
    try:
        await asyncio.sleep(1.5)
        out = await drive(cfg, "vegeta-ceiling", targets, TOKEN)
    finally:
        server.stop()
    res.add("ingestion.client_ceiling_per_sec", out.per_sec, "requests/s", None)
    res.details["ingestion.client_ceiling"] = {
        "statuses": out.statuses,
        "errors": out.errors,
        "ran_out_of_targets": out.ran_out,
        **loadgen_cpu(out),
    }
    log(
        f"load generator ceiling ({vegeta.describe()} against a server that does nothing): "
        f"{out.per_sec:,.0f} requests/s; {out.failed} errors; vegeta {out.cpu_cores:.2f} "
        f"cores, {out.cpu_us_per_request:.0f} us/request"
    )


# Open-loop rates tried in turn, until one is not sustained.
INGEST_RATES = (500, 1000, 1500, 2000, 2500, 3000, 4000)
INGEST_P99_MS = 100.0  # the latency a sustained rate must keep (the target)
OPEN_LOOP_WORKERS = 1000  # enough in flight that vegeta keeps its schedule while the server is slow


@dataclass
class Step:
    rate: float
    out: vegeta.Summary
    stats: dict[str, float]
    achieved: float  # accepted signals/s over the time the requests were sent
    cpu_cores: float
    counted: float
    commits: float
    commit_ms: float
    apiserver_post_ms: float  # kube-apiserver's own time for a ConfigMap POST

    @property
    def kept_up(self) -> bool:
        """Every request accepted and on schedule, whatever the latency."""
        return self.out.sent > 0 and self.out.accepted == self.out.sent and self.achieved >= 0.95 * self.rate

    @property
    def sustained(self) -> bool:
        """Every request accepted, on schedule (95%), with p99 within the latency target."""
        return (
            self.out.sent > 0
            and self.out.accepted == self.out.sent
            and self.achieved >= 0.95 * self.rate
            and self.stats.get("p99", math.inf) <= INGEST_P99_MS
        )


def fold_settle_s(workloads: int) -> float:
    """How long free signals wait before a status write folds them in, with ``workloads`` all
    holding some (``Ingestor._pace_folds``): a step measured before that misses the folds."""
    return min(MAX_COALESCE, max(COALESCE, workloads / FOLD_RATE))


async def ingestion(cfg: Config, res: Results, cluster: Cluster, count: int) -> None:
    """Sustained accepted signals/s: open-loop steps of rising rate (0-point signals, tiers stay).

    A rate is kept up when every signal is accepted and the requests go out on schedule, and
    sustained when POST p99 also stays within ``INGEST_P99_MS``. The highest sustained step gives
    ``signals_per_sec`` and the latency figures, the highest kept-up one ``kept_up_per_sec``; the
    steps stop at the first one that is not kept up.
    """
    assert cluster.operator is not None
    workloads = [estate.workload(i, cluster.per_namespace) for i in range(count)]
    pid = cluster.operator.pid
    settle = fold_settle_s(count)
    log(
        f"ingestion @ {count} workloads: {vegeta.describe()}, open loop, {settle:.0f}s to settle "
        f"(free signals wait that long to be folded into status), then {cfg.ingest_seconds:.0f}s "
        "measured per rate"
    )
    steps: list[Step] = []
    for offered in cfg.ingest_rates:
        targets = await asyncio.to_thread(
            signal_targets,
            cfg,
            f"ingestion-w{count}-r{offered}",
            cluster.signals_url,
            workloads,
            vegeta.target_count(settle + cfg.ingest_seconds, offered),
        )
        start = await asyncio.to_thread(fetch_operator_counters, cluster.signals_url)

        async def settled() -> tuple[OperatorCounters, tuple[float, float], float, float]:
            await asyncio.sleep(settle)
            counters = await asyncio.to_thread(fetch_operator_counters, cluster.signals_url)
            api = request_latency(await cluster.api.text("/metrics"), "POST", "configmaps")
            return counters, api, cpu_seconds(pid), time.monotonic()

        mark = asyncio.create_task(settled())
        prof = Profiler(cfg, f"ingestion-w{count}-r{offered}", pid)
        try:
            out = await drive(
                cfg,
                f"vegeta-ingestion-w{count}-r{offered}",
                targets,
                TOKEN,
                offered,
                OPEN_LOOP_WORKERS,
                settle_s=settle,
            )
        finally:
            prof.stop()
        counter0, api0, cpu0, wall0 = await mark
        cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - wall0)
        counter1 = await asyncio.to_thread(fetch_operator_counters, cluster.signals_url)
        api1 = request_latency(await cluster.api.text("/metrics"), "POST", "configmaps")
        api_posts = api1[0] - api0[0]
        api_post_ms = (api1[1] - api0[1]) * 1000 / api_posts if api_posts else 0.0
        commits = counter1.commits - counter0.commits
        commit_s = counter1.commit_seconds - counter0.commit_seconds
        step = Step(
            rate=offered,
            out=out,
            stats=summarise(out.latency_ms),
            achieved=out.measured_accepted / out.measured_sending_seconds
            if out.measured_sending_seconds > 0
            else 0.0,
            cpu_cores=cpu,
            counted=counter1.accepted - start.accepted,
            commits=commits,
            commit_ms=commit_s * 1000 / commits if commits else 0.0,
            apiserver_post_ms=api_post_ms,
        )
        steps.append(step)
        st = step.stats
        log(
            f"  {offered:,}/s offered: {step.achieved:,.0f}/s accepted; POST p50 {st.get('p50', 0):.1f} ms, "
            f"p99 {st.get('p99', 0):.1f} ms, max {st.get('max', 0):.1f} ms; {out.sent:,} sent, "
            f"{out.accepted:,} accepted (operator counter +{step.counted:,.0f}), {out.failed} errors "
            f"{out.statuses}; operator {cpu:.2f} cores, vegeta {out.cpu_cores:.2f} cores; "
            f"{commits:,.0f} journal commits, mean write {step.commit_ms:.1f} ms "
            f"(kube-apiserver {step.apiserver_post_ms:.1f} ms)"
            + ("" if step.sustained else " -- NOT sustained")
        )
        if step.counted != out.accepted:
            log(f"  WARNING: the operator counted {step.counted:,.0f} accepted, the answers {out.accepted:,}")
        await wait_drained(cluster)
        if not step.kept_up:
            break
    sustained = [s for s in steps if s.sustained]
    best = sustained[-1] if sustained else steps[0]
    key = f"ingestion.w{count}"
    res.add(f"{key}.signals_per_sec", best.achieved if sustained else 0.0, "signals/s", "higher")
    kept_up = [s.achieved for s in steps if s.kept_up]
    res.add(f"{key}.kept_up_per_sec", max(kept_up, default=0.0), "signals/s", "higher")
    res.add(f"{key}.post_p50_ms", best.stats.get("p50", 0), "ms", "lower")
    res.add(f"{key}.post_p99_ms", best.stats.get("p99", 0), "ms", "lower")
    res.add(f"{key}.post_max_ms", best.stats.get("max", 0), "ms", "lower")
    res.add(f"{key}.errors", sum(s.out.failed for s in steps), "requests", "lower")
    res.add(f"{key}.operator_cpu_cores", best.cpu_cores, "cores", None)
    if best.out.accepted:
        res.add(
            f"{key}.operator_cpu_ms_per_signal",
            best.cpu_cores * 1000 / best.achieved if best.achieved else 0.0,
            "ms",
            "lower",
        )
    res.samples[f"post_w{count}_ms"] = best.out.latency_ms
    res.details[key] = {
        "sustained_rate": best.rate if sustained else 0,
        "steps": [
            {
                "offered_per_sec": s.rate,
                "accepted_per_sec": round(s.achieved, 1),
                "sustained": s.sustained,
                "sent": s.out.sent,
                "ok_200": s.out.ok,
                "accepted": s.out.accepted,
                "accepted_counter_delta": s.counted,
                "post_p50_ms": round(s.stats.get("p50", 0), 2),
                "post_p99_ms": round(s.stats.get("p99", 0), 2),
                "post_max_ms": round(s.stats.get("max", 0), 2),
                "statuses": s.out.statuses,
                "errors": s.out.errors,
                "operator_cpu_cores": round(s.cpu_cores, 3),
                "journal_commits": s.commits,
                "journal_commit_mean_ms": round(s.commit_ms, 2),
                "apiserver_configmap_post_ms": round(s.apiserver_post_ms, 2),
                **loadgen_cpu(s.out),
            }
            for s in steps
        ],
    }


async def wait_drained(cluster: Cluster, wait_s: float = 30.0) -> None:
    """Until the operator has no journaled signal left to fold (the next step starts clean)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        text = await asyncio.to_thread(fetch_metrics_text, cluster.signals_url)
        if sample_value(text, "aitrust_signal_backlog") == 0:
            return
        await asyncio.sleep(0.5)
    log(f"  WARNING: signals still waiting to be folded after {wait_s:.0f}s")


async def enforcement(cfg: Config, res: Results, cluster: Cluster, count: int) -> None:
    """Trials of signal -> enforcement while a background stream hits the other workloads."""
    assert cluster.operator is not None and cluster.opa is not None
    everyone = [estate.workload(i, cluster.per_namespace) for i in range(count)]
    # Trial targets are spread over the namespaces; distinct when there are enough workloads.
    pool_size = cfg.trials if count >= 2 * cfg.trials else count // 2
    stride = count / pool_size
    pool = [everyone[int(k * stride)] for k in range(pool_size)]
    chosen = {w.index for w in pool}
    noise = [w for w in everyone if w.index not in chosen]
    tracker = PolicyTracker(cluster.api)
    probe = OpaProbe(cluster.opa.url)
    await tracker.start()
    log(f"signal -> enforcement @ {count} workloads: waiting until every workload is enforced and allowed")
    await wait_ready(tracker, probe, everyone, wait_s=300)
    log(
        f"  {cfg.trials} trials over {len(pool)} target workloads"
        + (" (reset between uses)" if len(pool) < cfg.trials else " (each used once)")
        + f"; background {cfg.noise_rate:.0f} signals/s over {len(noise)} others"
    )
    # Enough bodies for the trial budget and 2 minutes more; the stream is stopped after the trials.
    noise_targets = await asyncio.to_thread(
        signal_targets,
        cfg,
        f"noise-w{count}",
        cluster.signals_url,
        noise,
        math.ceil(cfg.noise_rate * (cfg.trial_budget + 120)),
    )
    noise_proc, noise_results = vegeta.start(
        cfg.workdir,
        f"vegeta-noise-w{count}",
        noise_targets,
        TOKEN,
        workers=200,
        per_sec=cfg.noise_rate,
    )
    await asyncio.sleep(3)  # the stream reaches steady state before the first trial
    if not noise_proc.alive():
        raise RuntimeError(f"the background stream exited:\n{noise_proc.log_tail()}")
    pid = cluster.operator.pid
    prof = Profiler(cfg, f"enforcement-w{count}", pid)
    cpu0, wall0 = cpu_seconds(pid), time.monotonic()
    try:
        out: TrialResults = await run_trials(
            cluster.api, tracker, probe, cluster.signals_url, pool, cfg.trials, log, budget_s=cfg.trial_budget
        )
    finally:
        cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - wall0)
        prof.stop()
        await tracker.stop()
        await probe.aclose()
        bg = await vegeta.finish(noise_proc, noise_results, noise_targets, 40, terminate=True)
    if bg.ran_out:
        log("  WARNING: the background stream used every target body and stopped early")
    # Open loop: when every worker is busy vegeta sends late rather than skipping.
    behind = max(0, round(cfg.noise_rate * bg.sending_seconds) + 1 - bg.sent)
    key = f"enforcement.w{count}"
    stats = summarise(out.total_ms)
    for name in ("p50", "p95", "p99", "mean", "max"):
        res.add(f"{key}.{name}_ms", stats[name], "ms", "lower")
    for label, samples in (
        ("networkpolicy", out.networkpolicy_ms),
        ("opa", out.opa_ms),
        ("post", out.post_ms),
    ):
        if samples:
            ordered = sorted(samples)
            res.add(f"{key}.{label}_p50_ms", percentile(ordered, 0.5), "ms", "lower")
            res.add(f"{key}.{label}_p99_ms", percentile(ordered, 0.99), "ms", "lower")
    if out.recovery_ms:
        res.add(f"{key}.recovery_p50_ms", percentile(sorted(out.recovery_ms), 0.5), "ms", "lower")
    res.add(f"{key}.trials", len(out.total_ms), "trials", None)
    res.add(f"{key}.failures", len(out.failures), "trials", None)
    res.add(f"{key}.failed_fraction", len(out.failures) / max(1, len(out.total_ms)), "fraction", "lower")
    res.add(f"{key}.trial_timeout_ms", TRIAL_TIMEOUT_S * 1000, "ms", None)
    res.add(f"{key}.background_signals_per_sec", rate(bg.accepted, bg.seconds), "signals/s", None)
    res.add(f"{key}.background_errors", bg.failed, "requests", "lower")
    res.add(f"{key}.operator_cpu_cores", cpu, "cores", None)
    res.samples[f"enforcement_w{count}_ms"] = out.total_ms
    res.details[key] = {
        "stopped_early": out.stopped_early,
        "failures": out.failures[:20],
        "background": {
            "loadgen": vegeta.describe(),
            "sent": bg.sent,
            "accepted": bg.accepted,
            "statuses": bg.statuses,
            "errors": bg.errors,
            "behind_schedule": behind,
            "ran_out_of_targets": bg.ran_out,
            **loadgen_cpu(bg),
        },
    }
    log(
        f"  p50 {stats['p50']:.0f} ms, p95 {stats['p95']:.0f} ms, p99 {stats['p99']:.0f} ms, "
        f"max {stats['max']:.0f} ms; {len(out.failures)} failures; "
        f"background {res.metrics[key + '.background_signals_per_sec']['value']:.0f}/s; "
        f"operator {cpu:.2f} cores"
    )


async def cold_start(cfg: Config, res: Results, cluster: Cluster) -> None:
    n = cluster.workloads
    log(f"cold start @ {n} workloads: starting OPA and the operator")
    profilers: list[Profiler] = []
    before = await cluster.api.text("/metrics")
    out = await coldstart.measure(
        cluster,
        log,
        wait_s=cfg.cold_wait,
        on_spawn=lambda pid: profilers.append(Profiler(cfg, f"cold-w{n}", pid)),
    )
    for prof in profilers:
        prof.stop()
    key = f"cold_start.w{n}"
    res.add(f"{key}.converged", float(out.converged), "bool", "higher")
    res.details[key] = {"converged": out.converged, "progress": out.progress}
    res.add(f"{key}.seconds", out.total_s, "s", "lower")
    res.add(f"{key}.synced_s", out.synced_s, "s", "lower")
    res.add(f"{key}.status_s", out.status_s, "s", "lower")
    res.add(f"{key}.networkpolicies_s", out.networkpolicies_s, "s", "lower")
    res.add(f"{key}.opa_s", out.opa_s, "s", "lower")
    res.add(f"{key}.workloads_per_sec", out.statuses_done / out.total_s, "workloads/s", "higher")
    res.add(f"{key}.peak_rss_mb", out.peak_rss_mb, "MB", "lower")
    # API writes per workload: a second status write or policy update per workload shows here.
    after = await cluster.api.text("/metrics")
    writes = {
        "status_patches": ("PATCH", "aiworkloads"),
        "networkpolicy_creates": ("POST", "networkpolicies"),
        "networkpolicy_updates": ("PUT", "networkpolicies"),
    }
    per_workload = {}
    for name, (verb, resource) in writes.items():
        count = request_latency(after, verb, resource)[0] - request_latency(before, verb, resource)[0]
        per_workload[name] = round(count / n, 3)
    res.details[key]["api_writes_per_workload"] = per_workload
    log(f"  API writes per workload: {per_workload}")
    log(
        f"  {'converged' if out.converged else 'NOT converged (' + out.progress + ')'} "
        f"in {out.total_s:.1f}s (synced {out.synced_s:.1f}s, statuses {out.status_s:.1f}s, "
        f"NetworkPolicies {out.networkpolicies_s:.1f}s, OPA {out.opa_s:.1f}s); "
        f"peak RSS {out.peak_rss_mb:.0f} MB"
    )


def record_rss(res: Results, cluster: Cluster, key: str) -> None:
    if cluster.operator is not None and cluster.operator.alive():
        mem = memory_kb(cluster.operator.pid)
        res.add(f"{key}.operator_peak_rss_mb", mem["VmHWM"] / 1024, "MB", "lower")


async def phase_small(cfg: Config, res: Results) -> None:
    cluster = await Cluster(
        cfg.workdir / "small", log, per_namespace=cfg.per_namespace, operator_src=cfg.operator_src
    ).start()
    try:
        cluster.start_opa()
        await cluster.grow(1)
        proc = cluster.spawn_operator()
        await cluster.wait_synced(proc)
        tracker = PolicyTracker(cluster.api)
        assert cluster.opa is not None
        probe = OpaProbe(cluster.opa.url)
        await tracker.start()
        await wait_ready(tracker, probe, [estate.workload(0, cluster.per_namespace)], 60)
        await tracker.stop()
        await probe.aclose()
        if "ingestion" in cfg.only:
            await client_ceiling(cfg, res, cluster)
            await ingestion(cfg, res, cluster, 1)
        await cluster.grow(cfg.small)
        if "enforcement" in cfg.only:
            await enforcement(cfg, res, cluster, cfg.small)
        if "ingestion" in cfg.only:
            await ingestion(cfg, res, cluster, cfg.small)
        record_rss(res, cluster, f"estate.w{cfg.small}")
    finally:
        await cluster.stop()


async def phase_large(cfg: Config, res: Results, count: int, cold_only: bool) -> None:
    cluster = await Cluster(
        cfg.workdir / f"w{count}", log, per_namespace=cfg.per_namespace, operator_src=cfg.operator_src
    ).start()
    try:
        await cluster.grow(count)
        if "cold" in cfg.only and count in cfg.cold:
            await cold_start(cfg, res, cluster)
        else:
            # Measure on a converged estate, not while the first reconciles still run.
            log(f"starting OPA and the operator; waiting until all {count} workloads converge")
            out = await coldstart.measure(cluster, log, wait_s=cfg.cold_wait)
            log(f"  {'converged' if out.converged else 'NOT converged'} in {out.total_s:.1f}s")
        if not cold_only:
            if "enforcement" in cfg.only:
                await enforcement(cfg, res, cluster, count)
            if "ingestion" in cfg.only:
                await ingestion(cfg, res, cluster, count)
            record_rss(res, cluster, f"estate.w{count}")
    finally:
        await cluster.stop()


def phase_opa(cfg: Config, res: Results) -> None:
    log("OPA decisions with 10,000 workloads of data")
    out = opa_decisions.measure(cfg.workdir)
    server, trip, ev = summarise(out.server_ms), summarise(out.roundtrip_ms), summarise(out.eval_ms)
    res.add("opa.decision_p50_ms", server["p50"], "ms", "lower")
    res.add("opa.decision_p99_ms", server["p99"], "ms", "lower")
    res.add("opa.eval_p99_ms", ev["p99"], "ms", "lower")
    res.add("opa.roundtrip_p50_ms", trip["p50"], "ms", "lower")
    res.add("opa.roundtrip_p99_ms", trip["p99"], "ms", "lower")
    res.add("opa.data_load_s", out.load_s, "s", "lower")
    res.add("opa.data_mb", out.data_bytes / 1e6, "MB", None)
    res.add("opa.decisions", len(out.server_ms), "decisions", None)
    res.samples["opa_server_ms"] = out.server_ms
    res.samples["opa_roundtrip_ms"] = out.roundtrip_ms
    log(
        f"  server p50 {server['p50']:.2f} ms, p99 {server['p99']:.2f} ms (eval p99 {ev['p99']:.2f} ms); "
        f"round trip p99 {trip['p99']:.2f} ms; {out.data_bytes / 1e6:.1f} MB loaded in {out.load_s:.2f}s"
    )


def run_json(script: str, *args: str) -> dict[str, Any] | None:
    path = ROOT / "bench" / script
    if not path.exists():
        log(f"  {script} does not exist: skipped")
        return None
    proc = subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        log(f"  {script} failed ({proc.returncode}): {proc.stderr[-2000:]}")
        return None
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def phase_offline(cfg: Config, res: Results) -> None:
    if "scoring" in cfg.only:
        log("scoring: bench/bench_scoring.py")
        out = run_json("bench_scoring.py")
        if out:
            res.add("scoring.evals_per_sec", out["scoring_evals_per_sec"], "evaluations/s", "higher")
            res.add("scoring.median_evals_per_sec", out["median_evals_per_sec"], "evaluations/s", "higher")
            res.add("scoring.state_bytes", out["state_bytes"], "bytes", "lower")
            res.add("scoring.calibration_loop_ms", out["calibration_loop_ms"], "ms", None)
            for key in ("operator_evals_per_sec", "operator_uncached_evals_per_sec"):
                if key in out:
                    res.add(f"scoring.{key}", out[key], "evaluations/s", "higher")
            log(
                f"  {out['scoring_evals_per_sec']:,} score evaluations/s, "
                f"{out.get('operator_evals_per_sec', 0):,} operator evaluations/s (best window, one core)"
            )
    if "scan" in cfg.only:
        log("offline scan: bench/bench_scan.py")
        out = run_json("bench_scan.py")
        if out:
            res.add("scan.manifests_per_sec", out["manifests_per_sec"], "manifests/s", "higher")
            res.add("scan.seconds", out["seconds"], "s", "lower")
            res.add("scan.manifests", out["scan_manifests"], "manifests", None)
            log(
                f"  {out['scan_manifests']:,} manifests in {out['seconds']:.1f}s "
                f"({out['manifests_per_sec']:,.0f}/s)"
            )


# --- output -------------------------------------------------------------------------------------


def machine(kube_version: str, loadavg_at_start: list[float]) -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    opa = subprocess.run([find_binary("opa"), "version"], capture_output=True, text=True).stdout.splitlines()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "kube_apiserver": kube_version,
        "opa": opa[0].removeprefix("Version: ") if opa else "",
        "loadavg_at_start": loadavg_at_start,
    }


def render_png(doc: dict[str, Any], path: Path) -> None:
    """The figure, from a results document alone (so `--replot` can redraw an old run)."""
    samples, metrics, info = doc["samples"], doc["metrics"], doc["machine"]

    def series(prefix: str) -> dict[str, list[float]]:
        found = {
            int(k[len(prefix) : -3]): v
            for k, v in samples.items()
            if k.startswith(prefix) and k.endswith("_ms")
        }
        return {f"{n:,} workloads": found[n] for n in sorted(found)}

    def value(name: str) -> Any:
        return metrics.get(name, {}).get("value")

    throughput = {
        int(name.split(".")[1][1:]): m["value"]
        for name, m in metrics.items()
        if name.startswith("ingestion.w") and name.endswith(".signals_per_sec")
    }
    cold = {
        int(name.split(".")[1][1:]): (
            m["value"],
            value(name.replace(".seconds", ".peak_rss_mb")) or 0.0,
            bool(value(name.replace(".seconds", ".converged"))),
        )
        for name, m in metrics.items()
        if name.startswith("cold_start.w") and name.endswith(".seconds")
    }
    plot.render(
        path,
        enforcement=series("enforcement_w"),
        post=series("post_w"),
        opa={
            "server time": samples.get("opa_server_ms", []),
            "round trip (Python client)": samples.get("opa_roundtrip_ms", []),
        },
        throughput=throughput,
        client_ceiling=value("ingestion.client_ceiling_per_sec"),
        cold_start=cold,
        trial_timeout_ms=TRIAL_TIMEOUT_S * 1000,
        subtitle=f"{doc['date']}, {info['nproc']} CPUs, kube-apiserver {info['kube_apiserver']}, "
        f"load avg {info['loadavg_at_start'][0]:.1f} -> {info.get('loadavg_at_end', [0])[0]:.1f}",
    )


def write_outputs(cfg: Config, res: Results, info: dict[str, Any], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    info["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    targets = evaluate_targets(TARGETS, res.metrics)
    doc = {
        "schema": SCHEMA,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - _T0, 1),
        "machine": info,
        "config": {
            "trials": cfg.trials,
            "small": cfg.small,
            "large": cfg.large,
            "cold": cfg.cold,
            "ingest_seconds": cfg.ingest_seconds,
            "ingest_clients": cfg.ingest_concurrency,
            "ingest_rates": cfg.ingest_rates,
            "ingest_p99_ms": INGEST_P99_MS,
            "ingestion.loadgen": vegeta.describe() if {"ingestion", "enforcement"} & cfg.only else None,
            "background_rate": cfg.noise_rate,
            "workloads_per_namespace": cfg.per_namespace,
            "phases": sorted(cfg.only),
            "operator_src": str(cfg.operator_src) if cfg.operator_src else None,
        },
        "targets": targets,
        "metrics": res.metrics,
        # Distributions for plots and later comparison, thinned to 1,000 quantiles each.
        "samples": {k: [round(x, 3) for x in thin(v)] for k, v in res.samples.items()},
        "details": res.details,
    }
    latest, previous = out_dir / "latest.json", out_dir / "previous.json"
    old: dict[str, Any] | None = None
    if latest.exists():
        old = json.loads(latest.read_text())
        shutil.move(latest, previous)
    latest.write_text(json.dumps(doc, indent=1) + "\n")

    render_png(doc, out_dir / "latest.png")

    print()
    print("=== targets ===")
    for t in targets:
        mark = {True: "PASS", False: "FAIL", None: "n/a "}[t["pass"]]
        value = "-" if t["value"] is None else f"{t['value']:g}"
        print(f"  {mark}  {t['label']}: {value} {t['op']} {t['limit']:g}  [{t['metric']}]")
    print()
    if old is None:
        print("=== no previous run to compare with ===")
        for line in format_comparison(compare_metrics({}, res.metrics)):
            print("  " + line)
    else:
        print(
            f"=== latest against previous ({old.get('date', '?')}): "
            "new/old, + better, - WORSE, = within 5% ==="
        )
        for line in format_comparison(compare_metrics(old.get("metrics", {}), res.metrics)):
            print("  " + line)
    print()
    print(
        f"wrote {latest} and {out_dir / 'latest.png'}"
        + (f"; the previous run is in {previous}" if old else "")
    )


# --- main ---------------------------------------------------------------------------------------

PHASES = {"scoring", "scan", "opa", "enforcement", "ingestion", "cold"}


def parse_args() -> Config:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=200, help="signal -> enforcement trials per estate size")
    p.add_argument(
        "--trial-budget", type=float, default=150.0, help="seconds per estate size after which trials stop"
    )
    p.add_argument("--cold-wait", type=float, default=240.0, help="seconds a cold start may take at most")
    p.add_argument("--small", type=int, default=100, help="workloads of the small estate")
    p.add_argument("--large", type=int, default=1000, help="workloads of the large estate")
    p.add_argument("--cold", default="1000,5000", help="estate sizes of the cold-start runs")
    p.add_argument("--ingest-seconds", type=float, default=10.0)
    p.add_argument(
        "--ingest-clients", type=int, default=64, help="closed-loop connections of the client-ceiling run"
    )
    p.add_argument(
        "--ingest-rates",
        default=",".join(map(str, INGEST_RATES)),
        help="open-loop signals/s tried in turn until one is not sustained",
    )
    p.add_argument("--background-rate", type=float, default=200.0, help="noise signals/s during trials")
    p.add_argument("--per-namespace", type=int, default=100, help="AIWorkloads per namespace")
    p.add_argument(
        "--only", default=",".join(sorted(PHASES)), help=f"comma-separated subset of {sorted(PHASES)}"
    )
    p.add_argument("--output-dir", type=Path, default=RESULTS)
    p.add_argument("--replot", action="store_true", help="only redraw latest.png from latest.json")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, profiles)")
    p.add_argument("--py-spy", help="path of py-spy: profile the operator during each phase")
    p.add_argument(
        "--operator-src",
        type=Path,
        help="directory holding an `aitrust` package to run as the operator instead (A/B a change)",
    )
    args = p.parse_args()
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    if only - PHASES:
        p.error(f"unknown phases: {sorted(only - PHASES)}")
    workdir = Path(tempfile.mkdtemp(prefix="aitrust-bench-"))
    cfg = Config(
        trials=args.trials,
        trial_budget=args.trial_budget,
        cold_wait=args.cold_wait,
        small=args.small,
        large=args.large,
        cold=[int(x) for x in args.cold.split(",") if x],
        ingest_seconds=args.ingest_seconds,
        ingest_concurrency=args.ingest_clients,
        ingest_rates=[int(x) for x in args.ingest_rates.split(",") if x],
        noise_rate=args.background_rate,
        per_namespace=args.per_namespace,
        only=only,
        workdir=workdir,
        py_spy=args.py_spy,
        keep=args.keep,
        output_dir=args.output_dir,
        operator_src=args.operator_src,
        replot=args.replot,
    )
    return cfg


async def main_async(cfg: Config, res: Results) -> None:
    if {"enforcement", "ingestion"} & cfg.only:
        vegeta.binary()  # fail now, not after minutes of setup, when the load generator is missing
        await phase_small(cfg, res)
    if {"enforcement", "ingestion", "cold"} & cfg.only:
        await phase_large(cfg, res, cfg.large, cold_only=False)
    for n in cfg.cold:
        if "cold" in cfg.only and n != cfg.large:
            await phase_large(cfg, res, n, cold_only=True)


def main() -> int:
    cfg = parse_args()
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    if cfg.replot:
        shutil.rmtree(cfg.workdir, ignore_errors=True)
        render_png(json.loads((cfg.output_dir / "latest.json").read_text()), cfg.output_dir / "latest.png")
        print(f"wrote {cfg.output_dir / 'latest.png'}")
        return 0
    log(f"aitrust bench: phases {sorted(cfg.only)}; work directory {cfg.workdir}")
    res = Results()
    try:
        phase_offline(cfg, res)
        if "opa" in cfg.only:
            phase_opa(cfg, res)
        asyncio.run(main_async(cfg, res))
    finally:
        if cfg.keep:
            log(f"work directory kept: {cfg.workdir}")
        else:
            shutil.rmtree(cfg.workdir, ignore_errors=True)
    write_outputs(cfg, res, machine(_kube_version(), load_at_start), cfg.output_dir)
    log("done")
    return 0


def _kube_version() -> str:
    proc = subprocess.run([find_binary("kube-apiserver"), "--version"], capture_output=True, text=True)
    return proc.stdout.strip().removeprefix("Kubernetes ")


if __name__ == "__main__":
    raise SystemExit(main())
