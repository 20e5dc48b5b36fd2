from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aitrust.api.v1alpha1 import Severity, SignalRecord, TrustPolicySpec
from aitrust.core.rules import (
    BUILTIN_RULES,
    LLMJACKING_SEQUENCE_RULE,
    UNTIL_ACKNOWLEDGED,
    format_time,
    parse_time,
    rule_title,
    score_sequence,
    score_signal,
    validate_policy_rules,
)
from aitrust.core.signal import Signal

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
DEFAULT = TrustPolicySpec()


def falco(rule: str, severity: Severity = Severity.MEDIUM, **kw: Any) -> Signal:
    return Signal(
        id=kw.pop("id", "f-1"), source="falco", time=kw.pop("time", NOW), severity=severity, rule=rule, **kw
    )


def trail(event: str, error: str | None = None, at: datetime = NOW, sid: str = "ct-1") -> Signal:
    return Signal(
        id=sid,
        source="cloudtrail",
        time=at,
        severity=Severity.INFO,
        rule=event,
        event_name=event,
        error_code=error,
    )


def rules_policy(*rules: dict[str, Any], builtin: bool = True) -> TrustPolicySpec:
    return TrustPolicySpec.model_validate({"signals": {"rules": list(rules), "builtinRules": builtin}})


@pytest.mark.parametrize(
    ("rule", "tags", "expected"),
    [
        ("Terminal shell in container", (), "AIT-R001"),
        ("Run shell untrusted", (), "AIT-R001"),
        ("Some custom rule", ("container", "shell", "mitre_execution"), "AIT-R001"),
        ("Launch Package Management Process in Container", (), "AIT-R002"),
        ("Write below binary dir", (), "AIT-R003"),
        ("Drop and execute new binary in container", (), "AIT-R003"),
        ("Read sensitive file untrusted", (), "AIT-R004"),
        ("Search Private Keys or Passwords", (), "AIT-R004"),
        ("Find AWS Credentials", (), "AIT-R005"),
        ("Contact cloud metadata service from container", (), "AIT-R005"),
        ("Unexpected outbound connection destination", (), "AIT-R006"),
        ("Outbound Connection to C2 Servers", (), "AIT-R006"),
        ("Redirect STDOUT/STDIN to Network Connection in Container", (), "AIT-R007"),
        ("Contact K8S API Server From Container", (), "AIT-R008"),
        ("Detect release_agent File Container Escapes", (), "AIT-R009"),
        ("Detect crypto miners using the Stratum protocol", (), "AIT-R010"),
        ("Clear Log Activities", (), "AIT-R011"),
    ],
)
def test_builtin_falco_rules(rule: str, tags: tuple[str, ...], expected: str) -> None:
    record = score_signal(falco(rule, tags=tags), DEFAULT, NOW)
    assert record.rule == expected
    builtin = BUILTIN_RULES[expected]
    # The penalty is the policy's points for the more severe of signal and rule.
    severity = builtin.severity if builtin.severity in (Severity.HIGH, Severity.CRITICAL) else Severity.MEDIUM
    assert record.severity is severity
    assert record.points == getattr(DEFAULT.signals.severity_points, severity.value)


def test_builtin_falco_rules_ignore_other_sources() -> None:
    signal = Signal(
        id="x", source="custom", time=NOW, severity=Severity.LOW, rule="Terminal shell in container"
    )
    record = score_signal(signal, DEFAULT, NOW)
    assert (
        record.rule == "Terminal shell in container" and record.points == DEFAULT.signals.severity_points.low
    )


def test_unmatched_signal_costs_its_severity() -> None:
    record = score_signal(falco("Something benign", Severity.LOW), DEFAULT, NOW)
    assert (record.rule, record.points, record.quarantine_until) == ("Something benign", 5, None)
    assert record.time == "2026-05-01T12:00:00Z" and record.id == "f-1" and record.source == "falco"


@pytest.mark.parametrize(
    ("event", "error", "expected", "severity"),
    [
        ("GetModelInvocationLoggingConfiguration", None, "AIT-R020", Severity.MEDIUM),
        ("ListFoundationModels", None, "AIT-R021", Severity.LOW),
        ("GetFoundationModelAvailability", None, "AIT-R022", Severity.MEDIUM),
        ("PutUseCaseForModelAccess", None, "AIT-R023", Severity.HIGH),
        ("PutFoundationModelEntitlement", None, "AIT-R023", Severity.HIGH),
        ("InvokeModel", "ValidationException", "AIT-R024", Severity.MEDIUM),
        ("InvokeModelWithResponseStream", "ValidationException", "AIT-R024", Severity.MEDIUM),
        ("DeleteModelInvocationLoggingConfiguration", None, "AIT-R025", Severity.CRITICAL),
    ],
)
def test_llmjacking_steps(event: str, error: str | None, expected: str, severity: Severity) -> None:
    record = score_signal(trail(event, error), DEFAULT, NOW)
    assert (record.rule, record.severity) == (expected, severity)


