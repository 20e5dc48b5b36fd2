"""The signal API under attack: fuzzing, rotated and missing tokens, mutual TLS, and secrets in logs."""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from aitrust.testing.cluster import wait_until
from aitrust.testing.pki import Pki
from aitrust.testing.processes import free_port
from tests.conftest import Kubectl, OperatorFactory
from tests.integration.test_signals import TOKEN, falco_event, setup_estate

ROTATED = "a-brand-new-rotated-token-value"


def _set_token(kubectl: Kubectl, namespace: str, token: str) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "signal-tokens"},
        "data": {"falcosidekick": base64.b64encode(token.encode()).decode()},
    }
    kubectl.run("apply", "-n", namespace, "-f", "-", input=json.dumps(secret))


def test_fuzzing_rotation_and_no_secrets_in_logs(
    kubectl: Kubectl, namespace: str, start_operator: OperatorFactory
) -> None:
    setup_estate(kubectl, namespace)
    port = free_port()
    proc = start_operator(
        f"--signals-port={port}",
        "--signals-host=127.0.0.1",
        f"--signals-token-secret={namespace}/signal-tokens",
    )
    url = f"http://127.0.0.1:{port}"

    # schemathesis drives the API from its own OpenAPI document: no 5xx, no crash.
    fuzz = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            f"{url}/openapi.json",
            "-H",
            f"Authorization: Bearer {TOKEN}",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "30",
            "--generation-deterministic",
            "--phases",
            "examples,fuzzing",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert fuzz.returncode == 0, fuzz.stdout[-4000:] + fuzz.stderr[-2000:]
    assert "POST /v1/signals/falco" in fuzz.stdout  # the signal endpoints were exercised
    assert proc.alive()

    # Rotation: the new token works and the old one stops working, without a restart.
    assert (
        httpx.post(
            f"{url}/v1/signals/falco",
            json=falco_event(namespace),
            headers={"Authorization": f"Bearer {TOKEN}"},
        ).status_code
        == 200
    )
    _set_token(kubectl, namespace, ROTATED)

    def rotated() -> bool:
        old = httpx.post(
            f"{url}/v1/signals/falco",
            json=falco_event(namespace),
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        new = httpx.post(
            f"{url}/v1/signals/falco",
            json=falco_event(namespace),
            headers={"Authorization": f"Bearer {ROTATED}"},
        )
        return old.status_code == 401 and new.status_code == 200

    wait_until(rotated, timeout=15, interval=0.5)
    assert proc.alive()

    log = proc.log_path.read_text()
    for secret in (TOKEN, ROTATED, base64.b64encode(TOKEN.encode()).decode()):
        assert secret not in log


def test_mutual_tls_refuses_clients_without_a_valid_certificate(
    kubectl: Kubectl, namespace: str, start_operator: OperatorFactory, tmp_path: Path
) -> None:
    setup_estate(kubectl, namespace)
    pki = Pki(tmp_path / "pki")
    server = pki.issue("server", "localhost", server=True)
    client = pki.issue("client", "falcosidekick")
    rogue = Pki(tmp_path / "rogue").issue("client", "falcosidekick")
    port = free_port()
    start_operator(
        f"--signals-port={port}",
        "--signals-host=127.0.0.1",
        f"--signals-token-secret={namespace}/signal-tokens",
        f"--signals-tls-cert-file={server.cert}",
        f"--signals-tls-key-file={server.key}",
        f"--signals-client-ca-file={pki.ca}",
    )
    url = f"https://127.0.0.1:{port}/v1/signals/falco"
    headers = {"Authorization": f"Bearer {TOKEN}"}

    def context(cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(pki.ca))
        if cert and key:
            ctx.load_cert_chain(str(cert), str(key))
        return ctx

    good = httpx.post(
        url, json=falco_event(namespace), headers=headers, verify=context(client.cert, client.key)
    )
    assert good.status_code == 200, good.text
    for ctx in (context(), context(rogue.cert, rogue.key)):
        with pytest.raises(httpx.HTTPError):
            httpx.post(url, json=falco_event(namespace), headers=headers, verify=ctx)
