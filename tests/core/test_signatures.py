from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from aitrust.api.v1alpha1 import DeclaredModel
from aitrust.core.signatures import (
    SignatureStatus,
    key_ref_id,
    resolve_public_key,
    verify_model_signature,
    verify_workload_models,
)

DIGEST = "sha256:" + "5f1d6a3c9b8e7f2a" * 4
OTHER = "sha256:" + "0123456789abcdef" * 4
Sign = Callable[[Any, bytes], str]
Pem = Callable[[Any], str]


def model(digest: str | None = DIGEST, **signature: Any) -> DeclaredModel:
    data: dict[str, Any] = {"name": "acme/llm", "source": "s3://models/llm", "digest": digest}
    if signature:
        data["signature"] = signature
    return DeclaredModel.model_validate(data)


@pytest.fixture(params=["ed25519", "ecdsa-p256-sha256"])
def keypair(request: pytest.FixtureRequest, ed_key: Any, ec_key: Any) -> tuple[str, Any]:
    return request.param, ed_key if request.param == "ed25519" else ec_key


def test_good_signature_over_digest_verifies(keypair: tuple[str, Any], sign: Sign, pem_of: Pem) -> None:
    algorithm, key = keypair
    m = model(algorithm=algorithm, signature=sign(key, DIGEST.encode()))
    verdict = verify_model_signature(m, pem_of(key))
    assert verdict.status is SignatureStatus.VERIFIED and verdict.verified
    assert verdict.key_id is not None and len(verdict.key_id) == 16
    assert verdict.key_id in verdict.reason and algorithm in verdict.reason


def test_inline_public_key_is_used_without_a_passed_key(
    keypair: tuple[str, Any], sign: Sign, pem_of: Pem
) -> None:
    algorithm, key = keypair
    m = model(algorithm=algorithm, signature=sign(key, DIGEST.encode()), publicKey=pem_of(key))
    assert verify_model_signature(m, None).status is SignatureStatus.VERIFIED


def test_tampered_digest_is_bad(keypair: tuple[str, Any], sign: Sign, pem_of: Pem) -> None:
    algorithm, key = keypair
    m = model(digest=OTHER, algorithm=algorithm, signature=sign(key, DIGEST.encode()))
    verdict = verify_model_signature(m, pem_of(key))
    assert verdict.status is SignatureStatus.BAD and "does not verify" in verdict.reason


def test_tampered_signature_is_bad(keypair: tuple[str, Any], sign: Sign, pem_of: Pem) -> None:
    algorithm, key = keypair
    raw = bytearray(base64.b64decode(sign(key, DIGEST.encode())))
    raw[len(raw) // 2] ^= 0x01
    m = model(algorithm=algorithm, signature=base64.b64encode(bytes(raw)).decode())
    assert verify_model_signature(m, pem_of(key)).status is SignatureStatus.BAD


def test_wrong_key_is_bad(keypair: tuple[str, Any], sign: Sign, pem_of: Pem) -> None:
    algorithm, key = keypair
    other = (
        ed25519.Ed25519PrivateKey.generate()
        if algorithm == "ed25519"
        else ec.generate_private_key(ec.SECP256R1())
    )
    m = model(algorithm=algorithm, signature=sign(key, DIGEST.encode()))
    verdict = verify_model_signature(m, pem_of(other))
    assert verdict.status is SignatureStatus.BAD


def test_missing_signature() -> None:
    verdict = verify_model_signature(model(), None)
    assert verdict.status is SignatureStatus.MISSING and not verdict.verified


def test_no_key_is_unverifiable(ed_key: Any, sign: Sign) -> None:
    m = model(algorithm="ed25519", signature=sign(ed_key, DIGEST.encode()))
    assert verify_model_signature(m, None).status is SignatureStatus.UNVERIFIABLE


def test_signature_without_digest_is_malformed(ed_key: Any, sign: Sign, pem_of: Pem) -> None:
    m = model(digest=None, algorithm="ed25519", signature=sign(ed_key, DIGEST.encode()))
    verdict = verify_model_signature(m, pem_of(ed_key))
    assert verdict.status is SignatureStatus.MALFORMED and "no digest" in verdict.reason


@pytest.mark.parametrize("garbage", ["not base64!!", "", "===="])
def test_undecodable_signature_is_malformed(ed_key: Any, pem_of: Pem, garbage: str) -> None:
    m = model(algorithm="ed25519", signature=garbage)
    verdict = verify_model_signature(m, pem_of(ed_key))
    assert verdict.status is SignatureStatus.MALFORMED and "base64" in verdict.reason


def test_key_of_the_wrong_type_is_malformed(ed_key: Any, ec_key: Any, sign: Sign, pem_of: Pem) -> None:
    m = model(algorithm="ed25519", signature=sign(ed_key, DIGEST.encode()))
    verdict = verify_model_signature(m, pem_of(ec_key))
    assert verdict.status is SignatureStatus.MALFORMED and "an EC key on secp256r1" in verdict.reason
    p384 = ec.generate_private_key(ec.SECP384R1())
    m = model(algorithm="ecdsa-p256-sha256", signature=sign(p384, DIGEST.encode()))
    verdict = verify_model_signature(m, pem_of(p384))
    assert verdict.status is SignatureStatus.MALFORMED and "secp384r1" in verdict.reason
    m = model(algorithm="ecdsa-p256-sha256", signature=sign(ed_key, DIGEST.encode()))
    verdict = verify_model_signature(m, pem_of(ed_key))
    assert verdict.status is SignatureStatus.MALFORMED and "an Ed25519 key" in verdict.reason


def test_garbage_pem_is_malformed(ed_key: Any, sign: Sign) -> None:
    m = model(algorithm="ed25519", signature=sign(ed_key, DIGEST.encode()))
    verdict = verify_model_signature(m, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    assert verdict.status is SignatureStatus.MALFORMED and "PEM" in verdict.reason


def test_raw_r_s_ecdsa_signature_is_accepted(ec_key: Any, pem_of: Pem) -> None:
    der = ec_key.sign(DIGEST.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    m = model(algorithm="ecdsa-p256-sha256", signature=base64.urlsafe_b64encode(raw).decode().rstrip("="))
    assert verify_model_signature(m, pem_of(ec_key)).status is SignatureStatus.VERIFIED


@pytest.mark.parametrize(
    "manifest",
    [
        {"name": "acme/llm", "digest": DIGEST, "files": ["model.safetensors"]},
        {"model": {"name": "acme/llm", "digest": DIGEST}},
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "w", "digest": {"sha256": DIGEST[7:]}}],
        },
    ],
)
def test_signed_manifest_naming_the_digest_verifies(
    keypair: tuple[str, Any], sign: Sign, pem_of: Pem, manifest: dict[str, Any]
) -> None:
    algorithm, key = keypair
    text = json.dumps(manifest)
    m = model(algorithm=algorithm, signature=sign(key, text.encode()), manifest=text)
    verdict = verify_model_signature(m, pem_of(key))
    assert verdict.status is SignatureStatus.VERIFIED and "manifest" in verdict.reason


