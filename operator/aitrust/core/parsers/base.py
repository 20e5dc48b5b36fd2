"""Shared pieces of the signal parsers: results, errors, JSON paths, timestamps, evidence hygiene.

Parsers are total: for any input they either return a ParseResult or raise PayloadError.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, NamedTuple, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from aitrust.core.signal import Signal

# A sender's clock may run a little ahead; beyond this a future time is not believed,
# because a far-future signal would never decay.
MAX_CLOCK_SKEW = timedelta(minutes=5)
MAX_RECORDS = 10_000
MAX_ID_LENGTH = 256
MAX_NAME_LENGTH = 512
MAX_TAGS = 32
MAX_TAG_LENGTH = 128

MAX_EVIDENCE_DEPTH = 4
MAX_EVIDENCE_KEYS = 64
MAX_EVIDENCE_ITEMS = 32
MAX_EVIDENCE_STRING = 512
MAX_EVIDENCE_CHARS = 8192
REDACTED = "[REDACTED]"
TRUNCATED = "...[truncated]"

_HASH_MAX_NODES = 200_000
_HASH_MAX_DEPTH = 64


class PayloadError(Exception):
    """The payload as a whole is unusable; the HTTP layer answers 400 naming ``path``."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class Rejection(BaseModel):
    """One record of a batch that could not be parsed; the rest of the batch still counts."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    index: int | None = Field(description="Index of the record in its batch, or None for a single event.")
    path: str = Field(description="JSON path of the offending field, e.g. $.Records[3].eventTime.")
    message: str


class Note(BaseModel):
    """Something the parser ignored or adjusted, reported back to the sender."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    path: str
    message: str


class ParseResult(BaseModel):
    model_config = ConfigDict(extra="forbid")
    signals: list[Signal] = Field(default_factory=list)
    rejected: list[Rejection] = Field(default_factory=list)
    notes: list[Note] = Field(default_factory=list)


class PayloadModel(BaseModel):
    """Base of the wire models: unknown keys are ignored, since producers add fields over time."""

    model_config = ConfigDict(extra="ignore", populate_by_name=False, frozen=True)


# --- JSON paths ---------------------------------------------------------------------

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

PathPart = int | str


def json_path(parts: Sequence[PathPart], root: str = "$") -> str:
    """Render a location as JSONPath.

    e.g. ``$.Records[0].userIdentity.arn`` or ``$.output_fields["k8s.ns.name"]``.
    """
    out = [root]
    for part in parts:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _IDENTIFIER.match(part):
            out.append(f".{part}")
        else:
            out.append("[" + json.dumps(part) + "]")
    return "".join(out)


def _describe(err: ValidationError, root: str, prefix: Sequence[PathPart]) -> tuple[str, str]:
    errors = err.errors(include_url=False, include_input=False, include_context=False)
    if not errors:
        return json_path(prefix, root), "invalid value"
    first = errors[0]
    loc = [p for p in first["loc"] if isinstance(p, int | str)]
    message = str(first["msg"])
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return json_path([*prefix, *loc], root), message


M = TypeVar("M", bound=BaseModel)


def validate_payload(model: type[M], data: Any, prefix: Sequence[PathPart] = (), root: str = "$") -> M:
    """Validate a whole payload; any problem is the sender's, so it becomes a PayloadError."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise PayloadError(*_describe(err, root, prefix)) from None
    except RecursionError:
        raise PayloadError(json_path(prefix, root), "payload is nested too deeply") from None


def validate_record(
    model: type[M], data: Any, index: int, prefix: Sequence[PathPart], root: str = "$"
) -> M | Rejection:
    """Validate one record of a batch; a problem rejects only this record."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        path, message = _describe(err, root, prefix)
        return Rejection(index=index, path=path, message=message)
    except RecursionError:
        return Rejection(index=index, path=json_path(prefix, root), message="record is nested too deeply")


