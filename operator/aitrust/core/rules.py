"""Scoring of runtime signals: TrustPolicy rules first, then aitrust's built-in AI attack rules.

Order of evaluation for one signal (first match wins):

1. ``TrustPolicy.spec.signals.rules`` in order. All given match fields must hold:
   ``match.rule`` and ``match.eventName`` are Python regular expressions applied with
   ``re.search`` (anchor with ``^...$`` for exact matches) to the Falco rule name and the
   cloud API event name; ``source`` is compared exactly; every ``tags`` entry must be
   present. A rule with an invalid (or catastrophically backtracking) regex never matches,
   and ``validate_policy_rules`` reports it, so a bad policy cannot break scoring.
2. The built-in rules (``BUILTIN_RULES``, ids ``AIT-R###``) when ``builtinRules`` is true.
   Their penalty is the policy's ``severityPoints`` of the more severe of the rule's and the
   signal's severity. A user rule named like a built-in one (e.g. ``AIT-R025``) replaces it.
3. Otherwise the signal costs ``severityPoints`` of its own severity and keeps its own rule
   name (Falco rule, or the cloud event name).

The resulting ``SignalRecord.rule`` is the matched rule's name, so factors group by it.

LLMjacking (stolen cloud credentials used to run LLMs on the victim's bill) is detected in
two layers: each step (Bedrock logging recon, model enumeration, availability probes,
enabling model access, ``ValidationException`` invocation probes) is a built-in rule of its
own, and ``score_sequence`` escalates when at least ``LLMJACKING_MIN_STAGES`` distinct steps
occur within ``LLMJACKING_WINDOW``, with a critical record that forces quarantine until
acknowledged. Records of one AIWorkload share its cloud identity (``spec.cloudIdentities``),
which is the "one identity" of the sequence. Deleting the model invocation logging
configuration forces quarantine on its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from aitrust.api.v1alpha1 import Severity, SignalRecord, SignalRule, TrustPolicySpec
from aitrust.core.durations import parse_duration
from aitrust.core.signal import Signal

__all__ = [
    "BUILTIN_RULES",
    "LLMJACKING_MIN_STAGES",
    "LLMJACKING_SEQUENCE_RULE",
    "LLMJACKING_WINDOW",
    "SEVERITY_RANK",
    "UNTIL_ACKNOWLEDGED",
    "BuiltinRule",
    "format_time",
    "is_sequence_stage",
    "parse_time",
    "rule_title",
    "score_sequence",
    "score_signal",
    "validate_policy_rules",
]

UNTIL_ACKNOWLEDGED = "acknowledged"
LLMJACKING_WINDOW = timedelta(minutes=30)
LLMJACKING_MIN_STAGES = 3
LLMJACKING_SEQUENCE_RULE = "AIT-R030"
SEVERITY_RANK: Mapping[Severity, int] = {
    Severity.INFO: 0,
    Severity.LOW: 1,
    Severity.MEDIUM: 2,
    Severity.HIGH: 3,
    Severity.CRITICAL: 4,
}
_KNOWN_SOURCES = frozenset({"falco", "cloudtrail", "azure", "gcp", "custom", "anomaly"})
_MAX_SUBJECT = 256  # user regexes only ever see this much of a name


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z suffix; naive datetimes are taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    text = moment.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


@lru_cache(maxsize=4096)
def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (as written by ``format_time``) to an aware datetime."""
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


