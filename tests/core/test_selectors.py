from __future__ import annotations

import pytest

from aitrust.api.v1alpha1 import LabelSelector
from aitrust.core.selectors import render_label_selector, selector_matches

SEL = LabelSelector.model_validate(
    {
        "matchLabels": {"app": "vllm"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "dev"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "team", "operator": "Exists"},
            {"key": "zone", "operator": "NotIn", "values": ["b"]},
        ],
    }
)


def test_render_label_selector() -> None:
    assert render_label_selector(SEL) == "app=vllm,env in (dev,prod),!canary,team,zone notin (b)"


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"app": "vllm", "env": "prod", "team": "x"}, True),
        ({"app": "vllm", "env": "prod", "team": "x", "zone": "a"}, True),
        ({"app": "vllm", "env": "prod", "team": "x", "zone": "b"}, False),
        ({"app": "vllm", "env": "qa", "team": "x"}, False),
        ({"app": "vllm", "env": "prod", "team": "x", "canary": "1"}, False),
        ({"app": "vllm", "env": "prod"}, False),
        ({"app": "tgi", "env": "prod", "team": "x"}, False),
    ],
)
def test_selector_matches(labels: dict[str, str], expected: bool) -> None:
    assert selector_matches(SEL, labels) is expected
