"""Signed OPA bundles (pure): the trust data and the Rego as a tarball OPA verifies before loading.

The signature follows OPA's bundle format: `.signatures.json` holds a JWS whose payload
lists every file with its SHA-256 (JSON files hashed in canonical form, sorted keys and no
spaces, as OPA recomputes them), signed with RS256 or ES256.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping
from typing import Any, Literal

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from aitrust.render.opa import OPA_ROOT

Algorithm = Literal["RS256", "ES256"]
POLICY_ROOT = "aitrust"  # the package aitrust.authz


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def build_bundle_files(
    data: Mapping[str, Any], policies: Mapping[str, str], revision: str
) -> dict[str, bytes]:
    """The bundle's files by path: the data under its root, the Rego, and the manifest."""
    files = {
        "/data.json": _canonical({OPA_ROOT: data}),
        "/.manifest": _canonical({"revision": revision, "roots": [POLICY_ROOT, OPA_ROOT]}),
    }
    for policy_id, rego in sorted(policies.items()):
        files[f"/{POLICY_ROOT}/{policy_id}.rego"] = rego.encode()
    return files


def _file_hash(path: str, content: bytes) -> str:
    if path.endswith(".json") or path.endswith(".manifest"):
        content = _canonical(json.loads(content))
    return hashlib.sha256(content).hexdigest()


def render_signature(
    files: Mapping[str, bytes], private_key_pem: bytes, algorithm: Algorithm, key_id: str
) -> str:
    """The JWS over the files' hashes, for `.signatures.json`."""
    header = {"alg": algorithm, "kid": key_id, "typ": "JWT"}
    payload = {
        "files": [
            {"name": path.lstrip("/"), "hash": _file_hash(path, content), "algorithm": "SHA-256"}
            for path, content in sorted(files.items())
        ],
        "keyid": key_id,
    }
    signing_input = f"{_b64url(_canonical(header))}.{_b64url(_canonical(payload))}".encode()
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    if algorithm == "RS256":
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("RS256 needs an RSA private key")
        signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    else:
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError("ES256 needs a P-256 private key")
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return f"{signing_input.decode()}.{_b64url(signature)}"


def render_bundle(
    data: Mapping[str, Any],
    policies: Mapping[str, str],
    revision: str,
    private_key_pem: bytes,
    algorithm: Algorithm,
    key_id: str,
) -> bytes:
    """A signed bundle as gzipped tar bytes; deterministic for the same inputs (ES256 aside)."""
    files = build_bundle_files(data, policies, revision)
    files["/.signatures.json"] = _canonical(
        {"signatures": [render_signature(files, private_key_pem, algorithm, key_id)]}
    )
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for path, content in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size = len(content)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()
