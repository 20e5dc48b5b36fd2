"""Posture checks over the pod templates of an AI workload.

Every check has a stable id (``AIT-P001``...), a severity, a default weight (the points it
removes from 100 when it fails), remediation text and references:

* OWASP Top 10 for LLM Applications 2025 (``LLM01:2025`` ... ``LLM10:2025``),
* MITRE ATLAS techniques (``AML.T0010`` ...),
* NSA/CISA Kubernetes Hardening Guide v1.2 sections (``NSA-CISA:<section>``),
* Kubernetes Pod Security Standards levels (``K8S-PSS:baseline|restricted``).

Checks aggregate: a check yields at most one finding, whose reason names every offending
container, so a ten-container pod loses a check's weight once, not ten times.

Some checks stack on purpose: a container-runtime socket mount (P012) is also a hostPath
(P011), and a ``:latest`` image (P016) is not also reported as merely unpinned (P017).

Scoring the same pod view repeatedly is the hot path (every runtime signal re-scores its
workload), so the pod-intrinsic part of the analysis is memoised per ``PodTemplateView``
object (views are immutable) and findings are interned (they are immutable too).
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict

from aitrust.api.v1alpha1 import AIWorkloadSpec, DeclaredModel, Severity, TrustPolicySpec, WorkloadKind
from aitrust.core.catalog import AI_SECRET_ENV
from aitrust.core.signatures import (
    SignatureStatus,
    resolve_public_key,
    verify_model_signature,
)
from aitrust.core.workloads import ContainerView, PodTemplateView, object_version

__all__ = [
    "AUTH_ANNOTATION",
    "CHECKS",
    "KUBE_API_ANNOTATION",
    "Check",
    "Finding",
    "ImageRef",
    "check_table",
    "parse_image",
    "score_posture",
    "validate_posture_settings",
]

# Opt-outs a workload owner states on the pod template (or, for auth, on the Service).
KUBE_API_ANNOTATION = "aitrust.dev/kube-api-access"  # "true": the pod talks to the K8s API on purpose
AUTH_ANNOTATION = "aitrust.dev/auth"  # e.g. "oidc-gateway": requests are authenticated upstream

# --- references ------------------------------------------------------------------------

LLM02 = "LLM02:2025"  # Sensitive Information Disclosure
LLM03 = "LLM03:2025"  # Supply Chain
LLM04 = "LLM04:2025"  # Data and Model Poisoning
LLM06 = "LLM06:2025"  # Excessive Agency
LLM10 = "LLM10:2025"  # Unbounded Consumption
ATLAS_SUPPLY_CHAIN = "AML.T0010"  # AI Supply Chain Compromise
ATLAS_SUPPLY_CHAIN_MODEL = "AML.T0010.003"
ATLAS_SUPPLY_CHAIN_REGISTRY = "AML.T0010.004"
ATLAS_USER_EXECUTION = "AML.T0011"  # User Execution (.000 Unsafe AI Artifacts)
ATLAS_UNSAFE_ARTIFACTS = "AML.T0011.000"
ATLAS_MANIPULATE_MODEL = "AML.T0018"
ATLAS_DOS = "AML.T0029"  # Denial of AI Service
ATLAS_COST = "AML.T0034"  # Cost Harvesting
ATLAS_INFERENCE_API = "AML.T0040"
ATLAS_PUBLIC_APP = "AML.T0049"  # Exploit Public-Facing Application
ATLAS_INTERPRETER = "AML.T0050"
ATLAS_CREDENTIALS = "AML.T0055"  # Unsecured Credentials
NSA_NON_ROOT = "NSA-CISA:non-root-containers"
NSA_IMMUTABLE = "NSA-CISA:immutable-container-filesystems"
NSA_IMAGES = "NSA-CISA:secure-container-images"
NSA_POD_SECURITY = "NSA-CISA:pod-security-enforcement"
NSA_SA_TOKENS = "NSA-CISA:service-account-tokens"
NSA_HARDENING = "NSA-CISA:hardening-container-environments"
NSA_NETWORK = "NSA-CISA:network-separation"
NSA_RESOURCES = "NSA-CISA:resource-policies"
NSA_SECRETS = "NSA-CISA:secrets"
NSA_AUTHN = "NSA-CISA:authentication-authorization"
NSA_APPSEC = "NSA-CISA:application-security-practices"
PSS_BASELINE = "K8S-PSS:baseline"
PSS_RESTRICTED = "K8S-PSS:restricted"


class Check(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    title: str
    severity: Severity
    weight: int
    remediation: str
    references: tuple[str, ...]


class Finding(BaseModel):
    """One failed check, aggregated over all pods and containers."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    check_id: str
    title: str
    severity: Severity
    points: int  # points removed, >= 0
    reason: str
    remediation: str
    references: tuple[str, ...]


def _c(
    id_: str, title: str, severity: Severity, weight: int, remediation: str, *references: str
) -> tuple[str, Check]:
    return id_, Check(
        id=id_, title=title, severity=severity, weight=weight, remediation=remediation, references=references
    )


