"""vegeta (Go HTTP load generator) POSTing Falco alerts at the signal API.

Load comes from vegeta rather than a Python client because a Python client costs too much CPU
on the 2-core reference machine: the aiohttp generator this replaced topped out near 2,800
requests/s against a server that does nothing and needed about one core at 2,000 requests/s,
the core the operator needs. Closed loop, vegeta costs 80-115 us of CPU per request there (it
drives 10,000-15,000 requests/s against the null server); an open-loop stream of 200/s costs it
about 0.17 of a core, about what the Python stream cost.

Every request carries its own event (a fresh ``uuid``: the operator de-duplicates by it, and a
duplicate is acknowledged but not accepted), round-robin over the target workloads. The bodies
are written to a file of vegeta JSON targets before the attack, which reads it lazily. Measured
against the former aiohttp null server, that cost about 115 us of CPU per request (vegeta alone,
nothing else runs during the attack) where streaming the same targets from a Python process on
stdin cost about 150 us (vegeta and the feeder together). Lazy reading also ends the attack when
the file ends, where a target list read up front would wrap around into duplicates.

Results are vegeta's per-request records (``vegeta encode -to=csv``): start time, latency,
status code, error and response body; the body says how many signals were accepted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import functools
import io
import json
import math
import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.lib import estate

from aitrust.testing.processes import ManagedProcess
from aitrust.testing.testbin import MissingBinaryError, find_binary

VERSION = "v12.13.0"
SIGNAL_PATH = "/v1/signals/falco"
# What vegeta records for the request that found the lazily read target file at its end.
END_OF_TARGETS = "no targets to attack"
_ACCEPTED = re.compile(rb'"accepted"\s*:\s*(\d+)')


@functools.cache
def binary() -> str:
    """Path of the pinned vegeta; raises (never skips) when it is missing or another version."""
    try:
        path = find_binary("vegeta")
    except MissingBinaryError as exc:
        raise MissingBinaryError(
            f"{exc}; vegeta is installed only for the bench: `make bench`, or "
            "`TESTBIN_ONLY=vegeta bash hack/testbin.sh`"
        ) from exc
    out = subprocess.run([path, "-version"], capture_output=True, text=True, timeout=30).stdout
    found = next(
        (line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Version:")), ""
    )
    if found != VERSION:
        raise MissingBinaryError(
            f"{path} is vegeta {found or '(unknown version)'}, not {VERSION}; "
            "remove it and run `TESTBIN_ONLY=vegeta bash hack/testbin.sh`"
        )
    return path


def describe() -> str:
    return f"vegeta {VERSION}"


def rate_flag(per_sec: float) -> str:
    """vegeta's ``-rate`` for ``per_sec`` requests/s (its frequency is an integer)."""
    if per_sec <= 0:
        return "0"
    if float(per_sec).is_integer():
        return f"{int(per_sec)}/1s"
    return f"{round(per_sec * 1000)}/1000s"


def write_targets(
    path: Path,
    url: str,
    workloads: Sequence[estate.Workload],
    count: int,
    rule: str = estate.NOISE_RULE,
    priority: str = "Notice",
) -> Path:
    """``count`` vegeta JSON targets, one distinct Falco event each, round-robin over ``workloads``."""
    if not workloads:
        raise ValueError("no target workloads")
    # Only the body varies; base64 needs no JSON escaping.
    prefix = json.dumps({"method": "POST", "url": url.rstrip("/") + SIGNAL_PATH})[:-1] + ', "body": "'
    with path.open("w") as out:
        for n in range(count):
            event = estate.falco_event(workloads[n % len(workloads)], rule, priority)
            body = base64.b64encode(json.dumps(event, separators=(",", ":")).encode()).decode()
            out.write(f'{prefix}{body}"}}\n')
    return path


def target_count(seconds: float, per_sec_bound: float) -> int:
    """Bodies for ``seconds`` at twice ``per_sec_bound`` requests/s (the attack stops at the last)."""
    return math.ceil(2 * seconds * per_sec_bound)


def start(
    workdir: Path,
    name: str,
    targets: Path,
    token: str,
    *,
    workers: int,
    per_sec: float = 0,
    seconds: float = 0,
) -> tuple[ManagedProcess, Path]:
    """Start an attack; ``per_sec`` 0 is closed loop (``workers`` clients back to back).

    Open loop (``per_sec`` > 0) starts with a few workers and adds some, up to ``workers``, while
    the server is slow. ``seconds`` 0 runs until the targets end or the process is stopped
    (SIGTERM: vegeta finishes the requests in flight and writes their results).
    """
    results = workdir / f"{name}.bin"
    argv = [
        binary(),
        "attack",
        "-format=json",
        f"-targets={targets}",
        "-lazy",
        f"-rate={rate_flag(per_sec)}",
        f"-max-workers={workers}",
        f"-workers={workers if per_sec <= 0 else min(workers, 10)}",
        f"-duration={seconds:g}s",
        "-timeout=30s",
        "-header",
        f"Authorization: Bearer {token}",
        "-header",
        "Content-Type: application/json",
        f"-output={results}",
    ]
    return ManagedProcess(name, argv, workdir).start(), results


@dataclass(frozen=True)
class Hit:
    """One request: when it started (ns since the epoch), how long it took, what came back."""

    started_ns: int
    latency_ns: int
    code: int
    error: str
    accepted: int

    @property
    def done_ns(self) -> int:
        return self.started_ns + self.latency_ns