def test_successful_invocation_is_not_a_probe() -> None:
    record = score_signal(trail("InvokeModel"), DEFAULT, NOW)
    assert record.rule == "InvokeModel" and record.points == 0


def test_deleting_invocation_logging_forces_quarantine_until_acknowledged() -> None:
    record = score_signal(trail("DeleteModelInvocationLoggingConfiguration"), DEFAULT, NOW)
    assert record.quarantine_until == UNTIL_ACKNOWLEDGED
    assert record.points == DEFAULT.signals.severity_points.critical


def test_timed_builtin_hold_starts_when_scored() -> None:
    late = NOW + timedelta(minutes=10)  # delivered ten minutes after it happened
    record = score_signal(falco("Redirect STDOUT/STDIN to Network Connection in Container"), DEFAULT, late)
    assert record.quarantine_until == format_time(late + timedelta(hours=1))
    assert record.time == format_time(NOW)


def test_azure_key_listing() -> None:
    signal = Signal(
        id="az",
        source="azure",
        time=NOW,
        severity=Severity.INFO,
        rule="MICROSOFT.COGNITIVESERVICES/ACCOUNTS/LISTKEYS/ACTION",
        event_name="MICROSOFT.COGNITIVESERVICES/ACCOUNTS/LISTKEYS/ACTION",
    )
    assert score_signal(signal, DEFAULT, NOW).rule == "AIT-R027"


# --- policy rules -------------------------------------------------------------------------------


def test_policy_rules_come_first_and_set_points_and_holds() -> None:
    policy = rules_policy(
        {
            "name": "no-shells",
            "match": {"rule": "^Terminal shell"},
            "points": 70,
            "quarantine": {"duration": "30m"},
        },
        {
            "name": "bedrock-probe",
            "match": {"eventName": "^InvokeModel", "source": "cloudtrail"},
            "points": 3,
        },
    )
    record = score_signal(falco("Terminal shell in container"), policy, NOW)
    assert (record.rule, record.points) == ("no-shells", 70)
    assert record.quarantine_until == format_time(NOW + timedelta(minutes=30))
    assert record.severity is Severity.MEDIUM  # the signal's own severity
    probe = score_signal(trail("InvokeModel", "ValidationException"), policy, NOW)
    assert (probe.rule, probe.points, probe.quarantine_until) == ("bedrock-probe", 3, None)


def test_empty_quarantine_duration_means_until_acknowledged() -> None:
    policy = rules_policy({"name": "hold", "match": {"source": "custom"}, "points": 10, "quarantine": {}})
    signal = Signal(id="c", source="custom", time=NOW, severity=Severity.LOW, rule="prompt-injection")
    assert score_signal(signal, policy, NOW).quarantine_until == UNTIL_ACKNOWLEDGED


def test_tags_must_all_be_present() -> None:
    policy = rules_policy({"name": "t", "match": {"tags": ["network", "mitre_exfiltration"]}, "points": 40})
    assert score_signal(falco("X", tags=("network",)), policy, NOW).rule == "X"
    assert score_signal(falco("X", tags=("network", "mitre_exfiltration", "k8s")), policy, NOW).rule == "t"


def test_event_name_regex_does_not_match_falco_rule_names() -> None:
    policy = rules_policy({"name": "ev", "match": {"eventName": "shell"}, "points": 40})
    assert score_signal(falco("Terminal shell in container"), policy, NOW).rule == "AIT-R001"


def test_builtin_rules_can_be_switched_off() -> None:
    policy = rules_policy(builtin=False)
    record = score_signal(trail("DeleteModelInvocationLoggingConfiguration"), policy, NOW)
    assert record.rule == "DeleteModelInvocationLoggingConfiguration"
    assert record.points == 0 and record.quarantine_until is None


@pytest.mark.parametrize("pattern", ["([unclosed", "(a+)+$", "(?P<x", "*bad"])
def test_invalid_or_dangerous_regex_never_raises_and_is_reported(pattern: str) -> None:
    policy = rules_policy(
        {"name": "broken", "match": {"rule": pattern}, "points": 100},
        {"name": "fine", "match": {"rule": "Terminal"}, "points": 9},
    )
    record = score_signal(falco("Terminal shell in container"), policy, NOW)
    assert record.rule == "fine"  # the broken rule is skipped, not fatal
    errors = validate_policy_rules(policy)
    assert len(errors) == 1 and "signals.rules[0] (broken)" in errors[0] and "disabled" in errors[0]