# --- built-in rules --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BuiltinRule:
    id: str
    title: str
    severity: Severity
    sources: frozenset[str]  # empty: any source
    rule: re.Pattern[str] | None = None  # over Signal.rule (Falco rule name)
    tags: frozenset[str] = frozenset()  # alternatively any of these Falco tags
    events: frozenset[str] = frozenset()  # exact cloud API event names
    event_pattern: re.Pattern[str] | None = None  # or a case-insensitive pattern over them
    error_codes: frozenset[str] = frozenset()  # when set, the event must have failed with one of these
    quarantine: str | None = None  # duration, or UNTIL_ACKNOWLEDGED
    stage: str | None = None  # LLMjacking step this rule represents
    references: tuple[str, ...] = ()

    def matches(self, signal: Signal) -> bool:
        if self.sources and signal.source not in self.sources:
            return False
        if self.events or self.event_pattern is not None:
            name = signal.event_name or signal.rule
            if name not in self.events and (
                self.event_pattern is None or not self.event_pattern.search(name)
            ):
                return False
            return not self.error_codes or (signal.error_code or "") in self.error_codes
        if self.rule is not None and self.rule.search(signal.rule):
            return True
        return bool(self.tags) and not self.tags.isdisjoint(signal.tags)


def _re(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


_FALCO = frozenset({"falco"})
_AWS = frozenset({"cloudtrail"})
_AZURE = frozenset({"azure"})
_INVOKE = frozenset({"InvokeModel", "InvokeModelWithResponseStream", "Converse", "ConverseStream"})

_BUILTINS: tuple[BuiltinRule, ...] = (
    BuiltinRule(
        id="AIT-R001",
        title="Shell or interpreter spawned in an AI workload",
        severity=Severity.HIGH,
        sources=_FALCO,
        rule=_re(
            r"terminal shell|run shell|shell (spawned|in)|interpreter .*(spawned|model)|spawned .*interpreter"
        ),
        tags=frozenset({"shell"}),
        references=("AML.T0050", "LLM06:2025", "T1059"),
    ),
    BuiltinRule(
        id="AIT-R002",
        title="Package manager run at runtime",
        severity=Severity.MEDIUM,
        sources=_FALCO,
        rule=_re(r"package manage|pip install|software_mgmt"),
        tags=frozenset({"software_mgmt"}),
        references=("LLM03:2025", "AML.T0010.001", "T1072"),
    ),
    BuiltinRule(
        id="AIT-R003",
        title="Binary directory modified or new binary executed",
        severity=Severity.HIGH,
        sources=_FALCO,
        rule=_re(
            r"write below (binary|bin)|modify binary dir|drop and execute new binary|execution from /dev/shm"
            r"|fileless execution|mkdir binary dir"
        ),
        references=("AML.T0018", "NSA-CISA:immutable-container-filesystems", "T1036"),
    ),
    BuiltinRule(
        id="AIT-R004",
        title="Sensitive file read",
        severity=Severity.HIGH,
        sources=_FALCO,
        rule=_re(
            r"read sensitive file|search private keys|directory traversal monitored file|read ssh information"
        ),
        references=("AML.T0055", "AML.T0037", "T1552.001"),
    ),
    BuiltinRule(
        id="AIT-R005",
        title="Cloud credential or metadata access",
        severity=Severity.HIGH,
        sources=_FALCO,
        rule=_re(
            r"find aws credentials|cloud metadata|instance metadata|\bimds\b|credentials? (file|access)"
            r"|gcp credentials|azure credentials|service ?account token"
        ),
        references=("AML.T0055", "LLM02:2025", "T1552.005"),
    ),
    BuiltinRule(
        id="AIT-R006",
        title="Unexpected outbound connection",
        severity=Severity.HIGH,
        sources=_FALCO,
        rule=_re(
            r"unexpected outbound|outbound connection to c2|disallowed outbound"
            r"|unexpected (network|connection)|launch suspicious network tool"
            r"|launch remote file copy|netcat remote code execution"
        ),
        references=("AML.T0025", "LLM02:2025", "T1041"),
    ),
    BuiltinRule(
        id="AIT-R007",
        title="Reverse shell",
        severity=Severity.CRITICAL,
        sources=_FALCO,
        rule=_re(r"redirect stdout/stdin to network|reverse shell"),
        quarantine="1h",
        references=("AML.T0072", "T1059"),
    ),
    BuiltinRule(
        id="AIT-R008",
        title="Kubernetes API contacted from an AI workload",
        severity=Severity.MEDIUM,
        sources=_FALCO,
        rule=_re(r"contact k8s api server|k8s api server from container|kubernetes api (server|contact)"),
        references=("LLM06:2025", "NSA-CISA:service-account-tokens", "T1613"),
    ),
    BuiltinRule(
        id="AIT-R009",
        title="Container escape attempt",
        severity=Severity.CRITICAL,
        sources=_FALCO,
        rule=_re(
            r"release_agent|container escape|debugfs launched|kernel module|mount launched in privileged"
            r"|ptrace attached|nsenter"
        ),
        quarantine="1h",
        references=("T1611", "NSA-CISA:hardening-container-environments"),
    ),
    BuiltinRule(
        id="AIT-R010",
        title="Cryptocurrency miner on AI compute",
        severity=Severity.CRITICAL,
        sources=_FALCO,
        rule=_re(r"crypto ?miner|stratum|miner pool|mining pool"),
        quarantine="1h",
        references=("AML.T0034", "LLM10:2025", "T1496"),
    ),
    BuiltinRule(
        id="AIT-R011",
        title="Log files cleared",
        severity=Severity.MEDIUM,
        sources=_FALCO,
        rule=_re(r"clear log activities|log files? (deleted|cleared|truncated)"),
        references=("T1070",),
    ),
    BuiltinRule(
        id="AIT-R020",
        title="LLMjacking: model invocation logging configuration read",
        severity=Severity.MEDIUM,
        sources=_AWS,
        events=frozenset({"GetModelInvocationLoggingConfiguration"}),
        stage="logging-recon",
        references=("AML.T0075", "AML.T0012", "LLM10:2025"),
    ),
    BuiltinRule(
        id="AIT-R021",
        title="LLMjacking: foundation models enumerated",
        severity=Severity.LOW,
        sources=_AWS,
        events=frozenset({"ListFoundationModels"}),
        stage="enumerate",
        references=("AML.T0075", "AML.T0012"),
    ),
    BuiltinRule(
        id="AIT-R022",
        title="LLMjacking: foundation model availability probed",
        severity=Severity.MEDIUM,
        sources=_AWS,
        events=frozenset({"GetFoundationModelAvailability"}),
        stage="availability",
        references=("AML.T0075", "AML.T0012", "LLM10:2025"),
    ),
    BuiltinRule(
        id="AIT-R023",
        title="LLMjacking: model access enabled",
        severity=Severity.HIGH,
        sources=_AWS,
        events=frozenset(
            {"PutUseCaseForModelAccess", "PutFoundationModelEntitlement", "CreateFoundationModelAgreement"}
        ),
        stage="enable-access",
        references=("AML.T0012", "AML.T0034", "LLM10:2025", "T1098"),
    ),
    BuiltinRule(
        id="AIT-R024",
        title="LLMjacking: model invocation probed with invalid parameters",
        severity=Severity.MEDIUM,
        sources=_AWS,
        events=_INVOKE,
        error_codes=frozenset({"ValidationException", "AccessDeniedException", "AccessDenied"}),
        stage="probe",
        references=("AML.T0040", "AML.T0034", "LLM10:2025"),
    ),
    BuiltinRule(
        id="AIT-R025",
        title="LLMjacking: model invocation logging deleted",
        severity=Severity.CRITICAL,
        sources=_AWS,
        events=frozenset({"DeleteModelInvocationLoggingConfiguration"}),
        quarantine=UNTIL_ACKNOWLEDGED,
        stage="evasion",
        references=("T1562.008", "AML.T0034", "LLM10:2025"),
    ),
    BuiltinRule(
        id="AIT-R026",
        title="Bedrock guardrail deleted",
        severity=Severity.HIGH,
        sources=_AWS,
        events=frozenset({"DeleteGuardrail"}),
        references=("T1562", "LLM01:2025"),
    ),
    BuiltinRule(
        id="AIT-R027",
        title="Azure OpenAI account keys listed",
        severity=Severity.HIGH,
        sources=_AZURE,
        event_pattern=_re(r"^microsoft\.cognitiveservices/accounts/listkeys/action$"),
        references=("AML.T0055", "AML.T0012", "LLM10:2025"),
    ),
)

_SEQUENCE_RULE = BuiltinRule(
    id=LLMJACKING_SEQUENCE_RULE,
    title="LLMjacking sequence (several Bedrock abuse steps from one identity)",
    severity=Severity.CRITICAL,
    sources=_AWS,
    quarantine=UNTIL_ACKNOWLEDGED,
    references=("AML.T0012", "AML.T0034", "AML.T0040", "LLM10:2025"),
)

BUILTIN_RULES: Mapping[str, BuiltinRule] = {r.id: r for r in (*_BUILTINS, _SEQUENCE_RULE)}
_BY_SOURCE: Mapping[str, tuple[BuiltinRule, ...]] = {
    source: tuple(r for r in _BUILTINS if not r.sources or source in r.sources) for source in _KNOWN_SOURCES
}
_STAGE_OF: Mapping[str, str] = {r.id: r.stage for r in _BUILTINS if r.stage}


def is_sequence_stage(record: SignalRecord) -> bool:
    """Whether ``record`` is a step of a sequence rule (LLMjacking): free alone, costly together."""
    return record.rule in _STAGE_OF


def rule_title(name: str) -> str | None:
    """Title of a built-in rule id, for factor reasons."""
    rule = BUILTIN_RULES.get(name)
    return rule.title if rule else None


# --- user rules ------------------------------------------------------------------------------

# Nested quantifiers such as (a+)+ backtrack exponentially in Python's re.
_NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*[+*](?:[^()\\]|\\.)*\)(?:[+*]|\{\d*,\d*\})")