CHECKS: Mapping[str, Check] = dict(
    [
        _c(
            "AIT-P001",
            "Privileged container",
            Severity.CRITICAL,
            30,
            "Remove securityContext.privileged; GPU access works through the device plugin without it.",
            NSA_POD_SECURITY,
            NSA_HARDENING,
            PSS_BASELINE,
        ),
        _c(
            "AIT-P002",
            "Privilege escalation allowed",
            Severity.MEDIUM,
            8,
            "Set securityContext.allowPrivilegeEscalation: false on every container.",
            NSA_POD_SECURITY,
            PSS_RESTRICTED,
        ),
        _c(
            "AIT-P003",
            "Container may run as root",
            Severity.MEDIUM,
            8,
            "Set runAsNonRoot: true and a non-zero runAsUser in the pod or container securityContext.",
            NSA_NON_ROOT,
            PSS_RESTRICTED,
        ),
        _c(
            "AIT-P004",
            "Dangerous capabilities added",
            Severity.HIGH,
            12,
            "Remove capabilities.add entries; only NET_BIND_SERVICE is acceptable for a server.",
            NSA_HARDENING,
            PSS_BASELINE,
        ),
        _c(
            "AIT-P005",
            "Capabilities not dropped",
            Severity.LOW,
            3,
            "Add capabilities.drop: [ALL] to every container.",
            NSA_HARDENING,
            PSS_RESTRICTED,
        ),
        _c(
            "AIT-P006",
            "Writable root filesystem",
            Severity.LOW,
            4,
            "Set readOnlyRootFilesystem: true and mount emptyDir volumes for caches and /tmp.",
            NSA_IMMUTABLE,
            ATLAS_MANIPULATE_MODEL,
        ),
        _c(
            "AIT-P007",
            "Seccomp profile unset or Unconfined",
            Severity.MEDIUM,
            5,
            "Set securityContext.seccompProfile.type: RuntimeDefault at pod level.",
            NSA_HARDENING,
            PSS_RESTRICTED,
        ),
        _c(
            "AIT-P008",
            "Host network namespace",
            Severity.HIGH,
            15,
            "Remove hostNetwork: true; expose the model server through a Service instead.",
            NSA_NETWORK,
            PSS_BASELINE,
        ),
        _c(
            "AIT-P009",
            "Host PID namespace",
            Severity.HIGH,
            15,
            "Remove hostPID: true.",
            NSA_HARDENING,
            PSS_BASELINE,
        ),
        _c(
            "AIT-P010",
            "Host IPC namespace",
            Severity.HIGH,
            10,
            "Remove hostIPC: true; give NCCL/PyTorch shared memory an emptyDir (medium: Memory) at /dev/shm.",
            NSA_HARDENING,
            PSS_BASELINE,
        ),
        _c(
            "AIT-P011",
            "hostPath volume",
            Severity.HIGH,
            12,
            "Replace hostPath volumes with PersistentVolumeClaims, or an image volume / emptyDir for models.",
            NSA_HARDENING,
            PSS_BASELINE,
        ),
        _c(
            "AIT-P012",
            "Container runtime socket mounted",
            Severity.CRITICAL,
            30,
            "Never mount the Docker/containerd/CRI-O socket (or its directory): it is root on the node.",
            NSA_HARDENING,
            PSS_BASELINE,
        ),
        _c(
            "AIT-P013",
            "Service account token automounted",
            Severity.MEDIUM,
            5,
            "Set automountServiceAccountToken: false on the pod; if it needs the API, annotate the pod "
            f'{KUBE_API_ANNOTATION}: "true" and bind a least-privilege Role.',
            NSA_SA_TOKENS,
            LLM06,
        ),
        _c(
            "AIT-P014",
            "Missing CPU or memory limits",
            Severity.MEDIUM,
            4,
            "Set resources.limits.cpu and resources.limits.memory on every container.",
            NSA_RESOURCES,
            LLM10,
            ATLAS_DOS,
        ),
        _c(
            "AIT-P015",
            "GPU requested without a matching limit",
            Severity.MEDIUM,
            5,
            "Set the GPU resource (e.g. nvidia.com/gpu) in resources.limits equal to the request.",
            NSA_RESOURCES,
            LLM10,
            ATLAS_COST,
        ),
        _c(
            "AIT-P016",
            "Mutable image tag",
            Severity.MEDIUM,
            8,
            "Use an explicit version tag and pin it by digest (image@sha256:...).",
            NSA_IMAGES,
            LLM03,
            ATLAS_SUPPLY_CHAIN_REGISTRY,
        ),
        _c(
            "AIT-P017",
            "Image not pinned by digest",
            Severity.LOW,
            3,
            "Pin the image by digest (image:tag@sha256:...) so the tag cannot be moved under you.",
            NSA_IMAGES,
            LLM03,
            ATLAS_SUPPLY_CHAIN_REGISTRY,
        ),
        _c(
            "AIT-P018",
            "Image from a registry that is not allowed",
            Severity.HIGH,
            15,
            "Pull images only from the registries listed in the TrustPolicy's posture.allowedRegistries.",
            NSA_IMAGES,
            LLM03,
            ATLAS_SUPPLY_CHAIN_REGISTRY,
        ),
        _c(
            "AIT-P019",
            "AI provider credential in plaintext",
            Severity.CRITICAL,
            25,
            "Move the credential into a Secret, reference it with env[].valueFrom.secretKeyRef, "
            "and rotate the exposed key.",
            NSA_SECRETS,
            LLM02,
            ATLAS_CREDENTIALS,
        ),
        _c(
            "AIT-P020",
            "Declared model without digest",
            Severity.MEDIUM,
            8,
            "Add spec.models[].digest (sha256 of the weights) so that what runs can be identified.",
            LLM03,
            LLM04,
            ATLAS_SUPPLY_CHAIN_MODEL,
        ),
        _c(
            "AIT-P021",
            "Model signature missing",
            Severity.MEDIUM,
            5,
            "Sign the model digest (ed25519 or ECDSA P-256); declare spec.models[].signature with a keyRef.",
            LLM03,
            LLM04,
            ATLAS_SUPPLY_CHAIN_MODEL,
        ),
        _c(
            "AIT-P022",
            "Model signature does not verify",
            Severity.HIGH,
            30,
            "Treat the weights as tampered until re-verified: check digest, signing key and manifest.",
            LLM03,
            LLM04,
            ATLAS_SUPPLY_CHAIN_MODEL,
            ATLAS_MANIPULATE_MODEL,
        ),
        _c(
            "AIT-P023",
            "Model signature cannot be verified",
            Severity.MEDIUM,
            5,
            "Make the public key available: inline publicKey, or a keyRef to an existing Secret/ConfigMap.",
            LLM03,
            ATLAS_SUPPLY_CHAIN_MODEL,
        ),
        _c(
            "AIT-P024",
            "Model fetched over plain HTTP",
            Severity.HIGH,
            15,
            "Fetch weights over https/s3/gs/oci and verify them by digest.",
            LLM03,
            ATLAS_SUPPLY_CHAIN_MODEL,
        ),
        _c(
            "AIT-P025",
            "Model from an unpinned hub revision",
            Severity.MEDIUM,
            8,
            "Pin the Hugging Face revision to a 40-hex commit (hf://org/model@<sha>, --revision <sha>).",
            LLM03,
            LLM04,
            ATLAS_SUPPLY_CHAIN_MODEL,
        ),
        _c(
            "AIT-P026",
            "Remote code execution from model repository enabled",
            Severity.HIGH,
            15,
            "Drop --trust-remote-code / trust_remote_code=True; vendor reviewed model code into the image.",
            LLM03,
            ATLAS_USER_EXECUTION,
            ATLAS_UNSAFE_ARTIFACTS,
        ),
        _c(
            "AIT-P027",
            "Model server exposed without authentication",
            Severity.HIGH,
            20,
            "Put the model server behind an authenticating gateway (or --api-key), keep its Service "
            "ClusterIP, or restrict loadBalancerSourceRanges; annotate the Service aitrust.dev/auth "
            "when authentication happens upstream.",
            NSA_AUTHN,
            LLM10,
            ATLAS_PUBLIC_APP,
            ATLAS_INFERENCE_API,
            ATLAS_COST,
        ),
        _c(
            "AIT-P028",
            "Default service account",
            Severity.LOW,
            2,
            "Run the workload under its own service account, so its cloud identity and RBAC are its own.",
            NSA_SA_TOKENS,
            NSA_AUTHN,
        ),
        _c(
            "AIT-P029",
            "Host port",
            Severity.MEDIUM,
            5,
            "Remove ports[].hostPort: it exposes the server on the node address, past NetworkPolicies.",
            NSA_NETWORK,
            PSS_BASELINE,
        ),
        _c(
            "AIT-P030",
            "Notebook or AI control plane without authentication",
            Severity.HIGH,
            15,
            "Keep Jupyter's token/password set; bind the Ray dashboard/job API to 127.0.0.1 (no auth).",
            NSA_AUTHN,
            ATLAS_PUBLIC_APP,
            ATLAS_INTERPRETER,
        ),
        _c(
            "AIT-P031",
            "Shared model store mounted writable",
            Severity.MEDIUM,
            5,
            "Mount persistent model volumes readOnly in serving pods; download weights in a separate Job.",
            LLM04,
            ATLAS_MANIPULATE_MODEL,
            NSA_IMMUTABLE,
        ),
        _c(
            "AIT-P032",
            "AppArmor or SELinux confinement disabled",
            Severity.MEDIUM,
            5,
            "Remove Unconfined AppArmor profiles and privileged SELinux types (spc_t, unconfined_t).",
            NSA_HARDENING,
            PSS_BASELINE,
        ),
    ]
)

