"""AI inventory and its CycloneDX 1.6 ML-BOM, checked with cyclonedx-python-lib's strict JSON schema."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from aitrust.core.inventory import build_cyclonedx, build_inventory

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
SERIAL = "3e671687-395b-41f5-a30f-a58921a69b79"
TIMESTAMP = "2026-05-01T12:00:00Z"
DIGEST_HEX = "5f1d6a3c9b8e7f2a4d0c6b1e9f3a7d5c5f1d6a3c9b8e7f2a4d0c6b1e9f3a7d5c"


def _load(*paths: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in paths:
        out += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return out


def _platform() -> list[dict[str, Any]]:
    objects = _load(CORPUS / "scan" / "platform.yaml")
    training = [
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "finetune", "namespace": "llm"},
            "spec": {
                "template": {
                    "metadata": {"labels": {"app": "finetune"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "train",
                                "image": "pytorch/pytorch:2.4.1-cuda12.1-cudnn9-runtime@sha256:" + "c" * 64,
                                "command": ["torchrun", "train.py"],
                            }
                        ]
                    },
                }
            },
        },
        {
            "apiVersion": "aitrust.dev/v1alpha1",
            "kind": "AIWorkload",
            "metadata": {"name": "finetune", "namespace": "llm"},
            "spec": {
                "kind": "training",
                "selector": {"matchLabels": {"app": "finetune"}},
                "models": [{"name": "acme/support-tone-lora", "source": "s3://acme-models/support-tone/v3"}],
                "access": {"dataSources": [{"name": "tickets"}]},
            },
        },
        {
            "apiVersion": "aitrust.dev/v1alpha1",
            "kind": "DataSource",
            "metadata": {"name": "tickets", "namespace": "llm"},
            "spec": {
                "type": "s3",
                "hosts": ["acme-tickets.s3.eu-west-1.amazonaws.com"],
                "sensitivity": "confidential",
            },
        },
    ]
    return objects + training


def _bom(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return build_cyclonedx(build_inventory(objects), SERIAL, TIMESTAMP, "0.1.0", "manifests")


@cache
def _validator() -> JsonStrictValidator:
    return JsonStrictValidator(SchemaVersion.V1_6)


def _validate(bom: dict[str, Any]) -> Any:
    """None when ``bom`` is valid CycloneDX 1.6, else the validation error."""
    return _validator().validate_str(json.dumps(bom))


# --- inventory ------------------------------------------------------------------------------------


def test_inventory_lists_ai_workloads_and_managed_ones_only() -> None:
    inv = build_inventory(_platform())
    assert {(w.kind, w.name) for w in inv.workloads} == {
        ("Deployment", "llama-chat"),
        ("Deployment", "support-bot"),
        ("Deployment", "ollama-test"),
        ("Job", "finetune"),
    }  # status-page (nginx) is neither AI nor managed
    ollama = next(w for w in inv.workloads if w.name == "ollama-test")
    assert (
        ollama.managed_by == []
        and ollama.category == "inference"
        and ollama.images == ["ollama/ollama:latest"]
    )
    assert {a.name: a.workloads for a in inv.ai_workloads} == {
        "finetune": ["Job/finetune"],
        "llama-chat": ["Deployment/llama-chat"],
        "support-bot": ["Deployment/support-bot"],
    }


def test_inventory_lists_models_endpoints_and_data_sources() -> None:
    inv = build_inventory(_platform())
    assert sorted((m.name, m.digest, m.signed) for m in inv.models) == [
        ("acme/support-tone-lora", None, False),
        ("meta-llama/Llama-3.1-8B-Instruct", f"sha256:{DIGEST_HEX}", False),
    ]
    assert {e.name: e.provider for e in inv.model_endpoints} == {"llama": "in-cluster", "openai": "openai"}
    assert {d.name: (d.type, d.sensitivity) for d in inv.data_sources} == {
        "customer-db": ("postgres", "restricted"),
        "tickets": ("s3", "confidential"),
    }


def test_a_model_declared_twice_is_one_model_used_by_both() -> None:
    objects = _platform()
    twin = copy.deepcopy(
        next(o for o in objects if o["kind"] == "AIWorkload" and o["metadata"]["name"] == "llama-chat")
    )
    twin["metadata"]["name"] = "llama-canary"
    inv = build_inventory([*objects, twin])
    llama = [m for m in inv.models if m.name == "meta-llama/Llama-3.1-8B-Instruct"]
    assert len(llama) == 1 and llama[0].used_by == ["llm/llama-chat", "llm/llama-canary"]


def test_invalid_objects_are_reported_not_fatal() -> None:
    broken = {
        "apiVersion": "aitrust.dev/v1alpha1",
        "kind": "ModelEndpoint",
        "metadata": {"name": "x"},
        "spec": {},
    }
    inv = build_inventory([*_platform(), broken])
    assert any("ModelEndpoint default/x" in p for p in inv.problems)
    assert len(inv.model_endpoints) == 2


def test_classified_corpus_workloads_all_appear() -> None:
    ai_files = sorted((CORPUS / "ai").rglob("*.yaml"))
    non_ai = sorted((CORPUS / "non-ai").rglob("*.yaml"))
    inv = build_inventory(_load(*ai_files, *non_ai))
    names = {w.name for w in inv.workloads}
    assert "support-bot" in names and "qdrant" in names
    assert not names & {"web", "redis", "orders-db", "datadog-agent"}


# --- CycloneDX ------------------------------------------------------------------------------------


def test_bom_is_valid_cyclonedx_1_6() -> None:
    bom = _bom(_platform())
    assert _validate(bom) is None
    assert (bom["bomFormat"], bom["specVersion"]) == ("CycloneDX", "1.6")
    assert bom["serialNumber"] == f"urn:uuid:{SERIAL}" and bom["metadata"]["timestamp"] == TIMESTAMP


def test_the_whole_corpus_is_a_valid_bom_too() -> None:
    bom = _bom(_load(*sorted(CORPUS.rglob("*.yaml"))))
    assert _validate(bom) is None
    assert len(bom["components"]) > 40


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda b: b["components"][0].update(type="ai-thing"),
        lambda b: next(c for c in b["components"] if "hashes" in c)["hashes"][0].update(content="not-hex"),
        lambda b: b.update(serialNumber="bom-1"),
        lambda b: b["services"][0].pop("name"),
        lambda b: b["components"][0].update(owner="team-a"),
        lambda b: b["dependencies"][0].update(dependsOn="model:x"),
        lambda b: next(c for c in b["components"] if c["type"] == "data")["data"][0].update(type="table"),
    ],
    ids=["component-type", "hash", "serial", "service-name", "extra-key", "depends-on", "data-type"],
)
def test_a_corrupted_bom_fails_validation(corrupt: Any) -> None:
    bom = _bom(_platform())
    corrupt(bom)
    assert _validate(bom) is not None


def _by_ref(bom: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {x["bom-ref"]: x for x in [*bom["components"], *bom["services"]]}


def test_models_are_ml_model_components_with_hashes_and_cards() -> None:
    bom = _bom(_platform())
    models = [c for c in bom["components"] if c["type"] == "machine-learning-model"]
    assert {m["name"] for m in models} == {"meta-llama/Llama-3.1-8B-Instruct", "acme/support-tone-lora"}
    llama = next(m for m in models if m["name"].startswith("meta-llama"))
    assert llama["hashes"] == [{"alg": "SHA-256", "content": DIGEST_HEX}]
    assert llama["version"] == "0e9e39f249a16976918f6564b8830bc894c89659"  # the pinned hub revision
    assert llama["externalReferences"][0]["url"].startswith("hf://meta-llama/")
    props = {p["name"]: p["value"] for p in llama["modelCard"]["properties"]}
    assert props["aitrust:signed"] == "false" and props["aitrust:declaredBy"] == "llm/llama-chat"
    assert llama["modelCard"]["considerations"] == {"useCases": ["inference (AIWorkload llm/llama-chat)"]}
    lora = next(m for m in models if m["name"] == "acme/support-tone-lora")
    assert "hashes" not in lora  # no digest declared, nothing invented
    # A training workload's data sources are what its model is trained on.
    assert lora["modelCard"]["modelParameters"]["datasets"] == [{"ref": "datasource:llm/tickets"}]


def test_data_sources_and_endpoints() -> None:
    bom = _bom(_platform())
    refs = _by_ref(bom)
    db = refs["datasource:llm/customer-db"]
    assert db["type"] == "data" and db["data"][0]["classification"] == "restricted"
    tickets = refs["datasource:llm/tickets"]
    assert tickets["data"][0]["contents"]["url"] == "https://acme-tickets.s3.eu-west-1.amazonaws.com"
    openai = refs["endpoint:llm/openai"]
    assert openai["endpoints"] == ["https://api.openai.com"] and openai["x-trust-boundary"] is True
    assert openai["provider"] == {"name": "openai"}
    llama = refs["endpoint:llm/llama"]
    assert llama["endpoints"] == ["http://llama-chat.llm.svc:80"] and llama["x-trust-boundary"] is False


def test_dependencies_link_workloads_to_what_they_use() -> None:
    bom = _bom(_platform())
    refs = _by_ref(bom)
    deps = {d["ref"]: d["dependsOn"] for d in bom["dependencies"]}
    assert len(refs) == len(bom["components"]) + len(bom["services"])  # bom-refs are unique
    for ref, targets in deps.items():
        assert ref in refs and all(t in refs for t in targets), ref
    assert set(deps["aiworkload:llm/support-bot"]) == {
        "endpoint:llm/llama",
        "endpoint:llm/openai",
        "datasource:llm/customer-db",
        "workload:llm/Deployment/support-bot",
    }
    assert deps["aiworkload:llm/llama-chat"][0] == f"model:sha256:{DIGEST_HEX}"
    # A managed workload uses its images and what its AIWorkload declares.
    assert deps["workload:llm/Deployment/llama-chat"] == [
        "image:docker.io/vllm/vllm-openai:v0.6.4@sha256:4c1e4d7b0f3a9e2d6c8b5a7f9e1d3c5b7a9f2e4d6c8b0a1f3e5d7c9b1a3f5e7d",
        f"model:sha256:{DIGEST_HEX}",
    ]
    assert deps["workload:llm/Deployment/ollama-test"] == ["image:ollama/ollama:latest"]
    image = refs["image:pytorch/pytorch:2.4.1-cuda12.1-cudnn9-runtime@sha256:" + "c" * 64]
    assert image["type"] == "container" and image["hashes"] == [{"alg": "SHA-256", "content": "c" * 64}]


def test_bom_is_deterministic_for_the_same_input() -> None:
    assert json.dumps(_bom(_platform())) == json.dumps(_bom(_platform()))
