from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from aitrust.api.v1alpha1 import AIWorkloadSpec, Severity, TrustPolicySpec
from aitrust.core.posture import (
    AUTH_ANNOTATION,
    CHECKS,
    KUBE_API_ANNOTATION,
    check_table,
    parse_image,
    score_posture,
    validate_posture_settings,
)
from aitrust.core.workloads import build_pod_specs

Load = Callable[[str], Any]
HARDENED = "hardened-vllm.yaml"
COMMIT = "0e9e39f249a16976918f6564b8830bc894c89659"
DIGEST = "sha256:" + "ab" * 32


def policy(**posture: Any) -> TrustPolicySpec:
    return TrustPolicySpec.model_validate({"posture": posture})


def workload(*models: dict[str, Any], kind: str = "inference") -> AIWorkloadSpec:
    return AIWorkloadSpec.model_validate(
        {"kind": kind, "selector": {"matchLabels": {"app": "x"}}, "models": list(models)}
    )


# --- the registry itself ----------------------------------------------------------------


def test_registry_has_at_least_25_well_formed_checks() -> None:
    assert len(CHECKS) >= 25
    for check_id, check in CHECKS.items():
        assert re.fullmatch(r"AIT-P\d{3}", check_id) and check.id == check_id
        assert check.title and check.remediation and check.weight > 0
        assert check.references, check_id
        for ref in check.references:
            assert re.fullmatch(
                r"LLM(0[1-9]|10):2025|AML\.T\d{4}(\.\d{3})?|NSA-CISA:[a-z-]+|K8S-PSS:(baseline|restricted)",
                ref,
            ), ref
    # Every reference family the brief names is used somewhere.
    refs = {r for c in CHECKS.values() for r in c.references}
    for needed in ("AML.T0010", "AML.T0011", "AML.T0049", "AML.T0055"):
        assert any(r.startswith(needed) for r in refs), needed
    assert any(r.startswith("LLM") for r in refs) and any(r.startswith("NSA-CISA") for r in refs)


def test_hardened_variant_passes_every_pod_check(load: Load) -> None:
    loaded = load(HARDENED)
    found = loaded.findings(with_workload=False)
    assert found == {}, {k: f.reason for k, f in found.items()}


# --- every check: fires where it should, names the culprit, and not on the hardened pod ---------