# --- policy tables ---------------------------------------------------------------------


@lru_cache(maxsize=128)
def _table(overrides: tuple[tuple[str, int | None, bool], ...]) -> tuple[tuple[Check, int], ...]:
    by_id = {oid: (weight, enabled) for oid, weight, enabled in overrides}  # last override wins
    out: list[tuple[Check, int]] = []
    for check in CHECKS.values():
        weight, enabled = by_id.get(check.id, (None, True))
        if enabled:
            out.append((check, check.weight if weight is None else weight))
    return tuple(out)


def check_table(policy: TrustPolicySpec) -> tuple[tuple[Check, int], ...]:
    """Enabled checks with their effective weights, in id order (memoised per override set)."""
    checks = policy.posture.checks
    if not checks:  # the usual case: no overrides, and no generator to build per evaluation
        return _table(())
    return _table(tuple((o.id, o.weight, o.enabled) for o in checks))


def validate_posture_settings(policy: TrustPolicySpec) -> list[str]:
    """Problems in ``spec.posture`` that the operator should report in the TrustPolicy status."""
    errors: list[str] = []
    seen: set[str] = set()
    for i, override in enumerate(policy.posture.checks):
        if override.id not in CHECKS:
            errors.append(f"posture.checks[{i}]: unknown check id {override.id}")
        if override.id in seen:
            errors.append(f"posture.checks[{i}]: duplicate override for {override.id}; the last one wins")
        seen.add(override.id)
    for i, registry in enumerate(policy.posture.allowed_registries):
        if not registry.strip() or "://" in registry or " " in registry.strip():
            errors.append(
                f"posture.allowedRegistries[{i}]: {registry!r} is not a registry prefix like ghcr.io/org"
            )
    return errors


# --- images ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImageRef:
    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"


