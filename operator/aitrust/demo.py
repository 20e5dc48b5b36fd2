"""`make demo`: a local control plane, the operator, and the sample AI estate.

``python -m aitrust.demo up [--teardown]`` and ``python -m aitrust.demo down``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from aitrust.testing.cluster import LocalControlPlane, wait_until
from aitrust.testing.processes import ManagedProcess, wait_for
from aitrust.testing.testbin import find_binary

ROOT = Path(__file__).resolve().parents[2]
STATE_DIR = Path(os.environ.get("AITRUST_DEMO_DIR", ROOT / ".demo"))
NAMESPACE = "ai-demo"


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def kubectl(kubeconfig: Path, *args: str) -> str:
    out = subprocess.run(
        [find_binary("kubectl"), f"--kubeconfig={kubeconfig}", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout


def up(teardown: bool) -> int:
    if (STATE_DIR / "state.json").exists():
        say("a demo is already up; stopping it first")
        down()
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    say("starting etcd, kube-apiserver (RBAC on) and kube-controller-manager on loopback ...")
    started = time.monotonic()
    cp = LocalControlPlane(workdir=STATE_DIR / "cluster", keep_workdir=True, detached=True).start()
    kc = cp.kubeconfig
    say(f"control plane {cp.version} ready at {cp.server} in {time.monotonic() - started:.1f}s")
    operator: ManagedProcess | None = None
    try:
        kubectl(kc, "apply", "--server-side", "-f", str(ROOT / "crds"))
        kubectl(kc, "wait", "--for=condition=Established", "crd", "-l", "app.kubernetes.io/part-of=aitrust")
        say("CRDs installed: AIWorkload, ModelEndpoint, DataSource, TrustPolicy")
        operator = ManagedProcess(
            "aitrust-operator",
            [sys.executable, "-m", "aitrust.cli", "run", f"--kubeconfig={kc}"],
            STATE_DIR,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            die_with_parent=False,
        ).start()
        wait_for(
            "operator sync",
            lambda: "aitrust operator synced" in operator.log_path.read_text(),
            60,
            [operator],
        )
        say(f"operator running (pid {operator.pid}, log {operator.log_path})")
        _save_state(cp, operator)
        kubectl(kc, "create", "namespace", NAMESPACE)
        wait_until(lambda: _has_default_sa(kc), timeout=30)
        kubectl(kc, "apply", "-n", NAMESPACE, "-f", str(ROOT / "crds" / "samples"))
        say(f"applied the sample estate into namespace {NAMESPACE}")
        wait_until(lambda: _all_reconciled(kc), timeout=30)
        print(kubectl(kc, "get", "aiw", "-A"), flush=True)
        print(
            kubectl(
                kc,
                "get",
                "aiw",
                "-A",
                "-o",
                "custom-columns=NAME:.metadata.name,READY:.status.conditions[0].reason,"
                "MESSAGE:.status.conditions[0].message",
            ),
            flush=True,
        )
    except BaseException:
        say(f"demo failed; logs in {STATE_DIR}")
        down()
        raise
    if teardown:
        down()
        return 0
    say(f"cluster left running. export KUBECONFIG={kc}")
    say("stop it with: make demo-down")
    return 0


def _has_default_sa(kc: Path) -> bool:
    try:
        kubectl(kc, "get", "sa", "default", "-n", NAMESPACE)
        return True
    except RuntimeError:
        return False


def _all_reconciled(kc: Path) -> bool:
    items = json.loads(kubectl(kc, "get", "aiw", "-n", NAMESPACE, "-o", "json"))["items"]
    return bool(items) and all(
        (i.get("status") or {}).get("observedGeneration") == i["metadata"]["generation"] for i in items
    )


def _save_state(cp: LocalControlPlane, operator: ManagedProcess) -> None:
    state = {
        "kubeconfig": str(cp.kubeconfig),
        "pids": [p.pid for p in cp.processes] + [operator.pid],
    }
    (STATE_DIR / "state.json").write_text(json.dumps(state, indent=2))


def down() -> int:
    state_file = STATE_DIR / "state.json"
    if not state_file.exists():
        say("no demo is running")
        shutil.rmtree(STATE_DIR, ignore_errors=True)
        return 0
    state = json.loads(state_file.read_text())
    for pid in reversed(state["pids"]):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    time.sleep(1)
    for pid in state["pids"]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    say("demo stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aitrust.demo")
    sub = parser.add_subparsers(dest="cmd", required=True)
    up_p = sub.add_parser("up")
    up_p.add_argument("--teardown", action="store_true", help="stop everything at the end")
    sub.add_parser("down")
    args = parser.parse_args(argv)
    return up(args.teardown) if args.cmd == "up" else down()


if __name__ == "__main__":
    raise SystemExit(main())
