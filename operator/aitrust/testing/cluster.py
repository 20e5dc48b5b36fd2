"""Start a real control plane (etcd, kube-apiserver with RBAC, kube-controller-manager) on loopback."""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aitrust.testing.pki import KeyPair, Pki
from aitrust.testing.processes import ManagedProcess, free_port, wait_for
from aitrust.testing.testbin import find_binary

# Node controllers would evict the pods of simulated nodes; the rest (GC, namespaces, ...) run.
KCM_CONTROLLERS = "*,-node-lifecycle-controller,-node-ipam-controller"


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(path: Path, server: str, ca: Path, client: KeyPair, user: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "aitrust-local", "cluster": {"server": server, "certificate-authority-data": _b64(ca)}}
        ],
        "users": [
            {
                "name": user,
                "user": {"client-certificate-data": _b64(client.cert), "client-key-data": _b64(client.key)},
            }
        ],
        "contexts": [{"name": "aitrust-local", "context": {"cluster": "aitrust-local", "user": user}}],
        "current-context": "aitrust-local",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@dataclass
class LocalControlPlane:
    """etcd + kube-apiserver + kube-controller-manager in a temporary directory."""

    workdir: Path | None = None
    keep_workdir: bool = False
    detached: bool = False  # outlive this process (make demo), instead of dying with it
    processes: list[ManagedProcess] = field(default_factory=list)
    api_port: int = 0
    kubeconfig: Path = Path()
    version: str = ""

    def start(self, timeout: float = 120.0) -> LocalControlPlane:
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="aitrust-cp-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        logs = self.workdir / "logs"
        logs.mkdir(exist_ok=True)
        try:
            self._start(logs, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, logs: Path, timeout: float) -> None:
        assert self.workdir is not None
        pki = Pki(self.workdir / "pki")
        serving = pki.issue("apiserver", "kube-apiserver", server=True)
        admin = pki.issue("admin", "aitrust-admin", "system:masters")
        kcm_cert = pki.issue("kcm", "system:kube-controller-manager")
        sa = pki.service_account_keys()

        etcd_client, etcd_peer = free_port(), free_port()
        etcd = self._spawn(
            "etcd",
            [
                find_binary("etcd"),
                "--name=local",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{etcd_client}",
                f"--advertise-client-urls=http://127.0.0.1:{etcd_client}",
                f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-cluster=local=http://127.0.0.1:{etcd_peer}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
            logs,
        )
        wait_for(
            "etcd health",
            lambda: (
                b"true" in urllib.request.urlopen(f"http://127.0.0.1:{etcd_client}/health", timeout=2).read()
            ),
            timeout,
            [etcd],
        )

        self.api_port = free_port()
        apiserver = self._spawn(
            "kube-apiserver",
            [
                find_binary("kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{etcd_client}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                "--endpoint-reconciler-type=none",
                f"--secure-port={self.api_port}",
                f"--cert-dir={self.workdir / 'apiserver-certs'}",
                f"--tls-cert-file={serving.cert}",
                f"--tls-private-key-file={serving.key}",
                f"--client-ca-file={pki.ca}",
                "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={sa.cert}",
                f"--service-account-signing-key-file={sa.key}",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--allow-privileged=true",
                "--enable-priority-and-fairness=false",
                "--v=1",
            ],
            logs,
        )
        server = f"https://127.0.0.1:{self.api_port}"
        self.kubeconfig = write_kubeconfig(self.workdir / "admin.kubeconfig", server, pki.ca, admin, "admin")
        ctx = ssl.create_default_context(cafile=str(pki.ca))
        ctx.load_cert_chain(str(admin.cert), str(admin.key))

        def ready() -> bool:
            with urllib.request.urlopen(f"{server}/readyz", context=ctx, timeout=2) as r:  # noqa: S310
                return bool(r.status == 200)

        wait_for("kube-apiserver /readyz", ready, timeout, [etcd, apiserver])
        with urllib.request.urlopen(f"{server}/version", context=ctx, timeout=5) as r:  # noqa: S310
            self.version = json.loads(r.read())["gitVersion"]

        kcm_kubeconfig = write_kubeconfig(
            self.workdir / "kcm.kubeconfig", server, pki.ca, kcm_cert, "system:kube-controller-manager"
        )
        self._spawn(
            "kube-controller-manager",
            [
                find_binary("kube-controller-manager"),
                f"--kubeconfig={kcm_kubeconfig}",
                f"--authentication-kubeconfig={kcm_kubeconfig}",
                f"--authorization-kubeconfig={kcm_kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                f"--cert-dir={self.workdir / 'kcm-certs'}",
                "--leader-elect=false",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={sa.key}",
                f"--root-ca-file={pki.ca}",
                f"--controllers={KCM_CONTROLLERS}",
                "--concurrent-gc-syncs=5",
                "--v=1",
            ],
            logs,
        )
        # The default ServiceAccount appearing proves the controllers run with working credentials.
        wait_for(
            "kube-controller-manager (default ServiceAccount)",
            lambda: self._get(ctx, "/api/v1/namespaces/default/serviceaccounts/default") is not None,
            timeout,
            self.processes,
        )

    def _spawn(self, name: str, argv: list[str], logs: Path) -> ManagedProcess:
        proc = ManagedProcess(name, argv, logs, die_with_parent=not self.detached).start()
        self.processes.append(proc)
        return proc

    def _get(self, ctx: ssl.SSLContext, path: str) -> Any:
        with urllib.request.urlopen(f"https://127.0.0.1:{self.api_port}{path}", context=ctx, timeout=5) as r:
            return json.loads(r.read())

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    def process(self, name: str) -> ManagedProcess:
        return next(p for p in self.processes if p.name == name)

    def stop_apiserver(self) -> None:
        """Simulate an outage: the API server process goes away; etcd keeps the data."""
        self.process("kube-apiserver").stop()

    def start_apiserver(self, timeout: float = 60.0) -> None:
        proc = self.process("kube-apiserver").start()
        assert self.workdir is not None
        ctx = ssl.create_default_context(cafile=str(self.workdir / "pki" / "ca.crt"))
        ctx.load_cert_chain(str(self.workdir / "pki" / "admin.crt"), str(self.workdir / "pki" / "admin.key"))

        def ready() -> bool:
            with urllib.request.urlopen(f"{self.server}/readyz", context=ctx, timeout=2) as r:  # noqa: S310
                return bool(r.status == 200)

        wait_for("kube-apiserver /readyz after restart", ready, timeout, [proc])
        # After a long outage client-go's reflectors back off for up to 30 s before re-listing, so
        # the controllers (default ServiceAccount, GC) would lag behind; restart them instead.
        kcm = self.process("kube-controller-manager")
        kcm.stop()
        kcm.start()
        wait_for(
            "kube-controller-manager after API restart",
            lambda: self._get(ctx, "/api/v1/namespaces/default/serviceaccounts/default") is not None,
            timeout,
            [proc, kcm],
        )

    def check_alive(self) -> None:
        for p in self.processes:
            if not p.alive():
                raise RuntimeError(f"{p.name} died:\n{p.log_tail()}")

    def stop(self) -> None:
        for p in reversed(self.processes):
            p.stop()
        self.processes.clear()
        if self.workdir is not None and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalControlPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class OpaServer:
    """A real OPA server on a free loopback port."""

    workdir: Path
    port: int = 0
    process: ManagedProcess | None = None
    extra_args: list[str] = field(default_factory=list)

    def start(self, timeout: float = 30.0) -> OpaServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.process = ManagedProcess(
            f"opa-{self.port}",
            [
                find_binary("opa"),
                "run",
                "--server",
                f"--addr=127.0.0.1:{self.port}",
                "--log-level=error",
                "--skip-version-check",
                *self.extra_args,
            ],
            self.workdir,
        ).start()

        def healthy() -> bool:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:  # noqa: S310
                return bool(r.status == 200)

        wait_for("OPA /health", healthy, timeout, [self.process])
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def restart(self) -> None:
        self.stop()
        self.start()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


def wait_until(check: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll ``check`` until it returns a truthy value, which is returned."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout}s (last value: {last!r})")
