"""One simulated node with real enforcement: netns pods on a bridge, policed by kube-router."""

from __future__ import annotations

import ipaddress
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aitrust.testing.processes import ManagedProcess, wait_for
from aitrust.testing.testbin import find_binary
from e2e.harness.cleanup import Cleanup, RunState, host_lock, sweep_stale_runs
from e2e.harness.kube import KubectlLike, apply, mark_running, pod_manifest, register_node
from e2e.harness.kuberouter import (
    KubeRouter,
    enable_bridge_netfilter,
    flush_kube_router_state,
    kube_router_chains,
    kube_router_ipsets,
    kube_router_version,
    require_host_tools,
    restore_bridge_netfilter,
)
from e2e.harness.netns import HttpResult, Outcome, PodNetNamespace, PodNetwork, in_netns, tcp_connect

APPS = Path(__file__).with_name("apps.py")
DEFAULT_SUBNET = "10.244.77.0/24"
MODEL_PORT = 8000
GATEWAY_PORT = 8080
STORE_PORT = 9000
OPA_PORT = 8181
# Longer than one SYN retransmission (1 s): a packet lost on a busy host is not a firewall drop.
PROBE_CONNECT_TIMEOUT = 1.5


class Pod(Protocol):
    """A running pod as the tests see it: an address, and real connections made from inside it."""

    namespace: str
    name: str

    @property
    def ip(self) -> str: ...

    def connect(self, target: Pod, port: int, timeout: float = 0.5) -> Outcome: ...

    def http(
        self, target: Pod, port: int, method: str = "GET", path: str = "/", body: Any = None
    ) -> HttpResult: ...


@dataclass
class ProbeResult:
    """Outcome of a probe loop; times are ``time.monotonic()`` of the test process."""

    started: float
    first_blocked: float | None = None
    outcome: Outcome | None = None
    attempts: int = 0
    connected: int = 0  # attempts that succeeded before the first failure


class DataPlane(Protocol):
    def describe(self) -> str: ...

    def log_tail(self) -> str: ...

    def close(self) -> None: ...

    def release(self, namespace: str) -> None:
        """A test is over: stop and remove the pods it created in ``namespace``."""

    def add_pod(
        self, namespace: str, name: str, labels: dict[str, str], spec: dict[str, Any] | None = None
    ) -> Pod: ...

    def add_model_server(self, namespace: str, name: str, labels: dict[str, str]) -> Pod:
        """A pod whose model server accepts connections on MODEL_PORT before this returns."""
        ...

    def add_datastore(
        self,
        namespace: str,
        name: str,
        labels: dict[str, str],
        resource: tuple[str, str],
        peers: dict[str, dict[str, str]],
    ) -> tuple[Pod, str]:
        """A data store behind a gateway (GATEWAY_PORT) that asks an OPA sidecar before answering.

        ``resource`` is the DataSource (namespace, name) it guards; ``peers`` maps client pod IPs
        to the OPA subject ({namespace, serviceAccount}). Returns the pod and the OPA URL the
        operator publishes to.
        """
        ...

    def probe_until_blocked(self, client: Pod, target: Pod, port: int) -> AbstractContextManager[ProbeResult]:
        """Open new connections in a loop until one is refused or dropped.

        Entered only once a first connection succeeded, so the block is known to come later.
        """
        ...


@dataclass
class NetnsPod:
    """A Pod object played by a network namespace on the node's bridge."""

    namespace: str
    name: str
    net: PodNetNamespace

    @property
    def ip(self) -> str:
        return self.net.ip

    def connect(self, target: Pod, port: int, timeout: float = 0.5) -> Outcome:
        return self.net.connect(target.ip, port, timeout)

    def http(
        self, target: Pod, port: int, method: str = "GET", path: str = "/", body: Any = None
    ) -> HttpResult:
        return self.net.http(target.ip, port, method, path, body)

    def run_app(self, name: str, *args: str) -> ManagedProcess:
        return self.net.spawn(name, [sys.executable, str(APPS), *args])