POSITIVE: list[tuple[str, str, str]] = [
    ("AIT-P001", "triton-deployment.yaml", 'container "triton": securityContext.privileged=true'),
    ("AIT-P001", "langchain-agent.yaml", 'container "code-interpreter": securityContext.privileged=true'),
    ("AIT-P002", "vllm-deployment.yaml", 'container "vllm": allowPrivilegeEscalation not set to false'),
    ("AIT-P003", "ollama-statefulset.yaml", 'container "ollama": runAsUser=0'),
    ("AIT-P003", "vllm-deployment.yaml", 'container "log-shipper": neither runAsNonRoot nor runAsUser set'),
    ("AIT-P004", "triton-deployment.yaml", 'container "triton": capabilities.add SYS_PTRACE, IPC_LOCK'),
    ("AIT-P004", "training-job.yaml", "SYS_ADMIN"),
    ("AIT-P005", "vllm-deployment.yaml", 'container "vllm": capabilities.drop lacks ALL'),
    ("AIT-P006", "vllm-deployment.yaml", 'container "vllm": readOnlyRootFilesystem not true'),
    ("AIT-P007", "vllm-deployment.yaml", 'container "vllm": seccompProfile unset'),
    ("AIT-P008", "training-job.yaml", "pod: hostNetwork=true"),
    ("AIT-P009", "training-job.yaml", "pod: hostPID=true"),
    ("AIT-P010", "triton-deployment.yaml", "pod: hostIPC=true"),
    ("AIT-P011", "tgi-deployment.yaml", 'volume "data" is hostPath /mnt/tgi-data'),
    ("AIT-P012", "langchain-agent.yaml", "container runtime socket (/var/run/docker.sock)"),
    ("AIT-P013", "vllm-deployment.yaml", "automountServiceAccountToken not set"),
    ("AIT-P013", "langchain-agent.yaml", "automountServiceAccountToken true"),
    ("AIT-P014", "vllm-deployment.yaml", 'container "vllm": no cpu or memory limit'),
    ("AIT-P014", "ollama-statefulset.yaml", 'container "ollama": no cpu limit'),
    ("AIT-P015", "training-job.yaml", 'container "trainer": requests nvidia.com/gpu=8 with limit unset'),
    ("AIT-P016", "vllm-deployment.yaml", 'container "vllm": image vllm/vllm-openai:latest uses :latest'),
    ("AIT-P017", "tgi-deployment.yaml", "text-generation-inference:2.4.1 has no @sha256 digest"),
    ("AIT-P019", "tgi-deployment.yaml", 'container "tgi": env HF_TOKEN set as literal value'),
    ("AIT-P019", "langchain-agent.yaml", "env OPENAI_API_KEY, TAVILY_API_KEY set as literal value"),
    ("AIT-P019", "training-job.yaml", "env WANDB_API_KEY set as literal value"),
    (
        "AIT-P025",
        "vllm-deployment.yaml",
        "meta-llama/Llama-3.1-8B-Instruct@main is a branch or tag, not a commit",
    ),
    (
        "AIT-P025",
        "tgi-deployment.yaml",
        "env MODEL_ID: mistralai/Mistral-7B-Instruct-v0.3 has no pinned revision",
    ),
    (
        "AIT-P025",
        "kserve-inferenceservice.yaml",
        "storageUri: Qwen/Qwen2.5-7B-Instruct has no pinned revision",
    ),
    ("AIT-P026", "vllm-deployment.yaml", 'container "vllm": trust-remote-code'),
    ("AIT-P026", "kserve-inferenceservice.yaml", 'predictor container "kserve-container": trust_remote_code'),
    (
        "AIT-P027",
        "vllm-deployment.yaml",
        'Service "llama-vllm" (LoadBalancer) exposes container "vllm" (vLLM) port 8000',
    ),
    (
        "AIT-P027",
        "tgi-deployment.yaml",
        'Service "mistral-tgi" (NodePort) exposes container "tgi" (TGI) port 80',
    ),
    ("AIT-P027", "ollama-statefulset.yaml", "(Ollama) port 11434"),
    ("AIT-P028", "vllm-deployment.yaml", "runs as the namespace's default service account"),
    ("AIT-P029", "ollama-statefulset.yaml", 'container "ollama": hostPort 11434'),
    ("AIT-P030", "jupyter-notebook.yaml", "Jupyter started with an empty token and no password"),
    ("AIT-P030", "ray-cluster.yaml", "Ray dashboard/job API bound to all interfaces"),
    (
        "AIT-P031",
        "triton-deployment.yaml",
        'container "triton": persistentVolumeClaim "model-repo" at /models',
    ),
    ("AIT-P032", "triton-deployment.yaml", 'container "triton": AppArmor profile Unconfined'),
]


@pytest.mark.parametrize(("check_id", "manifest", "fragment"), POSITIVE)
def test_check_fires_with_a_specific_reason(load: Load, check_id: str, manifest: str, fragment: str) -> None:
    found = load(manifest).findings()
    assert check_id in found, sorted(found)
    finding = found[check_id]
    assert fragment in finding.reason
    check = CHECKS[check_id]
    assert (finding.title, finding.severity, finding.points) == (check.title, check.severity, check.weight)
    assert finding.remediation == check.remediation and finding.references == check.references


@pytest.mark.parametrize("check_id", sorted({p[0] for p in POSITIVE}))
def test_check_is_silent_on_the_hardened_variant(load: Load, check_id: str) -> None:
    assert check_id not in load(HARDENED).findings(with_workload=False)


def test_every_pod_check_has_a_positive_case() -> None:
    model_checks = {"AIT-P018", "AIT-P020", "AIT-P021", "AIT-P022", "AIT-P023", "AIT-P024"}
    assert {p[0] for p in POSITIVE} | model_checks == set(CHECKS)


# --- focused negatives and variants ------------------------------------------------------------


def test_only_net_bind_service_is_an_acceptable_added_capability(load: Load) -> None:
    loaded = load(HARDENED)
    loaded.container("vllm")["securityContext"]["capabilities"]["add"] = ["NET_BIND_SERVICE"]
    assert "AIT-P004" not in loaded.findings(with_workload=False)
    loaded.container("vllm")["securityContext"]["capabilities"]["add"] = ["NET_BIND_SERVICE", "NET_RAW"]
    assert "NET_RAW" in loaded.findings(with_workload=False)["AIT-P004"].reason