def _regex_problem(pattern: str) -> str | None:
    try:
        re.compile(pattern)
    except re.error as err:
        return f"invalid regular expression: {err}"
    if _NESTED_QUANTIFIER.search(pattern):
        return "nested quantifier may backtrack catastrophically"
    return None


@dataclass(frozen=True, slots=True)
class _UserRule:
    rule: SignalRule
    name: str
    rule_re: re.Pattern[str] | None
    event_re: re.Pattern[str] | None
    source: str | None
    tags: frozenset[str]
    valid: bool

    def matches(self, signal: Signal) -> bool:
        if not self.valid:
            return False
        if self.source is not None and signal.source != self.source:
            return False
        if self.tags and not self.tags.issubset(signal.tags):
            return False
        if self.rule_re is not None and not self.rule_re.search(signal.rule[:_MAX_SUBJECT]):
            return False
        if self.event_re is not None:
            name = signal.event_name or (signal.rule if signal.source != "falco" else None)
            if name is None or not self.event_re.search(name[:_MAX_SUBJECT]):
                return False
        return True


def _compile_rule(rule: SignalRule) -> _UserRule:
    valid = True
    compiled: list[re.Pattern[str] | None] = []
    for pattern in (rule.match.rule, rule.match.event_name):
        if pattern is None:
            compiled.append(None)
        elif _regex_problem(pattern) is not None:
            valid = False
            compiled.append(None)
        else:
            compiled.append(re.compile(pattern))
    return _UserRule(
        rule=rule,
        name=rule.name,
        rule_re=compiled[0],
        event_re=compiled[1],
        source=rule.match.source,
        tags=frozenset(rule.match.tags),
        valid=valid,
    )


