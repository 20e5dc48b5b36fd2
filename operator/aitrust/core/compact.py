"""Smaller long-lived models: frozen pydantic models of one shape share one fields-set, and
signals held for a fold drop what only the mapper and people read (``build_lean_signal``).

pydantic gives every instance its own ``__pydantic_fields_set__``; with five or more fields set
that set alone is 728 bytes, about a third of a cached EffectiveTrust or pod view. Frozen models
never add to it in place (``model_copy`` copies it first), so instances can share one.
"""

from __future__ import annotations

import sys

from pydantic import BaseModel

from aitrust.core.signal import Signal, WorkloadHint

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


_NO_TARGET = WorkloadHint()
_SIGNAL_FIELDS = set(Signal.model_fields)


def build_lean_signal(signal: Signal) -> Signal:
    """``signal`` as a fold reads it: without evidence, references or the hint it was mapped by.

    Noise waits in memory by the ten thousand for its fold (a Falco alert is about 2.3 KB as
    parsed, 0.7 KB lean). Nothing downstream of the mapper reads those fields, so the journal
    keeps them only for signals that cost points. Repeated strings are interned.
    """
    if signal.target is _NO_TARGET and not signal.evidence and not signal.references:
        return signal
    lean = signal.model_copy(
        update={
            "target": _NO_TARGET,
            "evidence": {},
            "references": (),
            "rule": sys.intern(signal.rule),
            "tags": tuple(sys.intern(t) for t in signal.tags),
        }
    )
    object.__setattr__(lean, "__pydantic_fields_set__", _SIGNAL_FIELDS)
    return lean
