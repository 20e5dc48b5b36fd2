"""Per-workload behavioural baseline of signal and cloud-API activity.

What is learnt, per workload:

* per event key (``<source>:<event name or rule>``) two exponentially decayed counters:
  a fast one (time constant ``FAST_TAU``, the current rate) and a slow one (``SLOW_TAU``,
  the baseline rate); a decayed counter divided by its time constant is an events/hour
  EWMA that needs no timer, only the time of the last event;
* the cloud regions and source addresses calls came from.

During the learning window (``BaselineSettings.learningWindow``, from the first signal)
nothing is flagged. Afterwards an update may yield synthetic ``Signal(source="anomaly")``:

* ``anomaly:rate:<key>`` when the fast rate exceeds ``rateFactor`` times the baseline rate
  (baseline floored at ``RATE_FLOOR_PER_HOUR``) with at least ``MIN_BURST`` recent events;
  at most once per key per ``ALERT_COOLDOWN``;
* ``anomaly:region:<region>`` and ``anomaly:source:<address>`` on the first call from a
  region or source address not seen before;
* ``anomaly:api:<key>`` on the first call of a cloud API not seen before.

The explanation ("InvokeModel rate 40x baseline ...") is in ``evidence["explanation"]``.

Size bound: at most ``MAX_EVENTS`` event keys, ``MAX_REGIONS`` regions and
``MAX_SOURCES`` source addresses; beyond that the least recently seen entry is evicted
(so an evicted key that comes back counts as new). Keys longer than ``MAX_KEY_CHARS`` are
truncated. With the defaults the JSON form stays below ~12 KiB.

The update is a pure function: time comes from the signal (clamped to ``now``), numbers
are rounded before they are stored, and the state is copied, never mutated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aitrust.api.v1alpha1 import BaselineSettings, Severity
from aitrust.core.durations import parse_duration
from aitrust.core.signal import Signal

__all__ = [
    "ALERT_COOLDOWN",
    "BASELINE_VERSION",
    "FAST_TAU",
    "MAX_EVENTS",
    "MAX_KEY_CHARS",
    "MAX_REGIONS",
    "MAX_SOURCES",
    "MIN_BURST",
    "RATE_FLOOR_PER_HOUR",
    "SLOW_TAU",
    "Baseline",
    "EventStat",
    "dump_baseline",
    "load_baseline",
    "update_baseline",
]

BASELINE_VERSION = 1
FAST_TAU = timedelta(minutes=5)
SLOW_TAU = timedelta(hours=6)
MIN_BURST = 5.0  # decayed events in the fast counter before a rate can be anomalous
RATE_FLOOR_PER_HOUR = 1.0
ALERT_COOLDOWN = timedelta(minutes=30)
MAX_EVENTS = 64
MAX_REGIONS = 16
MAX_SOURCES = 32
MAX_KEY_CHARS = 128
_CLOUD_SOURCES = frozenset({"cloudtrail", "azure", "gcp"})
_FAST_S = FAST_TAU.total_seconds()
_SLOW_S = SLOW_TAU.total_seconds()


class _State(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class EventStat(_State):
    count: int = Field(alias="n", ge=0)
    fast: float = Field(alias="f", ge=0)  # decayed count, time constant FAST_TAU
    slow: float = Field(alias="s", ge=0)  # decayed count, time constant SLOW_TAU
    last: float = Field(alias="t")  # epoch seconds of the latest event
    alerted: float | None = Field(default=None, alias="a")  # epoch seconds of the last rate anomaly

    def rates_at(self, moment: float) -> tuple[float, float]:
        """(current, baseline) rate in events per hour at ``moment``."""
        dt = max(0.0, moment - self.last)
        fast = self.fast * math.exp(-dt / _FAST_S)
        slow = self.slow * math.exp(-dt / _SLOW_S)
        return fast * 3600.0 / _FAST_S, slow * 3600.0 / _SLOW_S


class Baseline(_State):
    version: int = Field(default=BASELINE_VERSION, alias="v")
    started: float  # epoch seconds of the first observation: the learning window starts here
    last: float  # epoch seconds of the latest observation
    observations: int = Field(default=0, alias="obs", ge=0)
    events: dict[str, EventStat] = Field(default_factory=dict)
    regions: dict[str, float] = Field(default_factory=dict)  # region -> last seen
    sources: dict[str, float] = Field(default_factory=dict)  # source address -> last seen

    def learning_ends(self, settings: BaselineSettings) -> float:
        """Epoch seconds at which the learning window closes."""
        return self.started + parse_duration(settings.learning_window).total_seconds()


def load_baseline(data: Mapping[str, Any] | None) -> Baseline | None:
    """The baseline stored in ``status.baseline``, or None (start over) if absent or unreadable."""
    if not data:
        return None
    try:
        state = Baseline.model_validate(data)
    except ValidationError:
        return None
    return state if state.version == BASELINE_VERSION else None


def dump_baseline(state: Baseline) -> dict[str, Any]:
    """The JSON-ready form for ``status.baseline`` (short keys, aliases)."""
    return state.model_dump(mode="json", by_alias=True, exclude_none=True)


def _epoch(moment: datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _round(x: float) -> float:
    """Counters and rates: 6 significant digits are plenty and keep the JSON short."""
    return float(f"{x:.6g}")


def _ms(epoch: float) -> float:
    """Timestamps: millisecond precision (significant digits would lose hours)."""
    return round(epoch, 3)


def _evict(table: dict[str, Any], cap: int, last_of: Any) -> None:
    while len(table) > cap:
        victim = min(table, key=lambda k: (last_of(table[k]), k))
        del table[victim]


def _anomaly(
    signal: Signal, kind: str, subject: str, severity: Severity, explanation: str, **evidence: Any
) -> Signal:
    return Signal(
        id=f"anomaly:{kind}:{signal.id}",
        source="anomaly",
        time=signal.time,
        severity=severity,
        rule=f"anomaly:{kind}:{subject}",
        event_name=signal.event_name,
        region=signal.region,
        source_ip=signal.source_ip,
        target=signal.target,
        evidence={"explanation": explanation, "trigger": signal.id, **evidence},
        references=("AML.T0012",) if signal.source in _CLOUD_SOURCES else (),
    )


def update_baseline(
    state: Baseline | None, signal: Signal, settings: BaselineSettings, now: datetime
) -> tuple[Baseline, list[Signal]]:
    """Fold ``signal`` into the workload's baseline; return the new state and any anomalies."""
    moment = min(_epoch(signal.time), _epoch(now))
    if state is None:
        state = Baseline(started=_ms(moment), last=_ms(moment))
    if not settings.enabled or signal.source == "anomaly":
        return state, []

    learning = moment < state.learning_ends(settings)
    anomalies: list[Signal] = []
    event = signal.event_name or signal.rule
    key = f"{signal.source}:{event}"[:MAX_KEY_CHARS]
    cloud = signal.source in _CLOUD_SOURCES

    events = dict(state.events)
    previous = events.get(key)
    if previous is None:
        fast, slow, count, alerted = 1.0, 1.0, 1, None
        if cloud and not learning:
            anomalies.append(
                _anomaly(
                    signal,
                    "api",
                    key,
                    Severity.LOW,
                    f"first call of {event} ({signal.source}) after learning",
                )
            )
    else:
        dt = max(0.0, moment - previous.last)
        fast = previous.fast * math.exp(-dt / _FAST_S) + 1.0
        slow = previous.slow * math.exp(-dt / _SLOW_S) + 1.0
        count, alerted = previous.count + 1, previous.alerted
        current = fast * 3600.0 / _FAST_S
        # Baseline from before this event, so a burst does not dilute its own reference.
        baseline = max(previous.slow * math.exp(-dt / _SLOW_S) * 3600.0 / _SLOW_S, RATE_FLOOR_PER_HOUR)
        cooled = alerted is None or moment - alerted >= ALERT_COOLDOWN.total_seconds()
        if not learning and cooled and fast >= MIN_BURST and current >= settings.rate_factor * baseline:
            ratio = current / baseline
            severity = Severity.HIGH if ratio >= 4 * settings.rate_factor else Severity.MEDIUM
            anomalies.append(
                _anomaly(
                    signal,
                    "rate",
                    key,
                    severity,
                    f"{event} rate {ratio:.0f}x baseline ({current:.0f}/h vs {baseline:.1f}/h)",
                    ratio=_round(ratio),
                    currentPerHour=_round(current),
                    baselinePerHour=_round(baseline),
                )
            )
            alerted = moment
    events[key] = EventStat(
        count=count,
        fast=_round(fast),
        slow=_round(slow),
        last=_ms(max(moment, previous.last if previous else moment)),
        alerted=None if alerted is None else _ms(alerted),
    )
    _evict(events, MAX_EVENTS, lambda stat: stat.last)

    regions = state.regions
    if signal.region:
        region = signal.region[:MAX_KEY_CHARS]
        if region not in regions and not learning:
            anomalies.append(
                _anomaly(
                    signal, "region", region, Severity.MEDIUM, f"first call from region {region}", event=event
                )
            )
        regions = {**regions, region: _ms(max(moment, regions.get(region, moment)))}
        _evict(regions, MAX_REGIONS, float)

    sources = state.sources
    if signal.source_ip:
        address = signal.source_ip[:MAX_KEY_CHARS]
        if address not in sources and not learning:
            anomalies.append(
                _anomaly(
                    signal,
                    "source",
                    address,
                    Severity.LOW,
                    f"first call from source address {address}",
                    event=event,
                )
            )
        sources = {**sources, address: _ms(max(moment, sources.get(address, moment)))}
        _evict(sources, MAX_SOURCES, float)

    new_state = Baseline(
        version=BASELINE_VERSION,
        started=state.started,
        last=_ms(max(state.last, moment)),
        observations=state.observations + 1,
        events=events,
        regions=regions,
        sources=sources,
    )
    return new_state, anomalies