def _rule_key(rule: SignalRule) -> tuple[object, ...]:
    q = rule.quarantine
    return (
        rule.name,
        rule.match.rule,
        rule.match.event_name,
        rule.match.source,
        tuple(rule.match.tags),
        rule.points,
        None if q is None else (q.duration,),
        tuple(rule.references),
    )


_COMPILED: dict[tuple[object, ...], _UserRule] = {}


def _user_rules(policy: TrustPolicySpec) -> list[_UserRule]:
    out: list[_UserRule] = []
    for rule in policy.signals.rules:
        key = _rule_key(rule)
        compiled = _COMPILED.get(key)
        if compiled is None:
            if len(_COMPILED) > 1024:  # bounded; policies rarely churn this much
                _COMPILED.clear()
            compiled = _COMPILED[key] = _compile_rule(rule)
        out.append(compiled)
    return out


def validate_policy_rules(policy: TrustPolicySpec) -> list[str]:
    """Problems with ``spec.signals`` for the TrustPolicy status; scoring skips what is flagged here."""
    errors: list[str] = []
    seen: dict[str, int] = {}
    for i, rule in enumerate(policy.signals.rules):
        label = f"signals.rules[{i}] ({rule.name})"
        for field_name, pattern in (
            ("match.rule", rule.match.rule),
            ("match.eventName", rule.match.event_name),
        ):
            if pattern is not None:
                problem = _regex_problem(pattern)
                if problem is not None:
                    errors.append(f"{label}: {field_name}: {problem}; the rule is disabled")
        m = rule.match
        if m.rule is None and m.event_name is None and m.source is None and not m.tags:
            errors.append(f"{label}: match is empty, so the rule matches every signal")
        if m.source is not None and m.source not in _KNOWN_SOURCES:
            errors.append(
                f"{label}: match.source {m.source!r} is none of {', '.join(sorted(_KNOWN_SOURCES))}"
            )
        if rule.quarantine is not None and rule.quarantine.duration is not None:
            try:
                if parse_duration(rule.quarantine.duration) <= timedelta(0):
                    errors.append(
                        f"{label}: quarantine.duration {rule.quarantine.duration} holds for no time"
                    )
            except ValueError as err:
                errors.append(f"{label}: quarantine.duration: {err}")
        if rule.name in seen:
            errors.append(f"{label}: same name as signals.rules[{seen[rule.name]}]; factors will merge them")
        seen.setdefault(rule.name, i)
    for name, setting in (("halfLife", policy.signals.half_life),):
        try:
            if parse_duration(setting) <= timedelta(0):
                errors.append(f"signals.{name}: {setting} must be longer than zero")
        except ValueError as err:
            errors.append(f"signals.{name}: {err}")
    return errors


