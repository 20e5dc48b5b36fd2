"""Realistic signal payloads, as Falcosidekick and CloudTrail send them, for the demo and the tests."""

from __future__ import annotations

import time
import uuid
from typing import Any

LLMJACKING_STEPS: tuple[tuple[str, str | None], ...] = (
    ("GetModelInvocationLoggingConfiguration", None),
    ("ListFoundationModels", None),
    ("GetFoundationModelAvailability", None),
    ("PutUseCaseForModelAccess", None),
    ("InvokeModel", "ValidationException"),
    ("DeleteModelInvocationLoggingConfiguration", None),
)


def falco_shell_event(namespace: str, pod: str, event_id: str | None = None) -> dict[str, Any]:
    """Falco's 'Terminal shell in container' alert, in Falcosidekick's webhook shape."""
    return {
        "uuid": event_id or str(uuid.uuid4()),
        "output": "Notice A shell was spawned in a container with an attached terminal (user=root)",
        "priority": "Notice",
        "rule": "Terminal shell in container",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime()),
        "source": "syscall",
        "tags": ["container", "shell", "mitre_execution"],
        "hostname": "node-1",
        "output_fields": {
            "k8s.ns.name": namespace,
            "k8s.pod.name": pod,
            "proc.name": "bash",
            "container.image.repository": "vllm/vllm-openai",
        },
    }


def cloudtrail_llmjacking(
    role_arn: str, steps: tuple[tuple[str, str | None], ...] = LLMJACKING_STEPS
) -> dict[str, Any]:
    """A CloudTrail log file with the LLMjacking probe sequence made by an assumed role."""
    account, role = role_arn.split(":")[4], role_arn.rsplit("/", 1)[1]
    identity = {
        "type": "AssumedRole",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/botocore-session-1",
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": role_arn}},
    }
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    records = []
    for name, error in steps:
        record: dict[str, Any] = {
            "eventVersion": "1.09",
            "eventID": str(uuid.uuid4()),
            "eventTime": now,
            "eventSource": "bedrock.amazonaws.com",
            "eventName": name,
            "awsRegion": "us-east-1",
            "sourceIPAddress": "203.0.113.7",
            "userIdentity": identity,
        }
        if error:
            record["errorCode"] = error
        records.append(record)
    return {"Records": records}
