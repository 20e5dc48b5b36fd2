"""`make demo`: the whole product on a local control plane, in one command.

``python -m aitrust.demo up [--teardown]`` and ``python -m aitrust.demo down``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from aitrust.testing.cluster import LocalControlPlane, OpaServer, wait_until
from aitrust.testing.payloads import cloudtrail_llmjacking, falco_shell_event
from aitrust.testing.processes import ManagedProcess, free_port, wait_for
from aitrust.testing.testbin import find_binary

ROOT = Path(__file__).resolve().parents[2]
STATE_DIR = Path(os.environ.get("AITRUST_DEMO_DIR", ROOT / ".demo"))
ESTATE = ROOT / "examples" / "demo-estate.yaml"
NS = "ai-demo"
ROLE = "arn:aws:iam::123456789012:role/bedrock-app"


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


@contextlib.contextmanager
def progress(what: str, every: float = 5.0) -> Iterator[None]:
    """A line every few seconds while a slow step runs, so the demo never looks stuck."""
    done = threading.Event()
    started = time.monotonic()

    def tick() -> None:
        while not done.wait(every):
            say(f"    ... {what} ({time.monotonic() - started:.0f}s)")

    ticker = threading.Thread(target=tick, name="demo progress", daemon=True)
    ticker.start()
    try:
        yield
    finally:
        done.set()
        ticker.join()


class Demo:
    def __init__(self) -> None:
        self.cp: LocalControlPlane | None = None
        self.opa: OpaServer | None = None
        self.operator: ManagedProcess | None = None
        self.token = secrets.token_urlsafe(24)
        self.signals = ""
        self.metrics = ""

    def kubectl(self, *args: str, input: str | None = None) -> str:
        assert self.cp is not None
        out = subprocess.run(
            [find_binary("kubectl"), f"--kubeconfig={self.cp.kubeconfig}", *args],
            capture_output=True,
            text=True,
            check=False,
            input=input,
        )
        if out.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout

    def workload(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.kubectl("get", "aiw", name, "-n", NS, "-o", "json"))
        return result

    def decision(self, workload: str, kind: str, target: str) -> dict[str, Any]:
        assert self.opa is not None
        body = {
            "input": {
                "subject": {"namespace": NS, "workload": workload},
                "resource": {"kind": kind, "namespace": NS, "name": target},
                # The action vocabulary is per kind: models are invoked, data is read or written.
                "action": "invoke" if kind == "ModelEndpoint" else "read",
            }
        }
        result: dict[str, Any] = httpx.post(
            f"{self.opa.url}/v1/data/aitrust/authz/decision", json=body
        ).json()
        decision: dict[str, Any] = result.get("result", {})
        return decision

    def egress_rules(self, workload: str) -> int:
        policy = json.loads(
            self.kubectl("get", "networkpolicy", f"aitrust-{workload}", "-n", NS, "-o", "json")
        )
        return len(policy["spec"].get("egress", []))

    # --- steps -----------------------------------------------------------------------

    def start(self) -> None:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        say("1/6 starting etcd, kube-apiserver (RBAC on), kube-controller-manager and OPA on loopback ...")
        started = time.monotonic()
        with progress("waiting for the control plane to answer"):
            cp = LocalControlPlane(workdir=STATE_DIR / "cluster", keep_workdir=True, detached=True)
            self.cp = cp.start()
        say(f"    control plane up ({time.monotonic() - started:.1f}s); starting OPA ...")
        self.opa = OpaServer(workdir=STATE_DIR / "opa")
        with progress("waiting for OPA"):
            self.opa.start()
        assert self.opa.process is not None
        self.opa.process.die_with_parent = False
        say(
            f"    control plane {self.cp.version} at {self.cp.server}, OPA at {self.opa.url} "
            f"({time.monotonic() - started:.1f}s)"
        )
        self.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
        self.kubectl("wait", "--for=condition=Established", "crd", "-l", "app.kubernetes.io/part-of=aitrust")
        say("    CRDs installed and established")
        self.kubectl("create", "namespace", NS)
        wait_until(lambda: self.kubectl("get", "sa", "default", "-n", NS) is not None, timeout=30)
        say(f"    namespace {NS} ready")
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "signal-tokens"},
            "data": {"falcosidekick": base64.b64encode(self.token.encode()).decode()},
        }
        self.kubectl("apply", "-n", NS, "-f", "-", input=json.dumps(secret))
        signals_port, metrics_port = free_port(), free_port()
        self.signals = f"http://127.0.0.1:{signals_port}"
        self.metrics = f"http://127.0.0.1:{metrics_port}/metrics"
        self.operator = ManagedProcess(
            "aitrust-operator",
            [
                sys.executable,
                "-m",
                "aitrust.cli",
                "run",
                f"--kubeconfig={self.cp.kubeconfig}",
                f"--opa-url={self.opa.url}",
                f"--signals-port={signals_port}",
                "--signals-host=127.0.0.1",
                f"--signals-token-secret={NS}/signal-tokens",
                f"--metrics-port={metrics_port}",
                "--metrics-host=127.0.0.1",
                "--resync-seconds=5",
            ],
            STATE_DIR,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            die_with_parent=False,
        ).start()
        op = self.operator
        say(f"    operator started (pid {op.pid}), waiting for it to sync ...")
        with progress("waiting for the operator to sync"):
            wait_for("operator sync", lambda: "aitrust operator synced" in op.log_path.read_text(), 60, [op])
        self._save_state()
        say(f"    operator running (pid {op.pid}); signal API {self.signals}; metrics {self.metrics}")

    def apply_estate(self) -> None:
        say(f"2/6 applying the AI estate ({ESTATE.relative_to(ROOT)}) into namespace {NS} ...")
        self.kubectl("apply", "-n", NS, "-f", str(ESTATE))

        seen = (-1, -1)

        def scored() -> bool:
            nonlocal seen
            items = json.loads(self.kubectl("get", "aiw", "-n", NS, "-o", "json"))["items"]
            done = sum(1 for i in items if (i.get("status") or {}).get("matchedPods"))
            if (done, len(items)) != seen:
                seen = (done, len(items))
                say(f"    {done}/{len(items)} AIWorkloads scored")
            return len(items) == 5 and done == 5

        with progress("waiting for the operator to score the estate"):
            wait_until(scored, timeout=60, interval=0.5)

    def show_table(self, title: str) -> None:
        say(title)
        print(self.kubectl("get", "aiw", "-n", NS), flush=True)

    def fire_signals(self) -> tuple[str, str]:
        pod = json.loads(self.kubectl("get", "pods", "-n", NS, "-l", "app=llama-server", "-o", "json"))[
            "items"
        ][0]
        falco = falco_shell_event(NS, pod["metadata"]["name"])
        before = self.decision("llama-server", "DataSource", "training-data")
        rules_before = self.egress_rules("llama-server")
        say(
            "4/6 Falco: 'Terminal shell in container' in the llama-server model server"
            " -> POST /v1/signals/falco"
        )
        posted = time.monotonic()
        r = httpx.post(
            f"{self.signals}/v1/signals/falco",
            json=falco,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
        )
        say(
            f"    {r.status_code} in {(time.monotonic() - posted) * 1000:.0f} ms:"
            f" accepted={r.json().get('accepted')}"
        )
        wait_until(
            lambda: self.decision("llama-server", "DataSource", "training-data").get("allow") is False,
            timeout=10,
            interval=0.05,
        )
        after = self.decision("llama-server", "DataSource", "training-data")
        wl = self.workload("llama-server")["status"]
        say(
            f"5/6 llama-server: tier {wl['tier']}, trust {wl['trustScore']} "
            f"({(time.monotonic() - posted) * 1000:.0f} ms after the POST)"
        )
        say(
            f"    NetworkPolicy aitrust-llama-server: {rules_before} egress rules"
            f" -> {self.egress_rules('llama-server')}"
        )
        say(
            f"    OPA llama-server -> DataSource training-data: allow={before.get('allow')} -> "
            f"allow={after.get('allow')} ({after.get('reason')})"
        )

        cloudtrail = cloudtrail_llmjacking(ROLE)
        before = self.decision("bedrock-app", "ModelEndpoint", "bedrock-claude")
        say(
            "    CloudTrail: LLMjacking sequence from the bedrock-app IRSA role"
            " -> POST /v1/signals/cloudtrail"
        )
        posted = time.monotonic()
        r = httpx.post(
            f"{self.signals}/v1/signals/cloudtrail",
            json=cloudtrail,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
        )
        say(
            f"    {r.status_code} in {(time.monotonic() - posted) * 1000:.0f} ms:"
            f" accepted={r.json().get('accepted')}"
        )
        wait_until(
            lambda: self.decision("bedrock-app", "ModelEndpoint", "bedrock-claude").get("allow") is False,
            timeout=10,
            interval=0.05,
        )
        after = self.decision("bedrock-app", "ModelEndpoint", "bedrock-claude")
        wl = self.workload("bedrock-app")["status"]
        say(
            f"    bedrock-app: tier {wl['tier']}, trust {wl['trustScore']}; OPA -> bedrock-claude: "
            f"allow={before.get('allow')} -> allow={after.get('allow')}"
        )
        why = [f"{f['id']} {f['points']:+d}" for f in wl["factors"] if f["source"] == "signal"][:6]
        say(f"    why: {', '.join(why)}")
        return str(falco["uuid"]), str(cloudtrail["Records"][0]["eventID"])

    def show_shadow(self) -> None:
        def found() -> list[Any]:
            r = httpx.get(
                f"{self.signals}/v1/inventory/shadow", headers={"Authorization": f"Bearer {self.token}"}
            )
            result: list[Any] = r.json().get("shadowAI", [])
            return result

        say("6/6 shadow AI (running, but declared by no AIWorkload):")
        with progress("waiting for the shadow-AI inventory to classify the running pods"):
            shadows = wait_until(found, timeout=30, interval=0.5)
        for s in shadows:
            print(
                f"    {s['namespace']}/{s['kind']}/{s['name']}: {s['category']} "
                f"(confidence {s['confidence']:.2f}) - {'; '.join(s['evidence'][:3])}",
                flush=True,
            )

    def _save_state(self) -> None:
        assert self.cp is not None and self.opa is not None and self.opa.process is not None
        assert self.operator is not None
        pids = [p.pid for p in self.cp.processes] + [self.opa.process.pid, self.operator.pid]
        state = {"kubeconfig": str(self.cp.kubeconfig), "pids": pids}
        (STATE_DIR / "state.json").write_text(json.dumps(state, indent=2))


def up(teardown: bool) -> int:
    if (STATE_DIR / "state.json").exists():
        say("a demo is already up; stopping it first")
        down()
    demo = Demo()
    try:
        demo.start()
        demo.apply_estate()
        demo.show_table("3/6 trust table:")
        demo.fire_signals()
        demo.show_table("    trust table after the signals:")
        demo.show_shadow()
    except BaseException:
        say(f"demo failed; logs in {STATE_DIR}")
        if demo.operator is not None:
            print(demo.operator.log_tail(40), flush=True)
        down()
        raise
    if teardown:
        down()
        return 0
    assert demo.cp is not None
    say(f"cluster left running: export KUBECONFIG={demo.cp.kubeconfig}")
    say("try: kubectl get aiw -n ai-demo; stop everything with: make demo-down")
    return 0


def down() -> int:
    state_file = STATE_DIR / "state.json"
    if state_file.exists():
        pids = json.loads(state_file.read_text())["pids"]
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in reversed(pids):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, sig)
            time.sleep(1 if sig == signal.SIGTERM else 0)
        say("demo stopped")
    else:
        say("no demo is running")
    shutil.rmtree(STATE_DIR, ignore_errors=True)
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