def require_object(payload: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(payload, Mapping):
        raise PayloadError("$", f"expected a JSON object ({what}), got {type_name(payload)}")
    return payload


def require_batch(value: Any, path: str) -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        raise PayloadError(path, f"expected an array of records, got {type_name(value)}")
    if len(value) > MAX_RECORDS:
        raise PayloadError(path, f"too many records ({len(value)} > {MAX_RECORDS}); split the batch")
    return value


def as_mapping(value: Any) -> Mapping[str, Any]:
    """The raw form of a record that validated; empty if it was not a plain mapping."""
    return value if isinstance(value, Mapping) else {}


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


# --- timestamps ---------------------------------------------------------------------


_SUBMICROSECONDS = re.compile(r"(\.\d{6})\d+")


def _parse_timestamp(value: Any) -> datetime:
    # Only RFC 3339 strings: pydantic would also take numbers as epoch seconds or milliseconds.
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        text = value.strip()
        if not 10 <= len(text) <= 64:
            raise ValueError("expected an RFC 3339 timestamp")
        # datetime.fromisoformat takes at most microseconds; Falco sends nanoseconds, Azure 7 digits.
        extra = _SUBMICROSECONDS.search(text)
        if extra is not None:
            text = text[: extra.end(1)] + text[extra.end() :]
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError("expected an RFC 3339 timestamp") from None
    else:
        raise ValueError(f"expected an RFC 3339 timestamp string, got {type_name(value)}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError("timestamp out of range") from None


Timestamp = Annotated[datetime, BeforeValidator(_parse_timestamp)]


def as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def effective_time(
    event_time: datetime | None, received_at: datetime, path: str
) -> tuple[datetime, Note | None]:
    """The time a signal is filed under: its own, unless missing or implausibly in the future."""
    received = as_utc(received_at)
    if event_time is None:
        return received, Note(path=path, message="no event time; using the time it was received")
    if event_time > received + MAX_CLOCK_SKEW:
        return received, Note(
            path=path, message="event time is in the future; using the time it was received"
        )
    return event_time, None


# --- ids, tags ----------------------------------------------------------------------


def _canonical(value: Any, depth: int, budget: list[int], seen: set[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise PayloadError("$", "payload is too large")
    if depth > _HASH_MAX_DEPTH:
        raise PayloadError("$", "payload is nested too deeply")
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**63 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, Mapping | list | tuple):
        if id(value) in seen:
            raise PayloadError("$", "payload contains a reference cycle")
        seen.add(id(value))
        try:
            if isinstance(value, Mapping):
                return {
                    str(k): _canonical(v, depth + 1, budget, seen)
                    for k, v in value.items()
                    if isinstance(k, str | int | float | bool)
                }
            return [_canonical(v, depth + 1, budget, seen) for v in value]
        finally:
            seen.discard(id(value))
    return f"<{type(value).__name__}>"


def stable_id(*parts: Any) -> str:
    """sha256 over a canonical JSON form, so a redelivered payload gets the same id."""
    canonical = _canonical(list(parts), 0, [_HASH_MAX_NODES], set())
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def build_tags(*groups: Sequence[str | None]) -> tuple[str, ...]:
    """De-duplicated, bounded tags in first-seen order."""
    out: dict[str, None] = {}
    for group in groups:
        for tag in group:
            if tag:
                out.setdefault(tag.strip()[:MAX_TAG_LENGTH], None)
    return tuple(t for t in out if t)[:MAX_TAGS]


def bounded(text: str | None, limit: int = MAX_NAME_LENGTH) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[:limit]


# --- evidence -----------------------------------------------------------------------

# Field names whose values are secrets whatever they hold.
_SECRET_KEY = re.compile(
    r"(?i)(token|secret|passw|pwd|credential|authori[sz]ation|cookie|private|apikey|api[_.-]key"
    r"|(^|[._-])key($|[._-])|[a-z]key$|(^|[._-])env($|[._-]))"
)

# Secrets inside free text (command lines, headers, URLs), each replaced by REDACTED.
_SECRET_TEXT: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"(?i)(\b(?:proxy-)?authorization\b[\"']?\s*[:=]\s*[\"']?)"
            r"(?:(?:bearer|basic|digest|token|negotiate)\s+)?[^\s\"',;]+"
        ),
        r"\1" + REDACTED,
    ),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + REDACTED),
    (
        re.compile(
            r"(?i)([\w.-]{0,32}(?:token|secret|passw(?:or)?d|pwd|api[_-]?key|access[_-]?key|private[_-]?key"
            r"|credentials?)[\w.-]{0,32}[\"']?\s*[=:]\s*[\"']?)[^\s\"',;&]+"
        ),
        r"\1" + REDACTED,
    ),
    (
        re.compile(r"(?i)(--?[\w-]{0,32}(?:token|secret|passw(?:or)?d|api[_-]?key)[\w-]{0,32}\s+)[^\s-]\S*"),
        r"\1" + REDACTED,
    ),
    (re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), REDACTED),
    (re.compile(r"\b(?:sk-[A-Za-z0-9_-]{16,}|hf_[A-Za-z0-9]{20,}|gh[pousr]_[A-Za-z0-9]{20,})"), REDACTED),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"), REDACTED),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), REDACTED),
    (re.compile(r"(://[^/\s:@]+:)[^@\s/]+@"), r"\1" + REDACTED + "@"),
)