def test_validate_policy_rules_reports_other_mistakes() -> None:
    policy = rules_policy(
        {"name": "all", "match": {}, "points": 1},
        {"name": "src", "match": {"source": "syslog"}, "points": 1},
        {"name": "zero", "match": {"source": "falco"}, "points": 1, "quarantine": {"duration": "0s"}},
        {"name": "all", "match": {"source": "gcp"}, "points": 1},
    )
    errors = "\n".join(validate_policy_rules(policy))
    assert "rules[0] (all): match is empty" in errors
    assert "match.source 'syslog'" in errors
    assert "quarantine.duration 0s holds for no time" in errors
    assert "same name as signals.rules[0]" in errors
    assert validate_policy_rules(DEFAULT) == []


def test_points_are_never_negative_and_records_are_api_models() -> None:
    for rule in ["Terminal shell in container", "x", "Clear Log Activities"]:
        record = score_signal(falco(rule, Severity.INFO), DEFAULT, NOW)
        assert isinstance(record, SignalRecord) and record.points >= 0
        assert SignalRecord.model_validate(record.model_dump(by_alias=True)) == record


def test_rule_titles() -> None:
    assert rule_title("AIT-R025") == "LLMjacking: model invocation logging deleted"
    assert rule_title("Terminal shell in container") is None


def test_parse_and_format_time_round_trip() -> None:
    assert parse_time(format_time(NOW)) == NOW
    assert format_time(datetime(2026, 5, 1, 14, 0, tzinfo=UTC).astimezone()) == "2026-05-01T14:00:00Z"
    assert format_time(datetime(2026, 5, 1, 12, 0)) == "2026-05-01T12:00:00Z"  # naive means UTC


# --- LLMjacking sequence --------------------------------------------------------------------------


def _steps(*events: tuple[str, str | None, int]) -> list[SignalRecord]:
    return [
        score_signal(trail(event, error, NOW + timedelta(minutes=minute), f"e{i}"), DEFAULT, NOW)
        for i, (event, error, minute) in enumerate(events)
    ]


def test_sequence_of_three_steps_escalates() -> None:
    records = _steps(
        ("GetModelInvocationLoggingConfiguration", None, 0),
        ("ListFoundationModels", None, 2),
        ("InvokeModel", "ValidationException", 5),
        ("PutUseCaseForModelAccess", None, 9),
    )
    [escalation] = score_sequence(records, DEFAULT, NOW + timedelta(minutes=10))
    assert escalation.rule == LLMJACKING_SEQUENCE_RULE and escalation.severity is Severity.CRITICAL
    assert escalation.id == "llmjacking-sequence:e0"
    assert escalation.time == format_time(NOW + timedelta(minutes=5))  # when the third step arrived
    assert escalation.quarantine_until == UNTIL_ACKNOWLEDGED
    assert escalation.points == DEFAULT.signals.severity_points.critical
    # Idempotent: once the escalation is among the records, nothing new is raised.
    assert score_sequence([*records, escalation], DEFAULT, NOW + timedelta(minutes=11)) == []
    # Nor after the first step is pruned away and the window shifts.
    assert score_sequence([*records[1:], escalation], DEFAULT, NOW + timedelta(minutes=11)) == []


def test_repeated_single_step_does_not_escalate() -> None:
    records = _steps(*[("ListFoundationModels", None, m) for m in range(10)])
    records += _steps(("GetFoundationModelAvailability", None, 1))
    assert score_sequence(records, DEFAULT, NOW) == []


def test_steps_spread_beyond_the_window_do_not_escalate() -> None:
    records = _steps(
        ("GetModelInvocationLoggingConfiguration", None, 0),
        ("ListFoundationModels", None, 20),
        ("GetFoundationModelAvailability", None, 40),
    )
    assert score_sequence(records, DEFAULT, NOW) == []
    assert len(score_sequence(records, DEFAULT, NOW, window=timedelta(hours=1))) == 1


def test_two_separate_bursts_escalate_twice() -> None:
    burst = [("GetModelInvocationLoggingConfiguration", None, 0), ("ListFoundationModels", None, 1)]
    burst.append(("GetFoundationModelAvailability", None, 2))
    later = [(e, err, m + 240) for e, err, m in burst]
    records = _steps(*burst, *later)
    assert [r.id for r in score_sequence(records, DEFAULT, NOW)] == [
        "llmjacking-sequence:e0",
        "llmjacking-sequence:e3",
    ]


def test_sequence_respects_policy() -> None:
    records = _steps(
        ("GetModelInvocationLoggingConfiguration", None, 0),
        ("ListFoundationModels", None, 1),
        ("GetFoundationModelAvailability", None, 2),
    )
    assert score_sequence(records, rules_policy(builtin=False), NOW) == []
    custom = rules_policy({"name": LLMJACKING_SEQUENCE_RULE, "match": {"source": "none"}, "points": 90})
    [escalation] = score_sequence(records, custom, NOW)
    assert escalation.points == 90 and escalation.quarantine_until is None