def test_explicit_unconfined_seccomp_fails_and_pod_default_passes(load: Load) -> None:
    loaded = load(HARDENED)
    loaded.container("vllm")["securityContext"]["seccompProfile"] = {"type": "Unconfined"}
    found = loaded.findings(with_workload=False)
    assert found["AIT-P007"].reason == 'container "vllm": seccompProfile Unconfined'


def test_run_as_user_zero_overrides_pod_non_root(load: Load) -> None:
    loaded = load(HARDENED)
    loaded.container("log-shipper")["securityContext"]["runAsUser"] = 0
    assert load(HARDENED).findings(with_workload=False).get("AIT-P003") is None
    assert 'container "log-shipper": runAsUser=0' in loaded.findings(with_workload=False)["AIT-P003"].reason


def test_hostpath_to_the_runtime_directory_counts_as_the_socket(load: Load) -> None:
    loaded = load("tgi-deployment.yaml")
    assert "AIT-P012" not in loaded.findings()  # a data directory is a hostPath, not the socket
    loaded.pod_spec["volumes"][0]["hostPath"]["path"] = "/run/containerd/"
    found = loaded.findings()
    assert "AIT-P011" in found and "(/run/containerd)" in found["AIT-P012"].reason


def test_token_automount_opt_out_by_annotation(load: Load) -> None:
    loaded = load("vllm-deployment.yaml")
    loaded.main["spec"]["template"]["metadata"]["annotations"] = {KUBE_API_ANNOTATION: "true"}
    assert "AIT-P013" not in loaded.findings()


def test_limits_are_not_required_of_init_containers(load: Load) -> None:
    found = load("training-job.yaml").findings()
    assert "fetch-dataset" not in found["AIT-P014"].reason
    assert "trainer" in found["AIT-P014"].reason


def test_gpu_request_with_equal_limit_passes(load: Load) -> None:
    loaded = load("training-job.yaml")
    resources = loaded.container("trainer")["resources"]
    resources["limits"] = {"cpu": "32", "memory": "256Gi", "nvidia.com/gpu": "8"}
    found = loaded.findings()
    assert "AIT-P015" not in found and "AIT-P014" not in found
    resources["limits"]["nvidia.com/gpu"] = "4"
    assert "with limit 4" in loaded.findings()["AIT-P015"].reason


def test_untagged_image_is_mutable_and_latest_is_not_double_counted(load: Load) -> None:
    loaded = load("vllm-deployment.yaml")
    found = loaded.findings()
    assert "vllm-openai" not in found["AIT-P017"].reason  # :latest is reported by P016 only
    loaded.container("vllm")["image"] = "vllm/vllm-openai"
    assert "uses no tag" in loaded.findings()["AIT-P016"].reason
    loaded.container("vllm")["image"] = "vllm/vllm-openai:latest@sha256:" + "0" * 64
    found = loaded.findings()
    assert "AIT-P016" not in found and "vllm-openai" not in found["AIT-P017"].reason


def test_allowed_registries(load: Load) -> None:
    loaded = load("vllm-deployment.yaml")
    assert "AIT-P018" not in loaded.findings(policy())  # empty list: any registry
    found = loaded.findings(policy(allowedRegistries=["ghcr.io/acme"]))["AIT-P018"]
    assert 'container "vllm": docker.io (vllm/vllm-openai:latest)' in found.reason
    assert 'container "log-shipper": cr.fluentbit.io' in found.reason
    allowed = policy(allowedRegistries=["docker.io/vllm", "cr.fluentbit.io/fluent/"])
    assert "AIT-P018" not in loaded.findings(allowed)
    # A prefix must end at a path boundary: ghcr.io/acme does not allow ghcr.io/acme-evil.
    assert "AIT-P018" not in load(HARDENED).findings(
        policy(allowedRegistries=["ghcr.io/acme"]), with_workload=False
    )
    evil = load(HARDENED)
    evil.container("vllm")["image"] = "ghcr.io/acme-evil/vllm:1@sha256:" + "1" * 64
    assert (
        "acme-evil"
        in evil.findings(policy(allowedRegistries=["ghcr.io/acme"]), with_workload=False)["AIT-P018"].reason
    )