def parse_csv(text: str) -> list[Hit]:
    """Hits from ``vegeta encode -to=csv`` (timestamp, code, latency, bytes out/in, error, body, ...)."""
    hits = []
    for row in csv.reader(io.StringIO(text)):
        if not row:
            continue
        code = int(row[1])
        accepted = 0
        if code == 200:
            found = _ACCEPTED.search(base64.b64decode(row[6]))
            accepted = int(found.group(1)) if found else 0
        hits.append(Hit(int(row[0]), int(row[2]), code, row[5], accepted))
    return hits


def read_results(results: Path) -> list[Hit]:
    proc = subprocess.run(
        [binary(), "encode", "-to=csv", str(results)], capture_output=True, text=True, timeout=300
    )
    if proc.returncode != 0:
        raise RuntimeError(f"vegeta encode {results} failed: {proc.stderr[-2000:]}")
    return parse_csv(proc.stdout)


@dataclass
class Summary:
    """The accepted-signal figures of one attack."""

    sent: int = 0
    ok: int = 0  # 200 answers, whether or not they accepted their signal
    accepted: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)  # transport errors and non-200 answers
    ran_out: bool = False  # the attack read every target (it may have stopped early)
    per_sec: float = 0.0  # accepted signals/s after the warm-up
    latency_ms: list[float] = field(default_factory=list)  # of the requests that were accepted
    cpu_s: float = 0.0  # vegeta's own CPU time, when known
    first_ns: int = 0
    last_start_ns: int = 0
    last_done_ns: int = 0
    # Requests sent from here on are the measured ones (``latency_ms``, ``measured_*``); the
    # ones before only settle the server, though they count in ``sent`` and ``accepted`` too.
    measured_from_ns: int = 0
    measured_sent: int = 0
    measured_accepted: int = 0

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    @property
    def cpu_cores(self) -> float:
        return self.cpu_s / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_us_per_request(self) -> float:
        return self.cpu_s * 1e6 / self.sent if self.sent else 0.0

    @property
    def seconds(self) -> float:
        """From the first request sent to the last answer."""
        return max(0, self.last_done_ns - self.first_ns) / 1e9

    @property
    def sending_seconds(self) -> float:
        """From the first request sent to the last."""
        return max(0, self.last_start_ns - self.first_ns) / 1e9

    @property
    def measured_sending_seconds(self) -> float:
        """From the first measured request sent to the last."""
        return max(0, self.last_start_ns - self.measured_from_ns) / 1e9


def summarise(hits: Sequence[Hit], warm_s: float = 1.0, settle_s: float = 0.0) -> Summary:
    """Counts, and the sustained accepted rate: acks after the first ``warm_s`` of acks, per second.

    Latencies and the ``measured_*`` counts cover the requests sent ``settle_s`` or more after the
    first one: what the server does once it has settled into the load.
    """
    out = Summary()
    real = [h for h in hits if not (h.code == 0 and h.error == END_OF_TARGETS)]
    out.ran_out = len(real) < len(hits)
    out.sent = len(real)
    if real:
        out.first_ns = min(h.started_ns for h in real)
    out.measured_from_ns = out.first_ns + int(settle_s * 1e9)
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    done: list[tuple[int, int]] = []
    for h in real:
        statuses[str(h.code)] += 1
        if h.code != 200:
            errors[h.error[:120] or str(h.code)] += 1
            continue
        out.ok += 1
        if h.accepted:
            out.accepted += h.accepted
            if h.started_ns >= out.measured_from_ns:
                done.append((h.done_ns, h.accepted))
                out.latency_ms.append(h.latency_ns / 1e6)
                out.measured_accepted += h.accepted
    out.measured_sent = sum(1 for h in real if h.started_ns >= out.measured_from_ns)
    out.statuses, out.errors = dict(statuses), dict(errors)
    if real:
        out.last_start_ns = max(h.started_ns for h in real)
        out.last_done_ns = max(h.done_ns for h in real)
    done.sort()
    if done:
        warm = done[0][0] + int(warm_s * 1e9)
        window = [(t, n) for t, n in done if t >= warm]
        if window:
            span = (window[-1][0] - warm) / 1e9
            out.per_sec = sum(n for _, n in window) / span if span > 0 else 0.0
    return out


def wait(proc: ManagedProcess, timeout_s: float, *, terminate: bool = False) -> float:
    """Wait for an attack to end (``terminate``: ask it to stop first); its CPU seconds.

    Raises with the attack's log when it failed or outlived ``timeout_s``.
    """
    assert proc.proc is not None
    if terminate and proc.proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)  # vegeta finishes the requests in flight, then exits
    deadline = time.monotonic() + timeout_s
    # wait4 rather than Popen.wait: it also reports the CPU the process used.
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.stop()
            raise RuntimeError(f"{proc.name} still running after {timeout_s:.0f}s:\n{proc.log_tail()}")
        time.sleep(0.05)
    proc.proc.returncode = code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{proc.name} exited with {code}:\n{proc.log_tail()}")
    return usage.ru_utime + usage.ru_stime


async def finish(
    proc: ManagedProcess,
    results: Path,
    targets: Path,
    timeout_s: float,
    *,
    terminate: bool = False,
    settle_s: float = 0.0,
) -> Summary:
    """Wait for an attack (``terminate``: ask it to stop first), drop its targets file, summarise."""
    try:
        cpu_s = await asyncio.to_thread(wait, proc, timeout_s, terminate=terminate)
    finally:
        proc.stop()
        await asyncio.to_thread(targets.unlink, missing_ok=True)
    out = summarise(await asyncio.to_thread(read_results, results), settle_s=settle_s)
    out.cpu_s = cpu_s
    return out
