"""Smaller long-lived models: frozen pydantic models of one shape share one fields-set.

pydantic gives every instance its own ``__pydantic_fields_set__``; with five or more fields set
that set alone is 728 bytes, about a third of a cached EffectiveTrust or pod view. Frozen models
never add to it in place (``model_copy`` copies it first), so instances can share one.
"""

from __future__ import annotations

from pydantic import BaseModel

_SHARED: dict[frozenset[str], set[str]] = {}


def share_field_sets(model: BaseModel) -> None:
    """Point ``model`` and every frozen model inside it at one shared set per distinct content."""
    stack: list[object] = [model]
    while stack:
        item = stack.pop()
        if isinstance(item, BaseModel):
            if not item.model_config.get("frozen"):
                continue  # a mutable model adds to its own set on assignment
            fields = item.__pydantic_fields_set__
            key = frozenset(fields)
            shared = _SHARED.get(key)
            if shared is None:
                shared = _SHARED[key] = set(key)
            if fields is not shared:
                object.__setattr__(item, "__pydantic_fields_set__", shared)
            stack.extend(item.__dict__.values())
        elif isinstance(item, tuple | list):
            stack.extend(item)