_DOCKER_HUB_ALIASES = {"index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


@lru_cache(maxsize=2048)
def parse_image(ref: str) -> ImageRef:
    """Split an image reference the way container runtimes do (Docker Hub defaults included)."""
    rest, _, digest = ref.partition("@")
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, remainder
    else:
        registry, path = "docker.io", rest
    registry = "docker.io" if registry in _DOCKER_HUB_ALIASES else registry.lower()
    tag: str | None = None
    last_slash = path.rfind("/")
    colon = path.rfind(":")
    if colon > last_slash:
        path, tag = path[:colon], path[colon + 1 :]
    if registry == "docker.io" and "/" not in path:
        path = f"library/{path}"
    return ImageRef(registry=registry, repository=path, tag=tag or None, digest=digest or None)


@lru_cache(maxsize=256)
def _registry_matcher(allowed: tuple[str, ...]) -> Callable[[str], bool]:
    prefixes: list[str] = []
    for entry in allowed:
        entry = entry.strip().rstrip("/")
        if not entry:
            continue
        head, sep, tail = entry.partition("/")
        if head in _DOCKER_HUB_ALIASES:
            head = "docker.io"
        prefixes.append(f"{head.lower()}{sep}{tail}")

    def allowed_name(name: str) -> bool:
        return any(name == p or name.startswith(p + "/") for p in prefixes)

    return allowed_name


# --- pod facts (memoised per view) -----------------------------------------------------

_GPU_RESOURCE = re.compile(
    r"^(nvidia\.com/(gpu|mig-.+)|amd\.com/gpu|gpu\.intel\.com/.+|habana\.ai/gaudi|aws\.amazon\.com/neuron\w*"
    r"|google\.com/tpu)$"
)
_DANGEROUS_OK_CAPS = frozenset({"NET_BIND_SERVICE"})
_RUNTIME_SOCKETS = (
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/var/run/containerd/containerd.sock",
    "/run/containerd/containerd.sock",
    "/run/k3s/containerd/containerd.sock",
    "/var/run/crio/crio.sock",
    "/run/crio/crio.sock",
    "/var/run/cri-dockerd.sock",
    "/var/run/dockershim.sock",
    "/run/podman/podman.sock",
)
_AI_SECRET_ENV = AI_SECRET_ENV
_GENERIC_SECRET_ENV = re.compile(r"(^|_)(API_?KEY|SECRET(_ACCESS)?_KEY|ACCESS_TOKEN|AUTH_TOKEN|API_TOKEN)$")
_SECRET_VALUE = re.compile(
    r"^(sk-[A-Za-z0-9_-]{16,}|hf_[A-Za-z0-9]{20,}|AIza[0-9A-Za-z_-]{30,}|gsk_[A-Za-z0-9]{20,}"
    r"|r8_[A-Za-z0-9]{20,}|lsv2_[A-Za-z0-9_]{20,}|xai-[A-Za-z0-9]{20,}|nvapi-[A-Za-z0-9_-]{20,}"
    r"|pcsk_[A-Za-z0-9_]{20,})$"
)
# Values that clients put in key variables when the server needs none (e.g. vLLM's "EMPTY").
_PLACEHOLDERS = frozenset(
    {"", "empty", "none", "null", "dummy", "placeholder", "not-needed", "unused", "fake", "-", "x"}
)
_VAR_REF = re.compile(r"^\$\([A-Za-z_][A-Za-z0-9_]*\)$")
_SECRET_FLAGS = frozenset({"--api-key", "--api_key", "--hf-token", "--hf_token", "--token"})
_TRUST_REMOTE = re.compile(r"trust[-_]remote[-_]code(\s*[=:]\s*(\S+))?", re.IGNORECASE)
_FALSY = frozenset({"false", "0", "no", "off", "'false'", '"false"'})
_JUPYTER_NO_TOKEN = re.compile(r"--(?:NotebookApp|ServerApp|IdentityProvider)\.token=(?:''|\"\"|(?=\s|$))")
_JUPYTER_PASSWORD = re.compile(
    r"--(?:NotebookApp|ServerApp|PasswordIdentityProvider)\.(?:hashed_)?password=['\"]?\S{4,}"
)
_RAY_OPEN_DASHBOARD = re.compile(r"--dashboard-host[= ]+['\"]?(0\.0\.0\.0|::|\[::\])")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_MODEL_FLAGS = frozenset({"--model", "--model-id", "--model_id", "--model-path", "--model_name_or_path"})
_REVISION_FLAGS = frozenset({"--revision", "--model-revision", "--model_revision"})
_MODEL_ENV = frozenset({"MODEL_ID", "HF_MODEL_ID", "MODEL_NAME_OR_PATH"})
_REVISION_ENV = frozenset({"REVISION", "HF_MODEL_REVISION", "MODEL_REVISION"})
_MODEL_MOUNT = re.compile(r"^/(mnt/)?(models?|weights)(/|$)|/(models?|weights)/?$")
_AUTH_PROXY_IMAGE = re.compile(
    r"oauth2-proxy|kube-rbac-proxy|pomerium|authelia|openresty-oidc", re.IGNORECASE
)
_AUTH_FLAGS = ("--api-key", "--api_key", "--api-key-file", "--auth-token")
_AUTH_ENV = frozenset({"VLLM_API_KEY", "API_KEY", "LLAMA_API_KEY", "SGLANG_API_KEY", "JUPYTER_TOKEN"})
# (image pattern, server name, default ports) of common model servers and AI UIs.
_MODEL_SERVERS: tuple[tuple[re.Pattern[str], str, tuple[int, ...]], ...] = tuple(
    (re.compile(p, re.IGNORECASE), name, ports)
    for p, name, ports in (
        (r"vllm", "vLLM", (8000,)),
        (r"text-generation-inference|/tgi\b", "TGI", (80, 8080)),
        (r"ollama", "Ollama", (11434,)),
        (r"tritonserver", "Triton", (8000, 8001)),
        (r"llama\.cpp|llama-cpp|llama-server", "llama.cpp", (8080,)),
        (r"sglang", "SGLang", (30000,)),
        (r"lmdeploy", "LMDeploy", (23333,)),
        (r"localai", "LocalAI", (8080,)),
        (r"torchserve", "TorchServe", (8080, 8081)),
        (r"tensorflow/serving", "TF Serving", (8500, 8501)),
        (r"mlserver|kserve", "KServe", (8080,)),
        (r"open-webui", "Open WebUI", (8080,)),
        (r"jupyter|notebook", "Jupyter", (8888,)),
        (r"rayproject/ray|/ray:", "Ray", (8265, 10001, 8000)),
    )
)
MODEL_SERVER_PORTS = frozenset(
    {80, 8000, 8001, 8080, 8081, 8265, 8500, 8501, 8888, 7860, 10001, 11434, 23333, 30000}
)


def _server_of(image: str) -> tuple[str, tuple[int, ...]] | None:
    for pattern, name, ports in _MODEL_SERVERS:
        if pattern.search(image):
            return name, ports
    return None


ServiceVersions = tuple[tuple[str, str] | None, ...]  # (uid, resourceVersion) of each Service


@dataclass(slots=True)
class _PodFacts:
    """Everything about one pod view that does not depend on policy, workload or services."""

    issues: dict[str, list[str]] = field(default_factory=dict)
    images: list[tuple[str, str]] = field(default_factory=list)  # (location, image)
    writable_model_mounts: list[str] = field(default_factory=list)
    model_sources: list[tuple[str, str, str | None]] = field(
        default_factory=list
    )  # (where, source, revision)
    auth_hint: bool = False
    registry_issues: dict[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict)
    named_ports: dict[str, int] = field(default_factory=dict)
    serving_ports: dict[int, str] = field(default_factory=dict)  # port -> server description
    # (versions of the published Services, their (Service index, line) exposure lines) last
    # seen; see _exposure_issues. One tuple, so a reader never pairs a key with another key's lines.
    exposure: tuple[ServiceVersions, tuple[tuple[int, str], ...]] | None = None


_FACTS: dict[int, tuple[weakref.ref[PodTemplateView], _PodFacts]] = {}


def _facts(pod: PodTemplateView) -> _PodFacts:
    key = id(pod)
    hit = _FACTS.get(key)
    if hit is not None and hit[0]() is pod:
        return hit[1]
    facts = _analyse(pod)
    # Views are immutable, so facts live as long as the view; the callback frees the slot.
    _FACTS[key] = (weakref.ref(pod, _forget(key)), facts)
    return facts


def _forget(key: int) -> Callable[[weakref.ref[PodTemplateView]], None]:
    def callback(_ref: weakref.ref[PodTemplateView]) -> None:
        _FACTS.pop(key, None)

    return callback


def _where(pod: PodTemplateView, container: ContainerView | None = None) -> str:
    prefix = f"{pod.component} " if pod.component else ""
    if container is None:
        return f"{prefix}pod"
    kind = "" if container.kind == "container" else f"{container.kind} "
    return f'{prefix}{kind}container "{container.name}"'


def _flag_value(tokens: Sequence[str], flags: Iterable[str]) -> tuple[str, str] | None:
    """(flag, value) of the first ``--flag value`` / ``--flag=value`` among ``tokens``."""
    flagset = frozenset(flags)
    for i, token in enumerate(tokens):
        name, eq, value = token.partition("=")
        if name in flagset:
            if eq:
                return name, value
            if i + 1 < len(tokens) and not tokens[i + 1].startswith("--"):
                return name, tokens[i + 1]
            return name, ""
    return None


def _shell_tokens(container: ContainerView) -> list[str]:
    """command+args split on whitespace too, since `sh -c "vllm serve ..."` hides flags in one string."""
    out: list[str] = []
    for part in (*container.command, *container.args):
        out.extend(part.split())
    return out


def _is_placeholder(value: str) -> bool:
    return value.strip().lower() in _PLACEHOLDERS or _VAR_REF.match(value) is not None


def _analyse(pod: PodTemplateView) -> _PodFacts:
    facts = _PodFacts()
    issues = facts.issues

    def add(check_id: str, text: str) -> None:
        issues.setdefault(check_id, []).append(text)

    pod_where = _where(pod)
    if pod.host_network:
        add("AIT-P008", f"{pod_where}: hostNetwork=true")
    if pod.host_pid:
        add("AIT-P009", f"{pod_where}: hostPID=true")
    if pod.host_ipc:
        add("AIT-P010", f"{pod_where}: hostIPC=true")
    if (
        pod.automount_service_account_token is not False
        and pod.annotations.get(KUBE_API_ANNOTATION) != "true"
    ):
        state = "true" if pod.automount_service_account_token else "not set"
        add("AIT-P013", f"{pod_where}: automountServiceAccountToken {state}")
    if pod.service_account_name in (None, "", "default"):
        add("AIT-P028", f"{pod_where}: runs as the namespace's default service account")

    volumes = {v.name: v for v in pod.volumes}
    for volume in pod.volumes:
        if volume.type != "hostPath":
            continue
        path = (volume.host_path or "/").rstrip("/") or "/"
        add("AIT-P011", f'{pod_where}: volume "{volume.name}" is hostPath {path}')
        if any(sock == path or sock.startswith(path + "/") or path == "/" for sock in _RUNTIME_SOCKETS):
            add(
                "AIT-P012",
                f'{pod_where}: volume "{volume.name}" exposes the container runtime socket ({path})',
            )

    for c in pod.containers:
        where = _where(pod, c)
        if c.privileged:
            add("AIT-P001", f"{where}: securityContext.privileged=true")
        if c.allow_privilege_escalation is not False:
            state = "true" if c.allow_privilege_escalation else "not set to false"
            add("AIT-P002", f"{where}: allowPrivilegeEscalation {state}")
        if c.run_as_user == 0:
            add("AIT-P003", f"{where}: runAsUser=0")
        elif c.run_as_non_root is False and c.run_as_user is None:
            add("AIT-P003", f"{where}: runAsNonRoot=false")
        elif c.run_as_non_root is not True and c.run_as_user is None:
            add("AIT-P003", f"{where}: neither runAsNonRoot nor runAsUser set")
        added = [cap for cap in c.capabilities_add if cap not in _DANGEROUS_OK_CAPS]
        if added:
            add("AIT-P004", f"{where}: capabilities.add {', '.join(added)}")
        if "ALL" not in c.capabilities_drop:
            add("AIT-P005", f"{where}: capabilities.drop lacks ALL")
        if c.read_only_root_filesystem is not True:
            add("AIT-P006", f"{where}: readOnlyRootFilesystem not true")
        if c.seccomp_profile is None or c.seccomp_profile == "Unconfined":
            add("AIT-P007", f"{where}: seccompProfile {c.seccomp_profile or 'unset'}")
        if c.apparmor_profile == "Unconfined":
            add("AIT-P032", f"{where}: AppArmor profile Unconfined")
        if c.selinux_type in ("spc_t", "unconfined_t"):
            add("AIT-P032", f"{where}: SELinux type {c.selinux_type}")
        if c.kind in ("container", "sidecar"):
            missing = [r for r in ("cpu", "memory") if r not in c.limits]
            if missing:
                add("AIT-P014", f"{where}: no {' or '.join(missing)} limit")
        for resource, requested in c.requests.items():
            if _GPU_RESOURCE.match(resource) and c.limits.get(resource) != requested:
                limit = c.limits.get(resource)
                add("AIT-P015", f"{where}: requests {resource}={requested} with limit {limit or 'unset'}")
        for port in c.ports:
            if port.host_port:
                add("AIT-P029", f"{where}: hostPort {port.host_port}")
            if port.name:
                facts.named_ports[port.name] = port.container_port

        if c.image:
            facts.images.append((where, c.image))
            image = parse_image(c.image)
            if image.digest is None:
                if image.tag in (None, "latest"):
                    add(
                        "AIT-P016",
                        f"{where}: image {c.image} uses {'no tag' if image.tag is None else ':latest'}",
                    )
                else:
                    add("AIT-P017", f"{where}: image {c.image} has no @sha256 digest")

        _analyse_secrets(c, where, add)
        tokens = _shell_tokens(c)
        joined = " ".join(tokens)
        env_literals = {e.name: e.value for e in c.env if e.source == "value" and e.value is not None}
        _analyse_remote_code(joined, env_literals, where, add)
        if _JUPYTER_NO_TOKEN.search(joined) and not _JUPYTER_PASSWORD.search(joined):
            add("AIT-P030", f"{where}: Jupyter started with an empty token and no password")
        if "ray" in joined and _RAY_OPEN_DASHBOARD.search(joined):
            add("AIT-P030", f"{where}: Ray dashboard/job API bound to all interfaces (unauthenticated)")
        _model_sources(c, tokens, env_literals, where, facts)

        for mount in c.volume_mounts:
            mounted = volumes.get(mount.name)
            if (
                mounted is not None
                and mounted.type in ("persistentVolumeClaim", "nfs", "hostPath", "csi")
                and not (mount.read_only or mounted.read_only)
                and _MODEL_MOUNT.search(mount.mount_path)
            ):
                facts.writable_model_mounts.append(
                    f'{where}: {mounted.type} "{mounted.name}" at {mount.mount_path}'
                )

        # Exposure facts: does anything authenticate requests, and which ports serve models.
        if _AUTH_PROXY_IMAGE.search(c.image):
            facts.auth_hint = True
        if any(t == f or t.startswith(f + "=") for t in tokens for f in _AUTH_FLAGS):
            facts.auth_hint = True
        if any(
            e.name in _AUTH_ENV and (e.source != "value" or not _is_placeholder(e.value or "")) for e in c.env
        ):
            facts.auth_hint = True
        if c.kind in ("container", "sidecar"):
            server = _server_of(c.image)
            ports = [p.container_port for p in c.ports] or list(server[1] if server else ())
            for number in ports:
                if server is not None or number in MODEL_SERVER_PORTS:
                    facts.serving_ports.setdefault(number, f"{where}{f' ({server[0]})' if server else ''}")
    if pod.annotations.get(AUTH_ANNOTATION, "").strip().lower() not in ("", "none", "false"):
        facts.auth_hint = True
    for uri in pod.model_uris:
        facts.model_sources.append((f"{pod_where} storageUri", uri, None))
    for where, source, revision in facts.model_sources:
        found = _source_issue(where, source, revision)
        if found is not None:
            add(*found)
    return facts


def _analyse_secrets(c: ContainerView, where: str, add: Callable[[str, str], None]) -> None:
    names: list[str] = []
    for env in c.env:
        if env.source != "value" or env.value is None or _is_placeholder(env.value):
            continue
        upper = env.name.upper()
        known = upper in _AI_SECRET_ENV or _SECRET_VALUE.match(env.value.strip()) is not None
        if known or (_GENERIC_SECRET_ENV.search(upper) is not None and len(env.value) >= 8):
            names.append(env.name)
    if names:
        # Name the variables, never their values: the reason ends up in status.
        add("AIT-P019", f"{where}: env {', '.join(names)} set as literal value")
    tokens = [*c.command, *c.args]
    flag = _flag_value(tokens, _SECRET_FLAGS)
    if flag is not None and flag[1] and not _is_placeholder(flag[1]) and not flag[1].startswith("/"):
        add("AIT-P019", f"{where}: {flag[0]} passed as a literal argument")
    elif any(_SECRET_VALUE.match(t) for t in _shell_split(tokens)):
        add("AIT-P019", f"{where}: a provider key appears literally in command/args")


def _shell_split(tokens: Sequence[str]) -> list[str]:
    out: list[str] = []
    for t in tokens:
        out.extend(part.partition("=")[2] or part for part in t.split())
    return out


def _analyse_remote_code(
    joined: str, env: Mapping[str, str | None], where: str, add: Callable[[str, str], None]
) -> None:
    for match in _TRUST_REMOTE.finditer(joined):
        value = match.group(2)
        if value is None or value.strip(",)").lower() not in _FALSY:
            add("AIT-P026", f"{where}: {match.group(0).strip()} in command/args")
            break
    for name in ("TRUST_REMOTE_CODE", "HF_TRUST_REMOTE_CODE", "VLLM_TRUST_REMOTE_CODE"):
        value = env.get(name)
        if value is not None and value.strip().lower() in ("true", "1", "yes", "on"):
            add("AIT-P026", f"{where}: env {name}={value}")


def _model_sources(
    c: ContainerView, tokens: Sequence[str], env: Mapping[str, str | None], where: str, facts: _PodFacts
) -> None:
    model = _flag_value(tokens, _MODEL_FLAGS)
    revision = _flag_value(tokens, _REVISION_FLAGS)
    rev = revision[1] if revision else None
    if rev is None:
        rev = next((v for k in _REVISION_ENV if (v := env.get(k))), None)
    if model is not None and model[1]:
        facts.model_sources.append((f"{where} {model[0]}", model[1], rev))
    else:
        # vLLM's `vllm serve <model>` form.
        for i, token in enumerate(tokens[:-1]):
            if (
                token == "serve"  # noqa: S105
                and i > 0
                and tokens[i - 1].endswith("vllm")
                and not tokens[i + 1].startswith("-")
            ):
                facts.model_sources.append((f"{where} vllm serve", tokens[i + 1], rev))
                break
        else:
            for name in _MODEL_ENV:
                value = env.get(name)
                if value:
                    facts.model_sources.append((f"{where} env {name}", value, rev))
                    break


# --- model and source checks -------------------------------------------------------------


def _source_issue(where: str, source: str, revision: str | None) -> tuple[str, str] | None:
    lower = source.lower()
    if lower.startswith("http://"):
        return "AIT-P024", f"{where}: {source} is fetched over plain HTTP"
    hub_id: str | None = None
    rev = revision
    if lower.startswith(("hf://", "huggingface://")):
        body = source.split("://", 1)[1]
        if "@" in body:
            hub_id, rev = body.split("@", 1)
        elif body.count(":") == 1:
            hub_id, rev = body.split(":", 1)
        else:
            hub_id = body
    elif lower.startswith("https://huggingface.co/"):
        path = source[len("https://huggingface.co/") :]
        parts = path.split("/")
        hub_id = "/".join(parts[:2])
        if len(parts) >= 4 and parts[2] in ("resolve", "tree", "blob"):
            rev = parts[3]
    elif _HUB_ID.match(source) and not lower.startswith(("s3", "gs", "oci", "pvc", "file")):
        hub_id = source
    if hub_id is None:
        return None
    if rev is None or not rev:
        return "AIT-P025", f"{where}: {hub_id} has no pinned revision (tracks main)"
    if not _COMMIT.match(rev):
        return "AIT-P025", f"{where}: {hub_id}@{rev} is a branch or tag, not a commit"
    return None


_DECLARED: dict[tuple[object, ...], tuple[tuple[str, str], ...]] = {}


def _declared_model_issues(model: DeclaredModel, pem: str | None) -> tuple[tuple[str, str], ...]:
    """(check id, line) pairs of one declared model, memoised on everything they depend on."""
    sig = model.signature
    ref = None if sig is None or sig.key_ref is None else (sig.key_ref.name, sig.key_ref.key)
    sig_key = None if sig is None else (sig.algorithm, sig.signature, sig.public_key, ref, sig.manifest)
    key = (model.name, model.source, model.digest, sig_key, pem)
    hit = _DECLARED.get(key)
    if hit is not None:
        return hit
    where = f'model "{model.name}"'
    out: list[tuple[str, str]] = []
    if model.digest is None:
        out.append(("AIT-P020", f"{where}: no digest"))
    verdict = verify_model_signature(model, pem)
    check_id = _VERDICT_CHECK.get(verdict.status)
    if check_id is not None:
        out.append((check_id, f"{where}: {verdict.reason}"))
    found = _source_issue(f"{where} source", model.source, None)
    if found is not None:
        out.append(found)
    if len(_DECLARED) >= 4096:
        _DECLARED.clear()
    _DECLARED[key] = result = tuple(out)
    return result


_VERDICT_CHECK: Mapping[SignatureStatus, str] = {
    SignatureStatus.MISSING: "AIT-P021",
    SignatureStatus.BAD: "AIT-P022",
    SignatureStatus.MALFORMED: "AIT-P022",
    SignatureStatus.UNVERIFIABLE: "AIT-P023",
}

# --- exposure ------------------------------------------------------------------------------

_INTERNAL_LB = {
    "service.beta.kubernetes.io/aws-load-balancer-internal": "true",
    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
    "service.beta.kubernetes.io/azure-load-balancer-internal": "true",
    "networking.gke.io/load-balancer-type": "Internal",
    "cloud.google.com/load-balancer-type": "Internal",
    "service.beta.kubernetes.io/oci-load-balancer-internal": "true",
}


def _m(value: Any) -> Mapping[str, Any]:
    # ``type() is dict`` first: the ABC isinstance check is slow and this runs per Service.
    return value if type(value) is dict or isinstance(value, Mapping) else {}


def _restricted(annotations: Mapping[str, Any]) -> bool:
    """Whether Service annotations make a load balancer internal or state upstream auth."""
    for key, value in _INTERNAL_LB.items():
        if str(annotations.get(key, "")).lower() == value.lower():
            return True
    return str(annotations.get(AUTH_ANNOTATION, "")).strip().lower() not in ("", "none", "false")


def _exposure_issues(
    pods: Sequence[PodTemplateView], facts: Sequence[_PodFacts], services: Sequence[Mapping[str, Any]]
) -> Sequence[str]:
    candidates = [(pod, f) for pod, f in zip(pods, facts, strict=True) if f.serving_ports and not f.auth_hint]
    if not candidates:
        return ()
    exposed: list[tuple[int, Mapping[str, Any]]] = []
    versions: list[tuple[str, str] | None] = []
    for index, svc in enumerate(services):
        spec = _m(svc.get("spec"))
        if spec.get("type") not in ("LoadBalancer", "NodePort") and not spec.get("externalIPs"):
            continue  # ClusterIP (the default) or headless: reachable in-cluster only
        exposed.append((index, svc))
        versions.append(object_version(svc))
    if not exposed:
        return ()
    if None in versions:  # offline manifests: nothing names the Services' content
        return [line for _, line in _exposure_lines(candidates, exposed)]
    # Live Services (uid + resourceVersion name their content): each pod's lines are memoised on
    # its facts, which live exactly as long as its view, for the last published Services seen.
    key = tuple(versions)
    numbered: list[tuple[int, str]] = []
    for pod, f in candidates:
        memo = f.exposure
        if memo is None or memo[0] != key:
            memo = (key, tuple(_exposure_lines([(pod, f)], exposed)))
            f.exposure = memo
        numbered.extend(memo[1])
    if len(candidates) > 1:  # Service order first, then pod order, as one pass lists them
        numbered.sort(key=_first)
    return [line for _, line in numbered]


def _first(item: tuple[int, str]) -> int:
    return item[0]


def _exposure_lines(
    candidates: Sequence[tuple[PodTemplateView, _PodFacts]], exposed: Sequence[tuple[int, Mapping[str, Any]]]
) -> list[tuple[int, str]]:
    """(Service index, line) of each serving port with no auth that an ``exposed`` Service publishes."""
    issues: list[tuple[int, str]] = []
    for index, svc in exposed:
        spec = _m(svc.get("spec"))
        svc_type = spec.get("type") or "ClusterIP"
        selector = _m(spec.get("selector"))
        if not selector:
            continue
        meta = _m(svc.get("metadata"))
        annotations = _m(meta.get("annotations"))
        if annotations and _restricted(annotations):
            continue
        ranges = spec.get("loadBalancerSourceRanges")
        if (
            ranges
            and svc_type == "LoadBalancer"
            and isinstance(ranges, list)
            and not any(r in ("0.0.0.0/0", "::/0") for r in ranges)
        ):
            continue
        svc_ns = meta.get("namespace")
        for pod, f in candidates:
            if svc_ns and svc_ns != pod.namespace:
                continue
            labels = pod.labels
            if any(labels.get(str(k)) != str(v) for k, v in selector.items()):
                continue
            for port in spec.get("ports") or ():
                port = _m(port)
                target = port.get("targetPort", port.get("port"))
                number = f.named_ports.get(target) if isinstance(target, str) else target
                if isinstance(number, int) and number in f.serving_ports:
                    issues.append(
                        (
                            index,
                            f'Service "{meta.get("name", "?")}" ({svc_type}) exposes '
                            f"{f.serving_ports[number]} port {number} with no auth in front",
                        )
                    )
    return issues


# --- entry point ---------------------------------------------------------------------------

_MAX_LISTED = 6


@lru_cache(maxsize=4096)
def _finding(check: Check, points: int, issues: tuple[str, ...]) -> Finding:
    shown = list(dict.fromkeys(issues))
    extra = len(shown) - _MAX_LISTED
    reason = "; ".join(shown[:_MAX_LISTED]) + (f"; and {extra} more" if extra > 0 else "")
    return Finding(
        check_id=check.id,
        title=check.title,
        severity=check.severity,
        points=points,
        reason=reason,
        remediation=check.remediation,
        references=check.references,
    )


_ASSEMBLED: dict[
    tuple[object, ...], tuple[tuple[tuple[Check, int], ...], tuple[_PodFacts, ...], tuple[Finding, ...]]
] = {}
_NO_WRITE_CHECK_KINDS = frozenset({WorkloadKind.TRAINING, WorkloadKind.PIPELINE, WorkloadKind.NOTEBOOK})


def score_posture(
    pods: Sequence[PodTemplateView],
    policy: TrustPolicySpec,
    workload: AIWorkloadSpec | None = None,
    services: Sequence[Mapping[str, Any]] = (),
    public_keys: Mapping[str, str] | None = None,
) -> list[Finding]:
    """Failed posture checks of ``pods`` (one finding per check id, in id order).

    ``services`` are Service objects (plain dicts) of the workload's namespace; ``public_keys``
    maps ``"<name>/<key>"`` of resolved signature keyRefs (or a model name) to PEM keys.
    """
    facts = tuple(map(_facts, pods))
    table = check_table(policy)
    # Issues that depend on the policy, the workload or the Services, as (check id, line).
    dynamic: list[tuple[str, str]] = []
    allowed = policy.posture.allowed_registries
    if allowed:
        allowed_key = tuple(allowed)
        for f in facts:
            lines = f.registry_issues.get(allowed_key)
            if lines is None:
                is_allowed = _registry_matcher(allowed_key)
                lines = tuple(
                    f"{where}: {parse_image(image).registry} ({image})"
                    for where, image in f.images
                    if not is_allowed(parse_image(image).name)
                )
                f.registry_issues[allowed_key] = lines
            dynamic.extend(("AIT-P018", line) for line in lines)
    if workload is None or workload.kind not in _NO_WRITE_CHECK_KINDS:
        for f in facts:
            dynamic.extend(("AIT-P031", line) for line in f.writable_model_mounts)
    if workload is not None:
        for model in workload.models:
            dynamic.extend(_declared_model_issues(model, resolve_public_key(model, public_keys)))
    if services:
        dynamic.extend(("AIT-P027", line) for line in _exposure_issues(pods, facts, services))

    key = (id(table), *map(id, facts), *dynamic)
    hit = _ASSEMBLED.get(key)
    # The entry holds table and facts, so no other live object can carry their ids: a key
    # hit means the very same objects.
    if hit is not None:
        return list(hit[2])

    merged: dict[str, list[str]] = {}
    for f in facts:
        for check_id, issue_lines in f.issues.items():
            merged.setdefault(check_id, []).extend(issue_lines)
    for check_id, line in dynamic:
        merged.setdefault(check_id, []).append(line)
    findings: list[Finding] = []
    for check, points in table:
        failed = merged.get(check.id)
        if failed:
            findings.append(_finding(check, points, tuple(failed)))
    if len(_ASSEMBLED) >= 4096:
        _ASSEMBLED.clear()
    _ASSEMBLED[key] = (table, facts, tuple(findings))
    return findings
