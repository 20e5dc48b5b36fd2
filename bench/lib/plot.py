"""bench/results/latest.png: latency distributions and throughput against workload count."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from bench.lib.stats import cdf
from matplotlib.axes import Axes
from matplotlib.ticker import NullFormatter


def _cdf_panel(
    ax: Axes,
    series: Mapping[str, Sequence[float]],
    title: str,
    target: float | None,
    timeout: float | None = None,
) -> None:
    for label, samples in series.items():
        if samples:
            xs, ys = cdf(samples)
            ax.step(xs, ys, where="post", label=f"{label} (n={len(xs)})")
    if target is not None:
        ax.axvline(target, color="red", linestyle="--", linewidth=1, label=f"target {target:g} ms")
    if timeout is not None:
        ax.axvline(
            timeout, color="black", linestyle=":", linewidth=1, label="trial timeout (counted as failed)"
        )
    ax.axhline(0.99, color="grey", linestyle=":", linewidth=0.8)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())  # unlabelled minor ticks: labels overlap otherwise
    ax.set_xlabel("ms (log scale)")
    ax.set_ylabel("fraction of samples ≤ x")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")


def render(
    path: Path,
    *,
    enforcement: Mapping[str, Sequence[float]],
    post: Mapping[str, Sequence[float]],
    opa: Mapping[str, Sequence[float]],
    throughput: Mapping[int, float],
    client_ceiling: float | None,
    cold_start: Mapping[int, tuple[float, float, bool]],
    trial_timeout_ms: float,
    subtitle: str,
) -> None:
    """``throughput``: workloads -> signals/s; ``cold_start``: workloads -> (seconds, peak MB, converged)."""
    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    _cdf_panel(axes[0][0], enforcement, "signal POST → NetworkPolicy + OPA flipped", 250, trial_timeout_ms)
    _cdf_panel(axes[0][1], post, "signal POST → 2xx (sustained load)", 100)
    _cdf_panel(axes[0][2], opa, "OPA aitrust.authz decision, 10,000 workloads", 2)

    ax = axes[1][0]
    if throughput:
        xs = sorted(throughput)
        ax.plot(xs, [throughput[x] for x in xs], marker="o", label="accepted signals/s")
        for x in xs:
            ax.annotate(
                f"{throughput[x]:,.0f}",
                (x, throughput[x]),
                textcoords="offset points",
                xytext=(0, 6),
                ha="center",
                fontsize=8,
            )
        ax.axhline(2000, color="red", linestyle="--", linewidth=1, label="target 2,000/s")
        if client_ceiling:
            ax.axhline(
                client_ceiling, color="grey", linestyle=":", linewidth=1, label="load generator ceiling"
            )
        ax.set_xscale("log")
        ax.set_ylim(bottom=0)
    ax.set_xlabel("AIWorkloads (log scale)")
    ax.set_ylabel("signals/s")
    ax.set_title("ingestion throughput against workload count", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)

    ax = axes[1][1]
    if cold_start:
        xs = sorted(cold_start)
        secs = [cold_start[x][0] for x in xs]
        ax.plot(xs, secs, marker="o", color="tab:blue", label="seconds to converge")
        for x, sec in zip(xs, secs, strict=True):
            if not cold_start[x][2]:
                ax.annotate(
                    "gave up: not converged",
                    (x, sec),
                    textcoords="offset points",
                    xytext=(-130, -18),
                    fontsize=8,
                    color="tab:blue",
                )
        ax.axhline(60, color="red", linestyle="--", linewidth=1, label="target 60 s (5,000)")
        ax2 = ax.twinx()
        ax2.plot(xs, [cold_start[x][1] for x in xs], marker="^", color="tab:orange", label="peak RSS MB")
        ax2.axhline(250, color="tab:orange", linestyle=":", linewidth=1)
        ax2.set_ylabel("peak RSS (MB); dotted: 250 MB target")
        ax2.set_ylim(bottom=0)
        ax2.legend(fontsize=7, loc="upper right")
    ax.set_xlabel("AIWorkloads")
    ax.set_title("cold start against workload count", fontsize=10)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")

    ax = axes[1][2]
    top = max([300.0] + [max(v) for v in enforcement.values() if v]) * 1.02
    for label, samples in enforcement.items():
        if samples:
            ax.hist(samples, bins=[top * i / 40 for i in range(41)], alpha=0.5, label=f"{label}")
    ax.axvline(250, color="red", linestyle="--", linewidth=1)
    ax.set_xlabel("ms")
    ax.set_ylabel("trials")
    ax.set_title("signal → enforcement, histogram", fontsize=10)
    ax.legend(fontsize=7)

    fig.suptitle(f"aitrust make bench — {subtitle}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