# --- scoring ---------------------------------------------------------------------------------


def _severity_points(policy: TrustPolicySpec, severity: Severity) -> int:
    sp = policy.signals.severity_points
    return {
        Severity.CRITICAL: sp.critical,
        Severity.HIGH: sp.high,
        Severity.MEDIUM: sp.medium,
        Severity.LOW: sp.low,
        Severity.INFO: sp.info,
    }[severity]


def _hold_until(duration: str | None, now: datetime) -> str:
    """End of a hold that starts now (when aitrust learns of the signal, which may lag it)."""
    if duration is None or duration == UNTIL_ACKNOWLEDGED:
        return UNTIL_ACKNOWLEDGED
    try:
        return format_time(now + parse_duration(duration))
    except (ValueError, OverflowError):
        return UNTIL_ACKNOWLEDGED  # an unparseable hold errs on the safe side


_Matched = tuple[tuple["_UserRule", ...], "_UserRule | BuiltinRule | None"]
_MATCHED: dict[tuple[object, ...], _Matched] = {}


def _matching_rule(signal: Signal, policy: TrustPolicySpec) -> _UserRule | BuiltinRule | None:
    """The first user rule, else built-in rule, that ``signal`` matches (memoised: the regexes
    are most of a signal's cost, and a stream repeats the same few rules)."""
    users = tuple(_user_rules(policy))
    builtins = policy.signals.builtin_rules
    # The entry holds the user rules, so no other live rule can carry their ids.
    key = (
        *map(id, users),
        builtins,
        signal.source,
        signal.rule,
        signal.event_name,
        signal.error_code,
        signal.tags,
    )
    hit = _MATCHED.get(key)
    if hit is not None:
        return hit[1]
    found: _UserRule | BuiltinRule | None = next((u for u in users if u.matches(signal)), None)
    if found is None and builtins:
        found = next((b for b in _BY_SOURCE.get(signal.source, ()) if b.matches(signal)), None)
    if len(_MATCHED) >= 4096:
        _MATCHED.clear()
    _MATCHED[key] = (users, found)
    return found


