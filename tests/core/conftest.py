"""Shared fixtures for the trust engine core: manifests, keys and signing helpers."""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from aitrust.api.v1alpha1 import AIWorkloadSpec, TrustPolicySpec
from aitrust.core.posture import Finding, score_posture
from aitrust.core.workloads import PodTemplateView, build_pod_specs

MANIFESTS = Path(__file__).parent / "manifests"
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@cache
def _read(name: str) -> tuple[dict[str, Any], ...]:
    return tuple(d for d in yaml.safe_load_all((MANIFESTS / name).read_text()) if d)


@dataclass
class Loaded:
    """The objects of one manifest file, ready to be mutated and scored."""

    docs: list[dict[str, Any]]
    runtimes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def workload_objects(self) -> list[dict[str, Any]]:
        skip = {"Service", "AIWorkload", "ServingRuntime", "ClusterServingRuntime"}
        return [d for d in self.docs if d["kind"] not in skip]

    @property
    def main(self) -> dict[str, Any]:
        return self.workload_objects()[0]

    @property
    def pod_spec(self) -> dict[str, Any]:
        """The main object's pod spec, for in-place mutation before ``pods()``."""
        obj = self.main
        if obj["kind"] == "Pod":
            return obj["spec"]  # type: ignore[no-any-return]
        return obj["spec"]["template"]["spec"]  # type: ignore[no-any-return]

    def container(self, name: str) -> dict[str, Any]:
        return next(c for c in self.pod_spec["containers"] if c["name"] == name)

    def pods(self) -> list[PodTemplateView]:
        return [p for obj in self.workload_objects() for p in build_pod_specs(obj, self.runtimes)]

    def services(self) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == "Service"]

    def workload(self) -> AIWorkloadSpec | None:
        spec = next((d["spec"] for d in self.docs if d["kind"] == "AIWorkload"), None)
        return None if spec is None else AIWorkloadSpec.model_validate(spec)

    def findings(
        self,
        policy: TrustPolicySpec | None = None,
        workload: AIWorkloadSpec | None = None,
        public_keys: Mapping[str, str] | None = None,
        with_workload: bool = True,
    ) -> dict[str, Finding]:
        wl = workload if workload is not None else (self.workload() if with_workload else None)
        found = score_posture(self.pods(), policy or TrustPolicySpec(), wl, self.services(), public_keys)
        return {f.check_id: f for f in found}


@pytest.fixture
def load() -> Callable[[str], Loaded]:
    def _load(name: str) -> Loaded:
        docs = copy.deepcopy(list(_read(name)))
        runtimes = {d["metadata"]["name"]: d for d in docs if d["kind"].endswith("ServingRuntime")}
        return Loaded(docs=docs, runtimes=runtimes)

    return _load


PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey


def _pem_of(key: PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _sign(key: PrivateKey, payload: bytes) -> str:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.sign(payload)
    else:
        raw = key.sign(payload, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(raw).decode()


@pytest.fixture(scope="session")
def ed_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture(scope="session")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def pem_of() -> Callable[[PrivateKey], str]:
    """PEM SubjectPublicKeyInfo of a private key's public half."""
    return _pem_of


@pytest.fixture
def sign() -> Callable[[PrivateKey, bytes], str]:
    """Base64 signature (ECDSA: DER) of ``payload``."""
    return _sign
