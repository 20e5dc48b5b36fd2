"""SARIF 2.1.0 for code-scanning UIs (GitHub, GitLab, Azure DevOps) from a scan report.

Rules are every posture check (``AIT-P###``) plus ``AIT-S001`` (AI workload that no
AIWorkload manages: shadow AI). One result per finding per workload, located at the line
where the workload's YAML document starts.
"""

from __future__ import annotations

import re
from typing import Any

from aitrust import __version__
from aitrust.api.v1alpha1 import Severity
from aitrust.core.posture import CHECKS, Check
from aitrust.core.scan import ScanReport, Source, WorkloadReport

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
SHADOW_AI_RULE = "AIT-S001"

LEVELS = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
# GitHub maps security-severity to critical (>= 9), high (>= 7), medium (>= 4) and low.
SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "1.0",
}


def _pascal(title: str) -> str:
    return "".join(word[:1].upper() + word[1:] for word in re.split(r"[^A-Za-z0-9]+", title) if word)


def _rule(check: Check) -> dict[str, Any]:
    refs = ", ".join(check.references)
    return {
        "id": check.id,
        "name": _pascal(check.title),
        "shortDescription": {"text": check.title},
        "fullDescription": {
            "text": f"{check.title} (removes {check.weight} trust points by default). References: {refs}."
        },
        "help": {
            "text": f"Remediation: {check.remediation}",
            "markdown": f"**Remediation:** {check.remediation}\n\nReferences: {refs}",
        },
        "defaultConfiguration": {"level": LEVELS[check.severity]},
        "properties": {
            "tags": ["security", "kubernetes", "ai", *check.references],
            "security-severity": SECURITY_SEVERITY[check.severity],
            "precision": "high",
        },
    }


_SHADOW_RULE: dict[str, Any] = {
    "id": SHADOW_AI_RULE,
    "name": "UnmanagedAIWorkload",
    "shortDescription": {"text": "AI workload not managed by aitrust (shadow AI)"},
    "fullDescription": {
        "text": "The workload looks like AI (model server, agent, training, notebook or vector store) "
        "but no AIWorkload selects its pods, so it gets no trust score, no NetworkPolicy and no OPA data."
    },
    "help": {
        "text": "Remediation: declare an AIWorkload whose selector matches the pod labels, with the models "
        "it loads and the ModelEndpoints/DataSources it may reach.",
        "markdown": "**Remediation:** declare an `AIWorkload` whose `spec.selector` matches the pod labels, "
        "with the models it loads and the ModelEndpoints/DataSources it may reach.",
    },
    "defaultConfiguration": {"level": "warning"},
    "properties": {"tags": ["security", "kubernetes", "ai", "shadow-ai"], "security-severity": "5.0"},
}


def _location(source: Source) -> dict[str, Any]:
    artifact: dict[str, Any] = {"uri": source.file}
    if not source.file.startswith("/"):
        artifact["uriBaseId"] = "%SRCROOT%"
    physical: dict[str, Any] = {"artifactLocation": artifact}
    if source.line is not None:
        physical["region"] = {"startLine": source.line}
    return {"physicalLocation": physical}


def _label(w: WorkloadReport) -> str:
    return f"{w.kind} {w.namespace}/{w.name}"


def build_sarif(report: ScanReport) -> dict[str, Any]:
    rules = [_rule(check) for check in CHECKS.values()] + [_SHADOW_RULE]
    index = {rule["id"]: i for i, rule in enumerate(rules)}
    results: list[dict[str, Any]] = []
    for w in report.workloads:
        location = _location(w.source)
        for f in w.findings:
            results.append(
                {
                    "ruleId": f.id,
                    "ruleIndex": index.get(f.id, -1),
                    "level": LEVELS.get(Severity(f.severity), "warning"),
                    "message": {
                        "text": f"{_label(w)}: {f.title} (-{f.points} points; trust {w.trust_score}, "
                        f"{w.tier.value}). {f.reason}. Fix: {f.remediation}"
                    },
                    "locations": [location],
                    "partialFingerprints": {"aitrustFinding/v1": f"{w.kind}/{w.namespace}/{w.name}/{f.id}"},
                    "properties": {"points": f.points, "trustScore": w.trust_score, "tier": w.tier.value},
                }
            )
        if w.ai.is_ai and not w.managed:
            evidence = "; ".join(w.ai.evidence[:3])
            results.append(
                {
                    "ruleId": SHADOW_AI_RULE,
                    "ruleIndex": index[SHADOW_AI_RULE],
                    "level": "warning",
                    "message": {
                        "text": f"{_label(w)} looks like AI ({w.ai.category}, confidence "
                        f"{w.ai.confidence:.2f}) but no AIWorkload manages it. Evidence: {evidence}"
                    },
                    "locations": [location],
                    "partialFingerprints": {
                        "aitrustFinding/v1": f"{w.kind}/{w.namespace}/{w.name}/{SHADOW_AI_RULE}"
                    },
                    "properties": {"category": w.ai.category, "confidence": w.ai.confidence},
                }
            )
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "aitrust",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": rules,
                    }
                },
                "originalUriBaseIds": {
                    "%SRCROOT%": {"description": {"text": "The scan's working directory"}}
                },
                "columnKind": "utf16CodeUnits",
                "results": results,
            }
        ],
    }
