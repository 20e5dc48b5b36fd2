"""A real OPA pulls the operator's signed bundle, verifies it, and refuses a tampered one."""

from __future__ import annotations

import io
import json
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from aitrust.testing.cluster import OpaServer, wait_until
from aitrust.testing.processes import free_port
from tests.conftest import Kubectl, OperatorFactory
from tests.integration.test_enforcement import apply, decision, estate


def _opa_config(path: Path, url: str, public_pem: str) -> Path:
    config = {
        "services": {"aitrust": {"url": url}},
        "bundles": {
            "aitrust": {
                "service": "aitrust",
                "resource": "bundles/aitrust.tar.gz",
                "polling": {"min_delay_seconds": 1, "max_delay_seconds": 2},
                "signing": {"keyid": "test-key"},
            }
        },
        "keys": {"test-key": {"algorithm": "ES256", "key": public_pem}},
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_opa_pulls_and_verifies_the_signed_bundle(
    kubectl: Kubectl, namespace: str, start_operator: OperatorFactory, tmp_path: Path
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    key_file = tmp_path / "signing.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    port = free_port()
    start_operator(
        f"--opa-bundle-port={port}",
        "--signals-host=127.0.0.1",
        f"--opa-bundle-signing-key-file={key_file}",
        "--opa-bundle-signing-alg=ES256",
        "--opa-bundle-key-id=test-key",
    )
    apply(kubectl, namespace, *estate(namespace))
    config = _opa_config(tmp_path / "opa.yaml", f"http://127.0.0.1:{port}", public_pem)
    opa = OpaServer(workdir=tmp_path / "opa", extra_args=[f"--config-file={config}"]).start()
    try:
        assert wait_until(lambda: decision(opa, namespace).get("allow") is True, timeout=30, interval=0.5)
    finally:
        opa.stop()

    # Tamper with the data after signing, and serve that instead.
    good = httpx.get(f"http://127.0.0.1:{port}/bundles/aitrust.tar.gz").content
    tampered = _tamper(good)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(tampered))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config = _opa_config(tmp_path / "opa-bad.yaml", f"http://127.0.0.1:{server.server_port}", public_pem)
    bad = OpaServer(workdir=tmp_path / "opa-bad", extra_args=[f"--config-file={config}"]).start()
    try:
        wait_until(
            lambda: "digest mismatch" in (bad.process.log_tail(200) if bad.process else ""), timeout=30
        )
        assert httpx.get(f"{bad.url}/health", params={"bundles": "true"}).status_code != 200
        assert decision(bad, namespace).get("allow") is not True
    finally:
        bad.stop()
        server.shutdown()


def _tamper(bundle: bytes) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(bundle)) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    data: dict[str, Any] = json.loads(files["/data.json"])
    for workloads in data["aitrust_data"]["workloads"].values():
        for doc in workloads.values():
            doc["score"] = 99  # any change at all must break the signature
    files["/data.json"] = json.dumps(data).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _handler(body: bytes) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/gzip")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler
