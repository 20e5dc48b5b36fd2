"""kube-router in firewall-only mode: the real NetworkPolicy enforcer of the netns data plane."""

from __future__ import annotations

import os
import shlex
import shutil
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from aitrust.testing.processes import ManagedProcess, free_port, wait_for
from aitrust.testing.testbin import find_binary, testbin_dir
from e2e.harness.cleanup import sh

# Everything kube-router's network policy controller creates (filter table only).
CHAIN_PREFIXES = ("KUBE-ROUTER-", "KUBE-POD-FW-", "KUBE-NWPLCY-")
IPSET_PREFIXES = ("KUBE-SRC-", "KUBE-DST-", "TMP-", "inet6:KUBE-")
BUILTIN_CHAINS = ("INPUT", "FORWARD", "OUTPUT")
BRIDGE_NF = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
HOST_TOOLS = ("iptables", "iptables-save", "iptables-restore", "ipset", "ip")


def require_host_tools() -> None:
    """Fail (never skip) when the data plane cannot be built: `make test` runs hack/e2e-deps.sh."""
    missing = [t for t in HOST_TOOLS if shutil.which(t) is None]
    if missing:
        raise RuntimeError(f"missing {', '.join(missing)}: run hack/e2e-deps.sh (as root)")
    if os.geteuid() != 0:
        raise RuntimeError("the netns data plane needs root (network namespaces, iptables, ipset)")
    if not BRIDGE_NF.exists():
        sh("modprobe", "br_netfilter", check=False)
    if not BRIDGE_NF.exists():
        raise RuntimeError("br_netfilter is not available: bridged pod traffic would bypass iptables")


def enable_bridge_netfilter(sysctl: Path | None = None) -> str | None:
    """Make bridged traffic traverse iptables; returns the value to restore, or None if it was on."""
    sysctl = sysctl or BRIDGE_NF
    before = sysctl.read_text().strip()
    if before == "1":
        return None
    sysctl.write_text("1\n")
    return before


def restore_bridge_netfilter(before: str, sysctl: Path | None = None) -> None:
    (sysctl or BRIDGE_NF).write_text(f"{before}\n")


def kube_router_version() -> str:
    stamp = testbin_dir() / ".kube-router.version"
    return stamp.read_text().strip() if stamp.exists() else "(unstamped)"


def kube_router_chains() -> list[str]:
    out = sh("iptables-save", "-t", "filter").stdout
    return [
        line[1:].split()[0]
        for line in out.splitlines()
        if line.startswith(":") and line[1:].startswith(CHAIN_PREFIXES)
    ]


def kube_router_ipsets() -> list[str]:
    names = sh("ipset", "list", "-n").stdout.split()
    return [n for n in names if n.startswith(IPSET_PREFIXES)]


def flush_kube_router_state() -> None:
    """Remove every chain, jump and ipset kube-router made; safe to call when there are none."""
    for chain in BUILTIN_CHAINS:
        for rule in sh("iptables", "-t", "filter", "-S", chain).stdout.splitlines():
            parts = shlex.split(rule)
            if "-j" in parts and parts[parts.index("-j") + 1].startswith(CHAIN_PREFIXES):
                sh("iptables", "-t", "filter", "-D", *parts[1:])
    chains = kube_router_chains()
    for chain in chains:
        sh("iptables", "-t", "filter", "-F", chain)
    for chain in chains:
        sh("iptables", "-t", "filter", "-X", chain)
    for name in kube_router_ipsets():
        sh("ipset", "destroy", name, check=False)  # a set still referenced goes with its rule above
    leftovers = kube_router_chains() + kube_router_ipsets()
    if leftovers:
        raise RuntimeError(f"kube-router state left behind: {leftovers}")


@dataclass
class KubeRouter:
    """One kube-router process enforcing NetworkPolicies for the pods of ``node``."""

    kubeconfig: Path
    node: str
    log_dir: Path
    service_cidr: str = "10.0.0.0/24"
    process: ManagedProcess | None = None
    health_port: int = field(default_factory=free_port)

    def start(self, timeout: float = 60.0) -> KubeRouter:
        self.process = ManagedProcess(
            "kube-router",
            [
                find_binary("kube-router"),
                "--run-firewall=true",
                "--run-router=false",
                "--run-service-proxy=false",
                f"--kubeconfig={self.kubeconfig}",
                f"--hostname-override={self.node}",
                f"--service-cluster-ip-range={self.service_cidr}",
                f"--health-port={self.health_port}",
                "--metrics-port=0",
                f"--v={os.environ.get('AITRUST_E2E_KUBE_ROUTER_V', '1')}",
            ],
            self.log_dir,
            env={**os.environ, "NODE_NAME": self.node},
        ).start()
        wait_for("kube-router /healthz and its FORWARD chain", self._ready, timeout, [self.process])
        return self

    def _ready(self) -> bool:
        url = f"http://127.0.0.1:{self.health_port}/healthz"
        with urllib.request.urlopen(url, timeout=2) as r:
            healthy = bool(r.status == 200)
        return healthy and "KUBE-ROUTER-FORWARD" in kube_router_chains()

    def check_alive(self) -> None:
        if self.process is None or not self.process.alive():
            tail = self.process.log_tail() if self.process else "(never started)"
            raise RuntimeError(f"kube-router died:\n{tail}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
        flush_kube_router_state()