@pytest.mark.parametrize(
    ("ref", "registry", "repository", "tag", "digest"),
    [
        ("nginx", "docker.io", "library/nginx", None, None),
        ("vllm/vllm-openai:latest", "docker.io", "vllm/vllm-openai", "latest", None),
        ("localhost:5000/app:1", "localhost:5000", "app", "1", None),
        ("GHCR.IO/acme/x@sha256:" + "a" * 64, "ghcr.io", "acme/x", None, "sha256:" + "a" * 64),
        ("index.docker.io/library/busybox:1.36", "docker.io", "library/busybox", "1.36", None),
        ("nvcr.io/nvidia/tritonserver:24.08-py3", "nvcr.io", "nvidia/tritonserver", "24.08-py3", None),
    ],
)
def test_parse_image(ref: str, registry: str, repository: str, tag: str | None, digest: str | None) -> None:
    image = parse_image(ref)
    assert (image.registry, image.repository, image.tag, image.digest) == (registry, repository, tag, digest)


@pytest.mark.parametrize("value", ["EMPTY", "", "$(OPENAI_API_KEY)", "dummy"])
def test_placeholders_are_not_plaintext_secrets(load: Load, value: str) -> None:
    loaded = load("langchain-agent.yaml")
    env = loaded.container("agent")["env"]
    env[0]["value"] = value
    del env[2]  # TAVILY_API_KEY
    assert "AIT-P019" not in loaded.findings()


def test_plaintext_secret_reasons_never_carry_the_value(load: Load) -> None:
    for name in ("langchain-agent.yaml", "tgi-deployment.yaml", "training-job.yaml"):
        reason = load(name).findings()["AIT-P019"].reason
        assert not re.search(r"sk-proj|hf_[A-Za-z]|tvly-|4a1f0c9e", reason), reason


def test_secret_detected_by_value_shape_and_in_arguments(load: Load) -> None:
    loaded = load(HARDENED)
    loaded.container("log-shipper")["env"] = [
        {"name": "UPSTREAM_CREDENTIAL", "value": "sk-ant-api03-abcdefghijklmnop"}
    ]
    assert "env UPSTREAM_CREDENTIAL" in loaded.findings(with_workload=False)["AIT-P019"].reason
    loaded = load(HARDENED)
    args = loaded.container("vllm")["args"]
    args[args.index("--api-key") + 1] = "s3cr3t-t0k3n-value"
    assert "--api-key passed as a literal argument" in loaded.findings(with_workload=False)["AIT-P019"].reason


def test_trust_remote_code_false_is_fine(load: Load) -> None:
    loaded = load("vllm-deployment.yaml")
    args = loaded.container("vllm")["args"]
    args[args.index("--trust-remote-code")] = "--trust-remote-code=false"
    assert "AIT-P026" not in loaded.findings()
    loaded.container("vllm")["env"].append({"name": "TRUST_REMOTE_CODE", "value": "true"})
    assert "env TRUST_REMOTE_CODE=true" in loaded.findings()["AIT-P026"].reason


def test_trust_remote_code_inside_a_shell_string(load: Load) -> None:
    loaded = load(HARDENED)
    loaded.container("log-shipper")["command"] = [
        "python",
        "-c",
        "from transformers import AutoModel; AutoModel.from_pretrained('x/y', trust_remote_code=True)",
    ]
    assert "trust_remote_code=True" in loaded.findings(with_workload=False)["AIT-P026"].reason


def test_vllm_serve_positional_model_is_checked(load: Load) -> None:
    loaded = load(HARDENED)
    loaded.container("vllm")["command"] = ["vllm", "serve", "Qwen/Qwen2.5-7B-Instruct"]
    loaded.container("vllm")["args"] = ["--port", "8000"]
    assert (
        "vllm serve: Qwen/Qwen2.5-7B-Instruct has no pinned revision"
        in loaded.findings(with_workload=False)["AIT-P025"].reason
    )


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda svc, c: svc["spec"].update(type="ClusterIP"), id="cluster-ip"),
        pytest.param(lambda svc, c: c["args"].extend(["--api-key", "$(VLLM_API_KEY)"]), id="api-key-flag"),
        pytest.param(
            lambda svc, c: svc["metadata"].update(annotations={AUTH_ANNOTATION: "oidc-gateway"}), id="auth"
        ),
        pytest.param(
            lambda svc, c: svc["metadata"].update(
                annotations={"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"}
            ),
            id="internal-lb",
        ),
        pytest.param(
            lambda svc, c: svc["spec"].update(loadBalancerSourceRanges=["10.0.0.0/8"]), id="source-ranges"
        ),
        pytest.param(lambda svc, c: svc["spec"].update(selector={"app": "other"}), id="other-pods"),
        pytest.param(lambda svc, c: svc["metadata"].update(namespace="elsewhere"), id="other-namespace"),
    ],
)
def test_exposure_mitigations(load: Load, mutate: Callable[[dict[str, Any], dict[str, Any]], None]) -> None:
    loaded = load("vllm-deployment.yaml")
    assert "AIT-P027" in loaded.findings()
    mutate(loaded.services()[0], loaded.container("vllm"))
    assert "AIT-P027" not in loaded.findings()


