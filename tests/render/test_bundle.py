from __future__ import annotations

import base64
import io
import json
import tarfile

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from aitrust.render.bundle import _file_hash, render_bundle

DATA = {"workloads": {"ns": {"agent": {"tier": "trusted", "score": 90}}}}
POLICIES = {"aitrust_authz": "package aitrust.authz\n\ndefault allow := false\n"}


def _pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _unpack(bundle: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(bundle)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _verify(bundle: bytes, public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> None:
    """What OPA does: check the JWS, then every file's hash against the signed list."""
    files = _unpack(bundle)
    jws = json.loads(files.pop("/.signatures.json"))["signatures"][0]
    header_b64, payload_b64, sig_b64 = jws.split(".")
    signing_input = f"{header_b64}.{payload_b64}".encode()
    signature = _b64d(sig_b64)
    if isinstance(public_key, rsa.RSAPublicKey):
        public_key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
    else:
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        public_key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
    signed = {f["name"]: f["hash"] for f in json.loads(_b64d(payload_b64))["files"]}
    assert signed == {path.lstrip("/"): _file_hash(path, content) for path, content in files.items()}


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_bundle_signature_verifies_and_covers_every_file(algorithm: str) -> None:
    key = (
        ec.generate_private_key(ec.SECP256R1())
        if algorithm == "ES256"
        else rsa.generate_private_key(65537, 2048)
    )
    bundle = render_bundle(DATA, POLICIES, "r1", _pem(key), algorithm, "k1")  # type: ignore[arg-type]
    files = _unpack(bundle)
    assert json.loads(files["/data.json"]) == {"aitrust_data": DATA}
    assert json.loads(files["/.manifest"]) == {"revision": "r1", "roots": ["aitrust", "aitrust_data"]}
    assert files["/aitrust/aitrust_authz.rego"].decode() == POLICIES["aitrust_authz"]
    _verify(bundle, key.public_key())


def test_tampering_or_another_key_fails_verification() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    bundle = render_bundle(DATA, POLICIES, "r1", _pem(key), "ES256", "k1")
    with pytest.raises(InvalidSignature):
        _verify(bundle, ec.generate_private_key(ec.SECP256R1()).public_key())
    files = _unpack(bundle)
    files["/data.json"] = json.dumps({"aitrust_data": {"workloads": {}}}).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    with pytest.raises(AssertionError):
        _verify(buffer.getvalue(), key.public_key())


def test_wrong_key_type_is_refused() -> None:
    with pytest.raises(ValueError, match="ES256"):
        render_bundle(DATA, POLICIES, "r1", _pem(rsa.generate_private_key(65537, 2048)), "ES256", "k1")
