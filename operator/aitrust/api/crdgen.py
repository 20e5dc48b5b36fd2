"""Render CustomResourceDefinitions from the pydantic models (pure).

``python -m aitrust.api.crdgen crds/`` rewrites the YAML; a test checks it has not drifted.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from aitrust.api import v1alpha1 as api

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class KindInfo:
    kind: str
    plural: str
    short_names: list[str]
    spec: type[BaseModel]
    status: type[BaseModel]
    description: str
    columns: list[JsonDict] = field(default_factory=list)
    spec_required: bool = True
    spec_description: str | None = None


AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}

KINDS: list[KindInfo] = [
    KindInfo(
        kind="AIWorkload",
        plural="aiworkloads",
        short_names=["aiw"],
        spec=api.AIWorkloadSpec,
        status=api.AIWorkloadStatus,
        description="An AI workload (model server, agent, training job, notebook or pipeline) whose pods "
        "aitrust scores and whose access to models and data it enforces.",
        columns=[
            {"name": "Tier", "type": "string", "jsonPath": ".status.tier", "description": "Trust tier."},
            {
                "name": "Trust",
                "type": "integer",
                "jsonPath": ".status.trustScore",
                "description": "Trust score.",
            },
            AGE,
        ],
    ),
    KindInfo(
        kind="ModelEndpoint",
        plural="modelendpoints",
        short_names=["mep"],
        spec=api.ModelEndpointSpec,
        status=api.TargetStatus,
        description="A model endpoint (in-cluster model server or managed provider) that workloads may call.",
        columns=[
            {"name": "Provider", "type": "string", "jsonPath": ".spec.provider"},
            {"name": "Min-Tier", "type": "string", "jsonPath": ".spec.minTier"},
            {"name": "Sensitivity", "type": "string", "jsonPath": ".spec.sensitivity"},
            AGE,
        ],
    ),
    KindInfo(
        kind="DataSource",
        plural="datasources",
        short_names=["ds"],
        spec=api.DataSourceSpec,
        status=api.TargetStatus,
        description="A data store (object storage, database, vector database) that workloads may reach.",
        columns=[
            {"name": "Type", "type": "string", "jsonPath": ".spec.type"},
            {"name": "Min-Tier", "type": "string", "jsonPath": ".spec.minTier"},
            {"name": "Sensitivity", "type": "string", "jsonPath": ".spec.sensitivity"},
            AGE,
        ],
    ),
    KindInfo(
        kind="TrustPolicy",
        plural="trustpolicies",
        short_names=["tp"],
        spec=api.TrustPolicySpec,
        status=api.PolicyStatus,
        description="How trust is computed and enforced for the AIWorkloads that use it. The TrustPolicy "
        "named 'default' applies to every AIWorkload of its namespace without a trustPolicyRef.",
        columns=[
            {"name": "Mode", "type": "string", "jsonPath": ".spec.mode"},
            {"name": "Trusted", "type": "integer", "jsonPath": ".spec.thresholds.trusted"},
            {"name": "Restricted", "type": "integer", "jsonPath": ".spec.thresholds.restricted"},
            AGE,
        ],
        spec_required=False,
    ),
    KindInfo(
        kind="ShadowAIReport",
        plural="shadowaireports",
        short_names=["sair"],
        spec=api.ShadowAIReportSpec,
        status=api.ShadowAIReportStatus,
        description="Shadow AI of a namespace: AI workloads that no AIWorkload declares. Written by the "
        "operator only, as 'shadow-ai' in each namespace that has any, when the cluster has no "
        "PolicyReport CRD (wgpolicyk8s.io/v1alpha2, which is preferred); deleted once there is none.",
        columns=[
            {
                "name": "Count",
                "type": "integer",
                "jsonPath": ".status.count",
                "description": "AI workloads no AIWorkload declares.",
            },
            AGE,
        ],
        spec_required=False,
        spec_description="Empty: nothing to configure. The operator writes the findings to status.",
    ),
]

_DROP = {"title", "additionalProperties"}


def _structural(node: Any, defs: JsonDict) -> Any:
    """Turn pydantic's JSON Schema into a Kubernetes structural schema: inline refs, drop nulls."""
    if isinstance(node, list):
        return [_structural(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {k: v for k, v in target.items() if k != "description" or "description" not in node}
        merged.update({k: v for k, v in node.items() if k != "$ref"})
        return _structural(merged, defs)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o != {"type": "null"}]
        if len(options) != 1:
            raise ValueError(f"unsupported union in CRD schema: {node['anyOf']}")
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if rest.get("default", ...) is None:
            del rest["default"]
        return _structural({**options[0], **rest}, defs)
    out: JsonDict = {}
    for key, value in node.items():
        if key in _DROP or key == "$defs":
            continue
        if key == "properties":
            out[key] = {name: _structural(prop, defs) for name, prop in value.items()}
        elif key == "exclusiveMinimum":
            out["minimum"], out["exclusiveMinimum"] = value, True
        elif key == "exclusiveMaximum":
            out["maximum"], out["exclusiveMaximum"] = value, True
        else:
            out[key] = _structural(value, defs)
    additional = node.get("additionalProperties")
    if out.get("type") == "object" and out.get("properties") == {}:
        # A model without fields: an object that must stay empty. Not `properties: {}`, which the
        # API server drops when storing, so that every server-side apply of it would conflict.
        del out["properties"]
        out["maxProperties"] = 0
    elif out.get("type") == "object" and "properties" not in out:
        if isinstance(additional, dict) and additional:
            out["additionalProperties"] = _structural(additional, defs)
        else:
            out["x-kubernetes-preserve-unknown-fields"] = True
    if "const" in out:
        out["enum"] = [out.pop("const")]
    return out


def build_schema(model: type[BaseModel]) -> JsonDict:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    schema: JsonDict = _structural(raw, defs)
    schema.pop("description", None)
    return schema


def build_crd(info: KindInfo) -> JsonDict:
    spec_schema = build_schema(info.spec)
    spec_schema["description"] = info.spec_description or f"Desired state of the {info.kind}."
    status_schema = build_schema(info.status)
    status_schema["description"] = f"Observed state of the {info.kind}, written by the operator."
    root: JsonDict = {
        "type": "object",
        "description": info.description,
        "properties": {
            "apiVersion": {"type": "string", "description": "API version: aitrust.dev/v1alpha1."},
            "kind": {"type": "string", "description": f"Kind: {info.kind}."},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": status_schema,
        },
    }
    if info.spec_required:
        root["required"] = ["spec"]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{info.plural}.{api.GROUP}",
            "labels": {"app.kubernetes.io/name": "aitrust", "app.kubernetes.io/part-of": "aitrust"},
        },
        "spec": {
            "group": api.GROUP,
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.kind.lower(),
                "shortNames": info.short_names,
                "categories": ["aitrust"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": api.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": info.columns,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def render_crd_yaml(info: KindInfo) -> str:
    header = (
        "# Generated by `python -m aitrust.api.crdgen crds/` from aitrust/api/v1alpha1.py. Do not edit.\n"
    )
    return header + yaml.safe_dump(build_crd(info), sort_keys=False, width=120)


def crd_filename(info: KindInfo) -> str:
    return f"{api.GROUP}_{info.plural}.yaml"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0] if args else "crds")
    out.mkdir(parents=True, exist_ok=True)
    for info in KINDS:
        (out / crd_filename(info)).write_text(render_crd_yaml(info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
