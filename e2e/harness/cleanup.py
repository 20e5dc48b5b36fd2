"""Teardown that runs once, in reverse order, even when the test run dies half way."""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

STATE_DIR = Path(os.environ.get("AITRUST_E2E_STATE_DIR", "/run/aitrust-e2e"))


def sh(*argv: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a host tool; fail with its stderr rather than a bare exit code."""
    proc = subprocess.run(list(argv), capture_output=True, text=True, input=input, timeout=60)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


@dataclass
class Cleanup:
    """A LIFO stack of undo steps; runs at most once, from a fixture finaliser or at exit."""

    steps: list[tuple[str, Callable[[], None]]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        atexit.register(self.run)

    def push(self, what: str, undo: Callable[[], None]) -> None:
        self.steps.append((what, undo))

    def run(self) -> None:
        while self.steps:
            what, undo = self.steps.pop()
            try:
                undo()
            except Exception as exc:  # keep undoing the rest
                self.errors.append(f"{what}: {exc}")
                print(f"[e2e cleanup] {what}: {exc}", file=sys.stderr)


@dataclass
class RunState:
    """What this run created on the host, on disk, so that a later run can undo a SIGKILLed one."""

    run_id: str
    path: Path = Path()
    links: list[str] = field(default_factory=list)
    netns: list[str] = field(default_factory=list)
    kube_router: bool = False
    bridge_nf_before: str | None = None  # the sysctl value to put back, if this run changed it
    state_dir: Path = STATE_DIR

    def __post_init__(self) -> None:
        self.path = self.state_dir / f"{self.run_id}.json"

    def save(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        data = {
            "pid": os.getpid(),
            "links": self.links,
            "netns": self.netns,
            "kube_router": self.kube_router,
            "bridge_nf_before": self.bridge_nf_before,
        }
        self.path.write_text(json.dumps(data))

    def forget(self) -> None:
        self.path.unlink(missing_ok=True)


@contextlib.contextmanager
def host_lock() -> Iterator[None]:
    """One e2e run per host: kube-router's chain and ipset names are fixed, not per run."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with (STATE_DIR / "lock").open("a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            raise RuntimeError(
                f"another e2e run holds {STATE_DIR / 'lock'} (pid {fh.read().strip() or '?'}); "
                "the data-path suite cannot share a host"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            yield
        finally:
            fh.truncate(0)
            fcntl.flock(fh, fcntl.LOCK_UN)


def sweep_stale_runs(
    flush_kube_router: Callable[[], None],
    restore_bridge_nf: Callable[[str], None],
    state_dir: Path = STATE_DIR,
) -> list[str]:
    """Undo what earlier runs left behind (they were SIGKILLed); call only while holding the host lock."""
    swept: list[str] = []
    for state_file in sorted(state_dir.glob("*.json")):
        try:
            data = json.loads(state_file.read_text())
        except (OSError, ValueError):
            state_file.unlink(missing_ok=True)
            continue
        for ns in data.get("netns", []):
            if sh("ip", "netns", "delete", ns, check=False).returncode == 0:
                swept.append(f"netns {ns}")
        for link in data.get("links", []):
            if sh("ip", "link", "delete", link, check=False).returncode == 0:
                swept.append(f"link {link}")
        if data.get("kube_router"):
            flush_kube_router()
            swept.append("kube-router chains and ipsets")
        if (before := data.get("bridge_nf_before")) is not None:
            restore_bridge_nf(str(before))
            swept.append(f"bridge-nf-call-iptables={before}")
        state_file.unlink(missing_ok=True)
    return swept