def test_signed_manifest_naming_another_digest_is_bad(ed_key: Any, sign: Sign, pem_of: Pem) -> None:
    text = json.dumps({"digest": OTHER})
    m = model(algorithm="ed25519", signature=sign(ed_key, text.encode()), manifest=text)
    verdict = verify_model_signature(m, pem_of(ed_key))
    assert verdict.status is SignatureStatus.BAD and "not the declared" in verdict.reason


def test_edited_manifest_is_bad(ed_key: Any, sign: Sign, pem_of: Pem) -> None:
    signed = json.dumps({"digest": OTHER})
    shown = json.dumps({"digest": DIGEST})
    m = model(algorithm="ed25519", signature=sign(ed_key, signed.encode()), manifest=shown)
    assert verify_model_signature(m, pem_of(ed_key)).status is SignatureStatus.BAD


@pytest.mark.parametrize("text", ["not json", "[1, 2]", json.dumps({"name": "x"})])
def test_signed_but_unusable_manifest_is_malformed(ed_key: Any, sign: Sign, pem_of: Pem, text: str) -> None:
    m = model(algorithm="ed25519", signature=sign(ed_key, text.encode()), manifest=text)
    assert verify_model_signature(m, pem_of(ed_key)).status is SignatureStatus.MALFORMED


def test_key_resolution_prefers_key_ref_and_ignores_inline_key_then(
    ed_key: Any, sign: Sign, pem_of: Pem
) -> None:
    attacker = ed25519.Ed25519PrivateKey.generate()
    m = model(
        algorithm="ed25519",
        signature=sign(attacker, DIGEST.encode()),
        publicKey=pem_of(attacker),
        keyRef={"name": "signing", "key": "pub.pem"},
    )
    assert m.signature is not None and m.signature.key_ref is not None
    assert key_ref_id(m.signature.key_ref) == "signing/pub.pem"
    # The keyRef is the anchor: without it resolved, the inline (attacker's) key is not used.
    assert resolve_public_key(m, {}) is None
    assert verify_model_signature(m, resolve_public_key(m, {})).status is SignatureStatus.UNVERIFIABLE
    keys = {"signing/pub.pem": pem_of(ed_key)}
    assert verify_model_signature(m, resolve_public_key(m, keys)).status is SignatureStatus.BAD


def test_verify_workload_models_resolves_per_model(ed_key: Any, sign: Sign, pem_of: Pem) -> None:
    signed = model(algorithm="ed25519", signature=sign(ed_key, DIGEST.encode()))
    unsigned = DeclaredModel(name="other", source="s3://x")
    verdicts = verify_workload_models([signed, unsigned], {"acme/llm": pem_of(ed_key)})
    assert [v.status for v in verdicts] == [SignatureStatus.VERIFIED, SignatureStatus.MISSING]
    assert [v.model for v in verdicts] == ["acme/llm", "other"]
