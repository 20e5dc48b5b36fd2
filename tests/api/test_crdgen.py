"""The CRD YAML in crds/ is exactly what the pydantic models generate, and documents every field."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from aitrust.api import v1alpha1 as api
from aitrust.api.crdgen import KINDS, build_crd, crd_filename, render_crd_yaml
from tests.conftest import CRDS


@pytest.mark.parametrize("info", KINDS, ids=[k.kind for k in KINDS])
def test_crd_yaml_has_not_drifted(info: Any) -> None:
    on_disk = (CRDS / crd_filename(info)).read_text()
    assert on_disk == render_crd_yaml(info), "run `make generate` and commit crds/"


def _walk(schema: dict[str, Any], path: str) -> list[str]:
    missing = []
    for name, prop in schema.get("properties", {}).items():
        here = f"{path}.{name}"
        if name != "metadata" and not prop.get("description"):
            missing.append(here)
        missing += _walk(prop, here)
        if "items" in prop:
            missing += _walk(prop["items"], here + "[]")
    return missing


@pytest.mark.parametrize("info", KINDS, ids=[k.kind for k in KINDS])
def test_every_field_is_described(info: Any) -> None:
    schema = build_crd(info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert _walk(schema, info.kind) == []


@pytest.mark.parametrize("info", KINDS, ids=[k.kind for k in KINDS])
def test_schema_is_structural(info: Any) -> None:
    """Every object node has a type, and no node mixes properties with additionalProperties."""

    def check(node: dict[str, Any], path: str) -> None:
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), path
        assert not ("properties" in node and "additionalProperties" in node), path
        for name, prop in node.get("properties", {}).items():
            check(prop, f"{path}.{name}")
        if isinstance(node.get("items"), dict):
            check(node["items"], path + "[]")

    check(build_crd(info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"], info.kind)


def test_samples_parse_into_the_models() -> None:
    models: dict[str, type[BaseModel]] = {
        "AIWorkload": api.AIWorkload,
        "ModelEndpoint": api.ModelEndpoint,
        "DataSource": api.DataSource,
        "TrustPolicy": api.TrustPolicy,
    }
    seen = set()
    for path in sorted((CRDS / "samples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            models[doc["kind"]].model_validate(doc)
            seen.add(doc["kind"])
    assert seen == set(models)


def test_models_reject_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="selectr"):
        api.AIWorkloadSpec.model_validate({"kind": "agent", "selectr": {}})


def test_printer_columns() -> None:
    aiw = build_crd(KINDS[0])["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [c["name"] for c in aiw] == ["Tier", "Trust", "Age"]


def test_tier_ordering() -> None:
    assert api.Tier.TRUSTED.meets(api.Tier.RESTRICTED)
    assert not api.Tier.QUARANTINED.meets(api.Tier.RESTRICTED)
    assert yaml.safe_load(render_crd_yaml(KINDS[0]))["spec"]["names"]["shortNames"] == ["aiw"]


def test_only_user_written_kinds_require_a_spec_and_shadow_ai_reports_take_none() -> None:
    by_kind = {info.kind: build_crd(info)["spec"]["versions"][0] for info in KINDS}
    required = {k: v["schema"]["openAPIV3Schema"].get("required", []) for k, v in by_kind.items()}
    assert required == {
        "AIWorkload": ["spec"],
        "ModelEndpoint": ["spec"],
        "DataSource": ["spec"],
        "TrustPolicy": [],
        "ShadowAIReport": [],
    }
    report = by_kind["ShadowAIReport"]
    spec = report["schema"]["openAPIV3Schema"]["properties"]["spec"]
    # An object that must stay empty: no fields, none preserved. No `properties: {}` (the API
    # server drops it when storing, and server-side apply would then conflict with itself).
    assert spec == {
        "type": "object",
        "maxProperties": 0,
        "description": "Empty: nothing to configure. The operator writes the findings to status.",
    }
    status = report["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert set(status["properties"]) == {"count", "workloads", "conditions"}
    assert report["subresources"] == {"status": {}}
    assert [c["name"] for c in report["additionalPrinterColumns"]] == ["Count", "Age"]
    names = build_crd(next(i for i in KINDS if i.kind == "ShadowAIReport"))["spec"]["names"]
    assert names["shortNames"] == ["sair"] and names["categories"] == ["aitrust"]