@functools.lru_cache(maxsize=4096)
def _is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def is_secret_key(key: str) -> bool:
    # Field names repeat from payload to payload; the bounded cache only ever holds short keys.
    if len(key) > MAX_TAG_LENGTH:
        return bool(_SECRET_KEY.search(key))
    return _is_secret_key(key)


# Cheap pre-checks, one per _SECRET_TEXT pattern (same order): literals that any match of the
# pattern must contain, so a pattern runs only on text that can match it. ``all_of`` and
# ``exact`` are looked for as they are; ``folded`` (for the case-insensitive patterns) in the
# text as _fold() lower-cases it.
class _Gate(NamedTuple):
    all_of: tuple[str, ...] = ()
    exact: tuple[str, ...] = ()
    folded: tuple[str, ...] = ()


_GATES: tuple[_Gate, ...] = (
    _Gate(folded=("authorization",)),
    _Gate(folded=("bearer", "basic")),
    _Gate(folded=("token", "secret", "passw", "pwd", "key", "credential")),
    _Gate(all_of=("-",), folded=("token", "secret", "passw", "key")),
    _Gate(exact=("eyJ",)),
    _Gate(exact=("AKIA", "ASIA")),
    _Gate(exact=("sk-", "hf_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_")),
    _Gate(exact=("xox",)),
    _Gate(exact=("AIza",)),
    _Gate(all_of=("://", "@")),
)
assert len(_GATES) == len(_SECRET_TEXT)
# Text holding none of these cannot match any of the patterns.
_FOLDED_NEEDLES = tuple(dict.fromkeys(n for gate in _GATES for n in gate.folded))
_EXACT_NEEDLES = tuple(
    dict.fromkeys(n for gate in _GATES if not gate.folded for n in gate.exact or gate.all_of[:1])
)

# The non-ASCII characters that a case-insensitive ``re`` pattern matches to an ASCII letter
# (dotted capital I and dotless i to i, long s to s, the Kelvin sign to k); str.lower()
# alone would miss them.
_FOLD_TO_ASCII = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})


def _fold(text: str) -> str:
    """Lower-case ``text`` so an ASCII literal that (?i) finds in it is a substring of the result."""
    return text.lower() if text.isascii() else text.translate(_FOLD_TO_ASCII).lower()


def _gate_open(gate: _Gate, text: str, folded: str) -> bool:
    if not all(map(text.__contains__, gate.all_of)):
        return False
    if gate.exact:
        return any(map(text.__contains__, gate.exact))
    if gate.folded:
        return any(map(folded.__contains__, gate.folded))
    return True


def _may_hold_secret(text: str, folded: str) -> bool:
    return any(map(folded.__contains__, _FOLDED_NEEDLES)) or any(map(text.__contains__, _EXACT_NEEDLES))


# The third pattern ("name=value" with a secret-sounding name) may start anywhere up to 32
# word characters before its keyword, so a plain scan backtracks at every position of the text.
# It is run only where it can start: at most 32 [\w.-] characters before a keyword. Both helper
# patterns carry the same flags as the pattern itself, so they agree with it on every character.
_ASSIGNMENT = 2
_ASSIGNMENT_KEYWORDS = re.compile(
    r"(?i)(?=token|secret|passw(?:or)?d|pwd|api[_-]?key|access[_-]?key|private[_-]?key|credentials?)"
)
_ASSIGNMENT_NAME_RUN = re.compile(r"(?i)[\w.-]{0,32}")
_ASSIGNMENT_MAX_STARTS = 256


def _sub_assignments(pattern: re.Pattern[str], replacement: str, text: str) -> str:
    """``pattern.sub(replacement, text)``, trying the pattern only where a match can start."""
    keywords = [m.start() for m in _ASSIGNMENT_KEYWORDS.finditer(text)]
    if not keywords:
        return text
    reverse = text[::-1]
    starts: list[int] = []
    for at in keywords:
        name_run = _ASSIGNMENT_NAME_RUN.match(reverse, len(text) - at)
        run = name_run.end() - name_run.start() if name_run else 0
        starts.extend(range(at - run, at + 1))
    if len(starts) > _ASSIGNMENT_MAX_STARTS:
        return pattern.sub(replacement, text)
    # The pattern has no anchors or look-behind and cannot match empty text, so matching at each
    # possible start in order, resuming after each match, finds exactly the matches sub() finds.
    out: list[str] = []
    done = 0
    for start in sorted(set(starts)):
        if start < done:
            continue
        match = pattern.match(text, start)
        if match is not None:
            out.append(text[done:start])
            out.append(match.expand(replacement))
            done = match.end()
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