@dataclass
class NetnsDataPlane:
    """Owns the bridge, the Node object, kube-router and every pod; ``close`` undoes all of it."""

    kubectl: KubectlLike
    kubeconfig: Path
    log_dir: Path
    subnet: ipaddress.IPv4Network = field(
        default_factory=lambda: ipaddress.IPv4Network(os.environ.get("AITRUST_E2E_SUBNET", DEFAULT_SUBNET))
    )
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    cleanup: Cleanup = field(default_factory=Cleanup)
    network: PodNetwork | None = None
    kube_router: KubeRouter | None = None
    node: str = ""
    swept: list[str] = field(default_factory=list)

    def start(self) -> NetnsDataPlane:
        require_host_tools()
        find_binary("kube-router")  # fail before touching the host
        stack = ExitStack()
        stack.enter_context(host_lock())
        self.cleanup.push("release the host lock", stack.close)
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        self.swept = sweep_stale_runs(flush_kube_router_state, restore_bridge_netfilter)
        foreign = kube_router_chains() + kube_router_ipsets()
        if foreign:
            raise RuntimeError(
                f"kube-router state that no e2e run owns is present ({foreign[:5]}); "
                "is a real kube-router running on this host?"
            )
        state = RunState(self.run_id)
        self.cleanup.push("forget run state", state.forget)
        before = enable_bridge_netfilter()
        if before is not None:
            state.bridge_nf_before = before
            state.save()
            self.cleanup.push(
                f"restore bridge-nf-call-iptables={before}", lambda: restore_bridge_netfilter(before)
            )
        self.network = PodNetwork(self.run_id, self.subnet, self.cleanup, state, self.log_dir).create()
        self.node = f"e2e-node-{self.run_id}"
        register_node(self.kubectl, self.node, self.network.node_ip)
        self.cleanup.push(f"delete node {self.node}", self._delete_node)
        state.kube_router = True
        state.save()
        self.kube_router = KubeRouter(self.kubeconfig, self.node, self.log_dir)
        self.cleanup.push("stop kube-router and flush its chains and ipsets", self.kube_router.stop)
        self.kube_router.start()

    def _delete_node(self) -> None:
        self.kubectl.run("delete", "node", self.node, "--wait=false", check=False)

    def describe(self) -> str:
        assert self.network is not None
        swept = f"; swept from earlier runs: {', '.join(self.swept)}" if self.swept else ""
        return (
            f"netns pods on bridge {self.network.bridge} ({self.subnet}), node {self.node} "
            f"at {self.network.node_ip}, enforced by kube-router {kube_router_version()}{swept}"
        )

    def log_tail(self) -> str:
        if self.kube_router is None or self.kube_router.process is None:
            return "(kube-router not started)"
        return f"--- kube-router log ---\n{self.kube_router.process.log_tail(60)}"

    def close(self) -> None:
        self.cleanup.run()
        if self.cleanup.errors:
            raise RuntimeError("e2e teardown left work undone:\n" + "\n".join(self.cleanup.errors))

    def release(self, namespace: str) -> None:
        assert self.network is not None
        # No kubelet confirms deletion: force it, or the pods stay Terminating (and policed).
        self.kubectl.run(
            "delete",
            "pods",
            "--all",
            "-n",
            namespace,
            "--grace-period=0",
            "--force",
            "--wait=false",
            check=False,
        )
        self.network.remove_namespace(namespace)

    def add_pod(
        self, namespace: str, name: str, labels: dict[str, str], spec: dict[str, Any] | None = None
    ) -> NetnsPod:
        """Create the Pod object on this node, plumb its netns, then report it Running with its IP."""
        assert self.network is not None
        self._check_enforcer()
        apply(self.kubectl, namespace, pod_manifest(name, labels, self.node, spec))
        net = self.network.add(namespace, name)
        mark_running(self.kubectl, namespace, name, net.ip, self.network.node_ip)
        return NetnsPod(namespace, name, net)

    def add_model_server(self, namespace: str, name: str, labels: dict[str, str]) -> NetnsPod:
        p = self.add_pod(namespace, name, labels)
        proc = p.run_app("model", "model", f"--bind={p.ip}", f"--port={MODEL_PORT}")
        self._wait_listening(p, p.ip, MODEL_PORT, proc)
        return p

    def add_datastore(
        self,
        namespace: str,
        name: str,
        labels: dict[str, str],
        resource: tuple[str, str],
        peers: dict[str, dict[str, str]],
    ) -> tuple[NetnsPod, str]:
        p = self.add_pod(namespace, name, labels)
        store = p.run_app("store", "store", "--bind=127.0.0.1", f"--port={STORE_PORT}")
        self._wait_listening(p, "127.0.0.1", STORE_PORT, store)
        opa = p.net.spawn(
            "opa",
            [
                find_binary("opa"),
                "run",
                "--server",
                f"--addr=0.0.0.0:{OPA_PORT}",  # the sidecar's own gateway, and the operator over the bridge
                "--log-level=error",
                "--disable-telemetry",
            ],
        )
        self._wait_listening(p, "127.0.0.1", OPA_PORT, opa)
        peers_file = self.log_dir / f"{p.namespace}-{p.name}-peers.json"
        peers_file.write_text(json.dumps(peers))
        gateway = p.run_app(
            "gateway",
            "gateway",
            f"--bind={p.ip}",
            f"--port={GATEWAY_PORT}",
            f"--upstream=http://127.0.0.1:{STORE_PORT}",
            f"--opa=http://127.0.0.1:{OPA_PORT}",
            f"--peers={peers_file}",
            f"--resource-namespace={resource[0]}",
            f"--resource-name={resource[1]}",
        )
        self._wait_listening(p, p.ip, GATEWAY_PORT, gateway)
        return p, f"http://{p.ip}:{OPA_PORT}"

    @contextmanager
    def probe_until_blocked(self, client: Pod, target: Pod, port: int) -> Iterator[ProbeResult]:
        """A thread in the client's netns connects every 5 ms until one attempt fails.

        ``first_blocked`` is when the failing attempt began: the packet met the new rules then.
        """
        c = self._own(client)
        result = ProbeResult(started=time.monotonic())
        stop, live = threading.Event(), threading.Event()

        def loop() -> None:
            while not stop.is_set():
                began = time.monotonic()
                outcome = tcp_connect(target.ip, port, PROBE_CONNECT_TIMEOUT)
                result.attempts += 1
                if outcome.blocked:
                    result.first_blocked, result.outcome = began, outcome
                    live.set()
                    return
                result.connected += 1
                live.set()
                time.sleep(0.005)

        thread = threading.Thread(target=lambda: in_netns(c.net.netns, loop), daemon=True)
        thread.start()
        try:
            if not live.wait(10) or result.connected == 0:
                raise AssertionError(f"{c.name} -> {target.name}:{port} was not open when the probe began")
            yield result
        finally:
            stop.set()
            thread.join(5)

    def _own(self, pod: Pod) -> NetnsPod:
        assert isinstance(pod, NetnsPod), f"{pod!r} is not a pod of this data plane"
        return pod

    def _wait_listening(self, pod: NetnsPod, ip: str, port: int, proc: ManagedProcess) -> None:
        wait_for(
            f"{pod.namespace}/{pod.name} listening on {ip}:{port}",
            lambda: in_netns(pod.net.netns, lambda: tcp_connect(ip, port, 0.5)) is Outcome.CONNECTED,
            15,
            [proc],
        )

    def _check_enforcer(self) -> None:
        assert self.kube_router is not None
        self.kube_router.check_alive()
