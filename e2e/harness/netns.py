"""Simulated pods: network namespaces on a Linux bridge, reached through real sockets.

Only interfaces created here carry the test subnet, and pods get no default route, so no
packet of the suite can leave the machine.
"""

from __future__ import annotations

import ctypes
import errno
import ipaddress
import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from aitrust.testing.processes import ManagedProcess
from e2e.harness import apps
from e2e.harness.cleanup import Cleanup, RunState, sh

T = TypeVar("T")
_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def in_netns(netns: str, fn: Callable[[], T]) -> T:
    """Call ``fn`` on a fresh thread that joined ``netns``; sockets it opens live in that namespace.

    setns(CLONE_NEWNET) changes only the calling thread, so the test process itself stays put.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            with open(f"/run/netns/{netns}", "rb") as fh:
                if _libc.setns(fh.fileno(), _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({netns}): {errno.errorcode.get(err, err)}")
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"netns-{netns}", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


class Outcome(StrEnum):
    CONNECTED = "connected"
    REFUSED = "refused"  # RST or ICMP port-unreachable: an iptables REJECT
    TIMEOUT = "timeout"  # silently dropped
    UNREACHABLE = "unreachable"

    @property
    def blocked(self) -> bool:
        return self is not Outcome.CONNECTED


def tcp_connect(ip: str, port: int, timeout: float) -> Outcome:
    """One new TCP connection, closed at once: the handshake is what the firewall judges."""
    return Outcome(apps.connect(ip, port, timeout))


@dataclass(frozen=True)
class HttpResult:
    status: int
    body: dict[str, Any]


def http_request(
    ip: str, port: int, method: str, path: str, body: Any = None, timeout: float = 5.0
) -> HttpResult:
    result = apps.request(ip, port, method, path, body, timeout)
    return HttpResult(result["status"], result["body"])


@dataclass
class PodNetNamespace:
    """A pod's network: its own namespace, a veth on the bridge and one IPv4 address."""

    name: str  # the Pod object's name
    namespace: str  # the Kubernetes namespace
    netns: str
    ip: str
    log_dir: Path
    host_if: str = ""
    processes: list[ManagedProcess] = field(default_factory=list)

    def spawn(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> ManagedProcess:
        """A real process inside the pod's network namespace (``ip netns exec`` execs in place)."""
        proc = ManagedProcess(
            f"{self.namespace}-{self.name}-{name}",
            ["ip", "netns", "exec", self.netns, *argv],
            self.log_dir,
            env={**os.environ, **(env or {})},
        ).start()
        self.processes.append(proc)
        return proc

    def connect(self, ip: str, port: int, timeout: float = 0.5) -> Outcome:
        return in_netns(self.netns, lambda: tcp_connect(ip, port, timeout))

    def http(
        self, ip: str, port: int, method: str = "GET", path: str = "/", body: Any = None, timeout: float = 5.0
    ) -> HttpResult:
        return in_netns(self.netns, lambda: http_request(ip, port, method, path, body, timeout))

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()


@dataclass
class PodNetwork:
    """A bridge with an address on the host (the node IP) and netns pods behind it."""

    run_id: str
    subnet: ipaddress.IPv4Network
    cleanup: Cleanup
    state: RunState
    log_dir: Path
    bridge: str = ""
    pods: dict[str, PodNetNamespace] = field(default_factory=dict)
    _next_host: int = 2
    _next_link: int = 0

    def __post_init__(self) -> None:
        self.bridge = f"aebr{self.run_id[:8]}"
        self.node_ip = str(self.subnet.network_address + 1)

    def create(self) -> PodNetwork:
        self._check_subnet_free()
        self.state.links.append(self.bridge)
        self.state.save()
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        self.cleanup.push(f"delete bridge {self.bridge}", lambda: self._delete_link(self.bridge))
        sh("ip", "addr", "add", f"{self.node_ip}/{self.subnet.prefixlen}", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")
        return self

    def _check_subnet_free(self) -> None:
        routes = json.loads(sh("ip", "-j", "-4", "route", "show").stdout or "[]")
        for route in routes:
            dst = route.get("dst", "")
            if dst == "default":
                continue
            if ipaddress.ip_network(dst if "/" in dst else f"{dst}/32", strict=False).overlaps(self.subnet):
                raise RuntimeError(
                    f"test subnet {self.subnet} overlaps route {dst} on {route.get('dev')}; "
                    "set AITRUST_E2E_SUBNET to a free private /24"
                )

    def add(self, namespace: str, name: str) -> PodNetNamespace:
        """Plumb a new pod: netns, veth pair (host end on the bridge), address, loopback."""
        if self._next_host >= self.subnet.num_addresses - 1:
            raise RuntimeError(f"test subnet {self.subnet} is full")
        ip = str(self.subnet.network_address + self._next_host)
        self._next_host += 1
        idx = self._next_link
        self._next_link += 1
        netns = f"aitrust-{self.run_id}-{idx}"
        host_if = f"ae{self.run_id[:8]}p{idx}"  # <= 15 characters
        self.state.netns.append(netns)
        self.state.links.append(host_if)
        self.state.save()
        sh("ip", "netns", "add", netns)
        self.cleanup.push(f"delete netns {netns}", lambda: self._delete_netns(netns))
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", netns)
        self.cleanup.push(f"delete link {host_if}", lambda: self._delete_link(host_if))
        sh("ip", "link", "set", host_if, "master", self.bridge, "up")
        sh("ip", "-n", netns, "addr", "add", f"{ip}/{self.subnet.prefixlen}", "dev", "eth0")
        sh("ip", "-n", netns, "link", "set", "eth0", "up")
        sh("ip", "-n", netns, "link", "set", "lo", "up")
        pod = PodNetNamespace(
            name=name, namespace=namespace, netns=netns, ip=ip, log_dir=self.log_dir, host_if=host_if
        )
        self.cleanup.push(f"stop processes of pod {namespace}/{name}", pod.stop)
        self.pods[f"{namespace}/{name}"] = pod
        self._wait_link_ready(netns)
        return pod

    def remove_namespace(self, namespace: str) -> None:
        """Tear down the pods of one Kubernetes namespace now (their undo steps stay idempotent)."""
        for key in [k for k, p in self.pods.items() if p.namespace == namespace]:
            pod = self.pods.pop(key)
            pod.stop()
            self._delete_netns(pod.netns)  # takes the veth pair with it
            self._delete_link(pod.host_if)

    def _wait_link_ready(self, netns: str, timeout: float = 5.0) -> None:
        # A fresh bridge port passes frames only once it is forwarding (no STP here: at once).
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = sh("ip", "-n", netns, "-j", "link", "show", "eth0").stdout
            if '"operstate":"UP"' in out.replace(" ", ""):
                return
            time.sleep(0.02)
        raise RuntimeError(f"eth0 in {netns} did not come up")

    @staticmethod
    def _delete_link(name: str) -> None:
        # A veth also goes, asynchronously, when its peer's netns is deleted: only "still there" is an error.
        deleted = sh("ip", "link", "delete", name, check=False)
        if deleted.returncode != 0 and sh("ip", "link", "show", name, check=False).returncode == 0:
            raise RuntimeError(f"cannot delete link {name}: {deleted.stderr.strip()}")

    @staticmethod
    def _delete_netns(name: str) -> None:
        if Path(f"/run/netns/{name}").exists():
            sh("ip", "netns", "delete", name)
