"""Verification of the signatures declared on models (AIWorkload ``spec.models[].signature``).

Two signed payloads are accepted:

* the bare digest: the signature covers the UTF-8 bytes of the digest string
  (``"sha256:<64 hex>"``), exactly as declared in ``DeclaredModel.digest``;
* a manifest: the signature covers the UTF-8 bytes of ``signature.manifest`` verbatim, a
  JSON object that must name the declared digest, as ``"digest": "sha256:..."``, as
  ``"model": {"digest": ...}``, or in-toto style as ``"subject": [{"digest": {"sha256": ...}}]``.

Algorithms: ``ed25519`` and ``ecdsa-p256-sha256`` (DER signature, or raw 64-byte r||s as
produced by JOSE/WebCrypto). Signatures are base64 (standard or URL-safe alphabet).

Verification is a pure function of its inputs, so verdicts are memoised: the posture loop
re-scores workloads often and an ECDSA verify costs far more than the rest of a score.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from enum import StrEnum
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pydantic import BaseModel, ConfigDict

from aitrust.api.v1alpha1 import DeclaredModel, KeyRef

__all__ = [
    "SignatureStatus",
    "SignatureVerdict",
    "key_ref_id",
    "resolve_public_key",
    "verify_model_signature",
    "verify_workload_models",
]

_MAX_MANIFEST_BYTES = 64 * 1024
_MAX_SIGNATURE_CHARS = 4096


class SignatureStatus(StrEnum):
    VERIFIED = "verified"
    BAD = "bad"  # does not verify, or verifies over a different digest
    MISSING = "missing"  # no signature declared
    UNVERIFIABLE = "unverifiable"  # signature declared but no key to check it with
    MALFORMED = "malformed"  # signature, key or manifest cannot be decoded


class SignatureVerdict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    model: str
    digest: str | None
    status: SignatureStatus
    reason: str
    key_id: str | None = None  # first 16 hex of sha256(SubjectPublicKeyInfo DER)

    @property
    def verified(self) -> bool:
        return self.status is SignatureStatus.VERIFIED


def key_ref_id(ref: KeyRef) -> str:
    """The key under which callers pass a resolved ``keyRef`` in ``public_keys``: ``"<name>/<key>"``."""
    return f"{ref.name}/{ref.key}"


def resolve_public_key(model: DeclaredModel, public_keys: Mapping[str, str] | None) -> str | None:
    """The PEM to verify ``model`` with.

    A ``keyRef`` is the trust anchor when present: it must have been resolved by the caller
    into ``public_keys["<name>/<key>"]``; the inline ``publicKey`` is then ignored, since
    anyone who can edit the signature can edit a key next to it. Without a ``keyRef``,
    ``public_keys[model.name]`` wins over the inline key.
    """
    sig = model.signature
    if sig is None:
        return None
    keys = public_keys or {}
    if sig.key_ref is not None:
        return keys.get(key_ref_id(sig.key_ref))
    return keys.get(model.name) or sig.public_key


def verify_model_signature(model: DeclaredModel, public_key_pem: str | None) -> SignatureVerdict:
    """Check ``model.signature`` against ``public_key_pem`` (or the inline key when None)."""
    sig = model.signature
    if sig is None:
        return _missing(model.name, model.digest)
    pem = public_key_pem if public_key_pem is not None else (sig.public_key if sig.key_ref is None else None)
    return _verify(model.name, model.digest, sig.algorithm, sig.signature, sig.manifest, pem)


def verify_workload_models(
    models: list[DeclaredModel], public_keys: Mapping[str, str] | None
) -> list[SignatureVerdict]:
    """Verdicts for every declared model, keys resolved with ``resolve_public_key``."""
    return [verify_model_signature(m, resolve_public_key(m, public_keys)) for m in models]


# --- internals -----------------------------------------------------------------------


def _short(digest: str) -> str:
    return digest[:19] + "…" if len(digest) > 19 else digest


@lru_cache(maxsize=1024)
def _missing(name: str, digest: str | None) -> SignatureVerdict:
    return SignatureVerdict(
        model=name, digest=digest, status=SignatureStatus.MISSING, reason="no signature declared"
    )


@lru_cache(maxsize=1024)
def _verify(
    name: str, digest: str | None, algorithm: str, signature: str, manifest: str | None, pem: str | None
) -> SignatureVerdict:
    def verdict(status: SignatureStatus, reason: str, key_id: str | None = None) -> SignatureVerdict:
        return SignatureVerdict(model=name, digest=digest, status=status, reason=reason, key_id=key_id)

    if not digest:
        return verdict(SignatureStatus.MALFORMED, "signature declared but the model has no digest to verify")
    if not pem:
        return verdict(
            SignatureStatus.UNVERIFIABLE, "no public key available (keyRef unresolved or none given)"
        )
    try:
        raw_sig = _b64decode(signature)
    except ValueError as err:
        return verdict(SignatureStatus.MALFORMED, f"signature is not valid base64: {err}")
    key, problem = _load_key(pem, algorithm)
    if key is None:
        return verdict(SignatureStatus.MALFORMED, problem)
    key_id = _key_id(key)
    if manifest is not None:
        payload = manifest.encode("utf-8")
        if len(payload) > _MAX_MANIFEST_BYTES:
            return verdict(
                SignatureStatus.MALFORMED, f"manifest larger than {_MAX_MANIFEST_BYTES} bytes", key_id
            )
        what = "manifest"
    else:
        payload = digest.encode("ascii")
        what = _short(digest)
    if not _check(key, raw_sig, payload):
        return verdict(
            SignatureStatus.BAD,
            f"{algorithm} signature over {what} does not verify with key {key_id}",
            key_id,
        )
    if manifest is not None:
        named, problem = _manifest_digests(manifest)
        if not named:
            return verdict(SignatureStatus.MALFORMED, problem, key_id)
        if digest not in named:
            shown = ", ".join(_short(d) for d in sorted(named))
            return verdict(
                SignatureStatus.BAD,
                f"signed manifest names {shown}, not the declared {_short(digest)}",
                key_id,
            )
    return verdict(
        SignatureStatus.VERIFIED, f"{algorithm} signature over {what} verified with key {key_id}", key_id
    )


def _b64decode(text: str) -> bytes:
    if len(text) > _MAX_SIGNATURE_CHARS:
        raise ValueError("too long")
    compact = "".join(text.split())
    compact += "=" * (-len(compact) % 4)
    alt = b"-_" if ("-" in compact or "_" in compact) else None
    try:
        out = base64.b64decode(compact, altchars=alt, validate=True)
    except (binascii.Error, ValueError) as err:
        raise ValueError(str(err)) from err
    if not out:
        raise ValueError("empty")
    return out


PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


@lru_cache(maxsize=256)
def _load_key(pem: str, algorithm: str) -> tuple[PublicKey | None, str]:
    try:
        key = serialization.load_pem_public_key(pem.strip().encode("ascii"))
    except (ValueError, UnsupportedAlgorithm, UnicodeEncodeError, TypeError):
        return None, "public key is not a PEM SubjectPublicKeyInfo"
    if algorithm == "ed25519":
        if isinstance(key, ed25519.Ed25519PublicKey):
            return key, ""
        return None, f"algorithm ed25519 but the public key is {_describe(key)}"
    if algorithm == "ecdsa-p256-sha256":
        if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
            return key, ""
        return None, f"algorithm ecdsa-p256-sha256 but the public key is {_describe(key)}"
    return None, f"unsupported algorithm {algorithm!r}"


def _describe(key: Any) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"an EC key on {key.curve.name}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "an Ed25519 key"
    return f"a {type(key).__name__.removesuffix('PublicKey').removesuffix('_')} key"


def _key_id(key: PublicKey) -> str:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:16]


def _check(key: PublicKey, signature: bytes, payload: bytes) -> bool:
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, payload)
        else:
            if len(signature) == 64:  # raw r||s (JOSE); DER P-256 signatures are 8+ bytes longer
                r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
                signature = encode_dss_signature(r, s)
            key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def _manifest_digests(manifest: str) -> tuple[set[str], str]:
    try:
        doc = json.loads(manifest)
    except ValueError as err:
        return set(), f"manifest is not JSON: {err}"
    if not isinstance(doc, dict):
        return set(), "manifest is not a JSON object"
    found: set[str] = set()
    if isinstance(doc.get("digest"), str):
        found.add(doc["digest"].lower())
    model = doc.get("model")
    if isinstance(model, dict) and isinstance(model.get("digest"), str):
        found.add(model["digest"].lower())
    subjects = doc.get("subject")
    if isinstance(subjects, list):
        for subject in subjects:
            digests = subject.get("digest") if isinstance(subject, dict) else None
            if isinstance(digests, dict) and isinstance(digests.get("sha256"), str):
                found.add("sha256:" + digests["sha256"].lower())
    if not found:
        return set(), "manifest names no digest (digest, model.digest or subject[].digest.sha256)"
    return found, ""