def test_open_source_ranges_do_not_mitigate(load: Load) -> None:
    loaded = load("vllm-deployment.yaml")
    loaded.services()[0]["spec"]["loadBalancerSourceRanges"] = ["0.0.0.0/0"]
    assert "AIT-P027" in loaded.findings()


def test_auth_proxy_sidecar_counts_as_auth(load: Load) -> None:
    loaded = load("ollama-statefulset.yaml")
    loaded.pod_spec["containers"].append(
        {"name": "auth", "image": "quay.io/oauth2-proxy/oauth2-proxy:v7.7.1"}
    )
    assert "AIT-P027" not in loaded.findings()


def test_jupyter_with_password_passes(load: Load) -> None:
    loaded = load("jupyter-notebook.yaml")
    loaded.container("notebook")["args"].append(
        "--PasswordIdentityProvider.hashed_password=argon2:$argon2id$v=19"
    )
    assert "AIT-P030" not in loaded.findings()


def test_writable_model_store_ignored_for_training(load: Load) -> None:
    loaded = load("triton-deployment.yaml")
    assert "AIT-P031" not in loaded.findings(workload=workload(kind="training"))
    assert "AIT-P031" in loaded.findings(workload=workload(kind="inference"))
    loaded.container("triton")["volumeMounts"][0]["readOnly"] = True
    assert "AIT-P031" not in loaded.findings()


def test_selinux_privileged_type_fails(load: Load) -> None:
    loaded = load(HARDENED)
    loaded.pod_spec["securityContext"]["seLinuxOptions"] = {"type": "spc_t"}
    reason = loaded.findings(with_workload=False)["AIT-P032"].reason
    assert 'container "vllm": SELinux type spc_t' in reason and "log-shipper" in reason


# --- declared models --------------------------------------------------------------------------


def test_declared_model_without_digest_or_signature() -> None:
    wl = workload({"name": "m", "source": f"hf://org/m@{COMMIT}"})
    found = {f.check_id: f for f in score_posture([], TrustPolicySpec(), wl)}
    assert found["AIT-P020"].reason == 'model "m": no digest'
    assert found["AIT-P021"].reason == 'model "m": no signature declared'
    assert found["AIT-P021"].severity is Severity.MEDIUM
    assert "AIT-P025" not in found


def test_declared_model_with_good_digest_signature_passes(ed_key: Any, pem_of: Any, sign: Any) -> None:
    signature = {
        "algorithm": "ed25519",
        "signature": sign(ed_key, DIGEST.encode()),
        "publicKey": pem_of(ed_key),
    }
    wl = workload({"name": "m", "source": f"hf://org/m@{COMMIT}", "digest": DIGEST, "signature": signature})
    assert score_posture([], TrustPolicySpec(), wl) == []


def test_bad_signature_is_high(ed_key: Any, pem_of: Any, sign: Any) -> None:
    signature = {
        "algorithm": "ed25519",
        "signature": sign(ed_key, b"sha256:other"),
        "publicKey": pem_of(ed_key),
    }
    wl = workload({"name": "m", "source": f"hf://org/m@{COMMIT}", "digest": DIGEST, "signature": signature})
    [finding] = score_posture([], TrustPolicySpec(), wl)
    assert finding.check_id == "AIT-P022" and finding.severity is Severity.HIGH
    assert "does not verify" in finding.reason


def test_unresolved_key_ref_is_unverifiable(ed_key: Any, pem_of: Any, sign: Any) -> None:
    signature = {
        "algorithm": "ed25519",
        "signature": sign(ed_key, DIGEST.encode()),
        "keyRef": {"name": "signing", "key": "pub"},
    }
    wl = workload({"name": "m", "source": f"hf://org/m@{COMMIT}", "digest": DIGEST, "signature": signature})
    [finding] = score_posture([], TrustPolicySpec(), wl)
    assert finding.check_id == "AIT-P023"
    assert score_posture([], TrustPolicySpec(), wl, public_keys={"signing/pub": pem_of(ed_key)}) == []