def score_signal(signal: Signal, policy: TrustPolicySpec, now: datetime) -> SignalRecord:
    """The record of ``signal``: which rule it matched, its penalty and any quarantine hold."""
    matched = _matching_rule(signal, policy)
    if isinstance(matched, _UserRule):
        q = matched.rule.quarantine
        return SignalRecord(
            id=signal.id,
            source=signal.source,
            rule=matched.name,
            severity=signal.severity,
            points=matched.rule.points,
            time=format_time(signal.time),
            quarantine_until=None if q is None else _hold_until(q.duration, now),
        )
    if matched is not None:
        severity = max(matched.severity, signal.severity, key=SEVERITY_RANK.__getitem__)
        return SignalRecord(
            id=signal.id,
            source=signal.source,
            rule=matched.id,
            severity=severity,
            points=_severity_points(policy, severity),
            time=format_time(signal.time),
            quarantine_until=None if matched.quarantine is None else _hold_until(matched.quarantine, now),
        )
    return SignalRecord(
        id=signal.id,
        source=signal.source,
        rule=signal.rule[:_MAX_SUBJECT] or signal.event_name or "unnamed",
        severity=signal.severity,
        points=_severity_points(policy, signal.severity),
        time=format_time(signal.time),
    )


def score_sequence(
    records: Sequence[SignalRecord],
    policy: TrustPolicySpec,
    now: datetime,
    *,
    window: timedelta = LLMJACKING_WINDOW,
    min_stages: int = LLMJACKING_MIN_STAGES,
) -> list[SignalRecord]:
    """Escalation records for LLMjacking sequences in one workload's ``records``.

    A sequence is ``min_stages`` distinct LLMjacking steps (built-in rules AIT-R020..R025)
    within ``window``. Each burst yields one critical ``AIT-R030`` record whose id derives
    from the burst's first step, so re-running over the same records yields the same id and
    callers drop records whose id they already hold (records already present are skipped
    here). The hold is until acknowledged, unless a policy rule named AIT-R030 says otherwise.
    """
    if not policy.signals.builtin_rules:
        return []
    steps = sorted(
        ((parse_time(r.time), r.id, _STAGE_OF[r.rule]) for r in records if r.rule in _STAGE_OF),
        key=lambda s: (s[0], s[1]),
    )
    if not steps:
        return []
    override = next((r for r in policy.signals.rules if r.name == LLMJACKING_SEQUENCE_RULE), None)
    points = override.points if override else _severity_points(policy, Severity.CRITICAL)
    if override is None:
        quarantine: str | None = UNTIL_ACKNOWLEDGED
    else:
        quarantine = (
            None if override.quarantine is None else (override.quarantine.duration or UNTIL_ACKNOWLEDGED)
        )
    present = {r.id for r in records}
    # Times of escalations already raised: after pruning drops a burst's first step, the
    # shifted window must not raise the same burst again under a new id.
    raised = [parse_time(r.time) for r in records if r.rule == LLMJACKING_SEQUENCE_RULE]
    out: list[SignalRecord] = []
    start = 0
    while start < len(steps):
        first_time, first_id, _ = steps[start]
        stages: set[str] = set()
        end = start
        completed_at: datetime | None = None
        while end < len(steps) and steps[end][0] - first_time <= window:
            stages.add(steps[end][2])
            if completed_at is None and len(stages) >= min_stages:
                completed_at = steps[end][0]
            end += 1
        if completed_at is None:
            start += 1
            continue
        record_id = f"llmjacking-sequence:{first_id}"
        last_time = steps[end - 1][0]
        if record_id not in present and not any(first_time <= t <= last_time for t in raised):
            out.append(
                SignalRecord(
                    id=record_id,
                    source="cloudtrail",
                    rule=LLMJACKING_SEQUENCE_RULE,
                    severity=Severity.CRITICAL,
                    points=points,
                    time=format_time(completed_at),
                    quarantine_until=None if quarantine is None else _hold_until(quarantine, now),
                )
            )
        start = end  # the burst is reported once
    return out