def redact_text(text: str, limit: int = MAX_EVIDENCE_STRING) -> str:
    """Scrub secret-looking substrings, then truncate to ``limit`` characters.

    The same as applying each of ``_SECRET_TEXT`` in turn with ``re.sub``, only cheaper.
    """
    # Cut first so the regexes run over bounded input; keep slack for secrets straddling the cut.
    work = text[: limit * 4]
    folded = _fold(work)
    if _may_hold_secret(work, folded):
        for index, (pattern, replacement) in enumerate(_SECRET_TEXT):
            if not _gate_open(_GATES[index], work, folded):
                continue
            if index == _ASSIGNMENT:
                redacted = _sub_assignments(pattern, replacement, work)
            else:
                redacted = pattern.sub(replacement, work)
            if redacted != work:
                work = redacted
                folded = _fold(work)
    if len(work) > limit or len(text) > limit * 4:
        work = work[:limit] + TRUNCATED
    return work


class _Budget:
    def __init__(self, chars: int) -> None:
        self.left = chars
        self.exhausted = False

    def take(self, n: int) -> bool:
        if n > self.left:
            self.exhausted = True
            return False
        self.left -= n
        return True


# Short strings (names, hosts, process names) repeat from signal to signal: remember their
# redacted form. Bounded, and long text, where secrets hide, is never kept.
_SHORT = 128
_redact_short = functools.lru_cache(maxsize=8192)(redact_text)


def _scrub(value: Any, depth: int, budget: _Budget, seen: set[int]) -> Any:
    if type(value) is str:
        clean = _redact_short(value) if len(value) <= _SHORT else redact_text(value)
        budget.take(len(clean))
        return clean
    if isinstance(value, str):
        clean = redact_text(value)
        budget.take(len(clean))
        return clean
    if value is None or isinstance(value, bool):
        budget.take(4)
        return value
    if isinstance(value, int):
        budget.take(8)
        return value if abs(value) <= 2**53 else str(value)
    if isinstance(value, float):
        budget.take(8)
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, Mapping | list | tuple):
        if depth >= MAX_EVIDENCE_DEPTH or id(value) in seen:
            budget.take(len(TRUNCATED))
            return TRUNCATED
        seen.add(id(value))
        try:
            if isinstance(value, Mapping):
                return _scrub_mapping(value, depth, budget, seen)
            out: list[Any] = []
            for item in list(value)[:MAX_EVIDENCE_ITEMS]:
                if budget.exhausted:
                    break
                out.append(_scrub(item, depth + 1, budget, seen))
            if len(value) > MAX_EVIDENCE_ITEMS:
                out.append(TRUNCATED)
            return out
        finally:
            seen.discard(id(value))
    budget.take(16)
    return f"<{type(value).__name__}>"


def _scrub_mapping(value: Mapping[Any, Any], depth: int, budget: _Budget, seen: set[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for count, (raw_key, item) in enumerate(value.items()):
        if count >= MAX_EVIDENCE_KEYS or budget.exhausted:
            out["_truncated"] = True
            break
        if not isinstance(raw_key, str):
            continue
        key = raw_key[:MAX_TAG_LENGTH]
        if not budget.take(len(key)):
            out["_truncated"] = True
            break
        out[key] = REDACTED if is_secret_key(key) else _scrub(item, depth + 1, budget, seen)
    return out


def build_evidence(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A bounded, redacted, JSON-safe copy of what a signal carries as evidence."""
    budget = _Budget(MAX_EVIDENCE_CHARS)
    out = _scrub_mapping(fields, 0, budget, set())
    if budget.exhausted:
        out["_truncated"] = True
    return out


def text_or_none(value: Any) -> str | None:
    """A usable string from a loosely typed field; placeholders like Falco's <NA> count as absent."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or text in {"<NA>", "N/A", "null", "None"}:
        return None
    return text


def short_str(value: Any, limit: int = MAX_NAME_LENGTH) -> str | None:
    text = text_or_none(value)
    return None if text is None else text[:limit]