@pytest.mark.parametrize(
    ("source", "check_id", "fragment"),
    [
        ("http://models.internal/llama.tar", "AIT-P024", "plain HTTP"),
        ("hf://org/model", "AIT-P025", "org/model has no pinned revision"),
        ("hf://org/model@main", "AIT-P025", "org/model@main is a branch or tag"),
        ("hf://org/model:v1.0", "AIT-P025", "org/model@v1.0 is a branch or tag"),
        ("https://huggingface.co/org/model/resolve/main/model.safetensors", "AIT-P025", "org/model@main"),
        ("org/model", "AIT-P025", "org/model has no pinned revision"),
    ],
)
def test_model_source_checks(source: str, check_id: str, fragment: str) -> None:
    wl = workload({"name": "m", "source": source, "digest": DIGEST})
    found = {f.check_id: f for f in score_posture([], TrustPolicySpec(), wl)}
    assert fragment in found[check_id].reason


@pytest.mark.parametrize(
    "source",
    [
        f"hf://org/model@{COMMIT}",
        f"https://huggingface.co/org/model/resolve/{COMMIT}/model.safetensors",
        "s3://bucket/models/llama",
        "oci://ghcr.io/acme/models/llama:1",
        "pvc://weights/llama",
    ],
)
def test_pinned_or_non_hub_sources_pass(source: str) -> None:
    wl = workload({"name": "m", "source": source, "digest": DIGEST})
    found = {f.check_id for f in score_posture([], TrustPolicySpec(), wl)}
    assert not found & {"AIT-P024", "AIT-P025"}


# --- aggregation, overrides, caching ---------------------------------------------------------


def test_many_containers_lose_a_checks_weight_once() -> None:
    containers = [
        {"name": f"c{i}", "image": f"ghcr.io/acme/c:{i}", "securityContext": {"privileged": True}}
        for i in range(10)
    ]
    [pod] = build_pod_specs({"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": containers}})
    found = {f.check_id: f for f in score_posture([pod], TrustPolicySpec())}
    assert found["AIT-P001"].points == CHECKS["AIT-P001"].weight
    assert len(found) == len(set(found))
    assert found["AIT-P001"].reason.endswith("and 4 more")
    assert 'container "c0"' in found["AIT-P001"].reason


def test_findings_come_in_check_id_order_one_per_check(load: Load) -> None:
    found = score_posture(load("training-job.yaml").pods(), TrustPolicySpec())
    ids = [f.check_id for f in found]
    assert ids == sorted(ids) and len(ids) == len(set(ids))


def test_overrides_change_weight_and_disable(load: Load) -> None:
    loaded = load("vllm-deployment.yaml")
    tuned = policy(checks=[{"id": "AIT-P016", "weight": 40}, {"id": "AIT-P027", "enabled": False}])
    found = loaded.findings(tuned)
    assert found["AIT-P016"].points == 40 and "AIT-P027" not in found
    zero = policy(checks=[{"id": "AIT-P016", "weight": 0}])
    assert loaded.findings(zero)["AIT-P016"].points == 0
    assert [c.id for c, _ in check_table(tuned)] == [c for c in CHECKS if c != "AIT-P027"]


def test_validate_posture_settings() -> None:
    good = policy(checks=[{"id": "AIT-P001", "weight": 50}], allowedRegistries=["ghcr.io/acme"])
    assert validate_posture_settings(good) == []
    bad = policy(
        checks=[{"id": "AIT-P999"}, {"id": "AIT-P001"}, {"id": "AIT-P001"}],
        allowedRegistries=["https://ghcr.io", " "],
    )
    errors = validate_posture_settings(bad)
    assert any("unknown check id AIT-P999" in e for e in errors)
    assert any("duplicate override for AIT-P001" in e for e in errors)
    assert sum("allowedRegistries" in e for e in errors) == 2


def test_repeated_scoring_is_stable_and_reflects_changes(load: Load) -> None:
    loaded = load("vllm-deployment.yaml")
    pods, services = loaded.pods(), loaded.services()
    first = score_posture(pods, TrustPolicySpec(), None, services)
    assert score_posture(pods, TrustPolicySpec(), None, services) == first
    # The memo is keyed by content: a changed Service changes the outcome.
    services[0]["spec"]["type"] = "ClusterIP"
    assert "AIT-P027" not in {f.check_id for f in score_posture(pods, TrustPolicySpec(), None, services)}
    assert "AIT-P027" in {f.check_id for f in first}
