"""Targets, results and summaries of the bench's vegeta load (bench/lib/vegeta.py), and the null server."""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path

import pytest
from bench.lib import estate, vegeta
from bench.lib.harness import accepted_signals
from bench.lib.nullserver import split_requests

MS = 1_000_000
T0 = 1_700_000_000 * 1_000_000_000


def test_targets_are_distinct_falco_events_round_robin(tmp_path: Path) -> None:
    workloads = [estate.workload(i, 100) for i in (0, 1, 250)]
    path = vegeta.write_targets(tmp_path / "t.json", "http://127.0.0.1:9/", workloads, 7)
    lines = path.read_text().splitlines()
    assert len(lines) == 7
    targets = [json.loads(line) for line in lines]
    assert {t["method"] for t in targets} == {"POST"}
    assert {t["url"] for t in targets} == {"http://127.0.0.1:9/v1/signals/falco"}
    events = [json.loads(base64.b64decode(t["body"])) for t in targets]
    assert len({e["uuid"] for e in events}) == 7
    assert {e["rule"] for e in events} == {estate.NOISE_RULE}
    pods = [(e["output_fields"]["k8s.ns.name"], e["output_fields"]["k8s.pod.name"]) for e in events]
    assert pods == [(workloads[n % 3].namespace, workloads[n % 3].pod) for n in range(7)]


def test_target_count_is_twice_the_bound() -> None:
    assert vegeta.target_count(10, 4000) == 80_000
    assert vegeta.target_count(0.5, 3) == 3


@pytest.mark.parametrize(
    ("per_sec", "flag"), [(0, "0"), (200, "200/1s"), (200.0, "200/1s"), (12.5, "12500/1000s")]
)
def test_rate_flag(per_sec: float, flag: str) -> None:
    assert vegeta.rate_flag(per_sec) == flag


def _csv(rows: list[tuple[int, int, int, str, bytes]]) -> str:
    """vegeta's CSV encoding: timestamp, code, latency, bytes out, bytes in, error, body, ..."""
    out = io.StringIO()
    writer = csv.writer(out)
    for seq, (start_ns, code, latency_ns, error, body) in enumerate(rows):
        b64 = base64.b64encode(body).decode()
        writer.writerow([start_ns, code, latency_ns, 300, len(body), error, b64, "", seq, "POST", "u", ""])
    return out.getvalue()


def _accepted(n: int) -> bytes:
    return json.dumps({"received": 1, "accepted": n, "duplicates": 1 - n, "matched": []}).encode()


def test_parse_csv_reads_accepted_from_the_body() -> None:
    text = _csv(
        [
            (T0, 200, 5 * MS, "", _accepted(1)),
            (T0 + MS, 200, 6 * MS, "", _accepted(0)),
            (T0 + 2 * MS, 503, 7 * MS, "503 Service Unavailable", b'{"error": "x"}'),
            (T0 + 3 * MS, 0, 8 * MS, "dial tcp: connection refused", b""),
        ]
    )
    hits = vegeta.parse_csv(text)
    assert [(h.code, h.accepted) for h in hits] == [(200, 1), (200, 0), (503, 0), (0, 0)]
    assert hits[0].done_ns == T0 + 5 * MS
    assert hits[2].error == "503 Service Unavailable"


def test_summary_counts_only_accepted_signals_after_the_warm_up() -> None:
    hits = [
        # Warm-up: acks within the first second of the first ack are not in the rate.
        vegeta.Hit(T0, 10 * MS, 200, "", 1),
        vegeta.Hit(T0 + 500 * MS, 10 * MS, 200, "", 1),
        # Window from T0 + 1.01 s: 3 acks, the last at T0 + 2.01 s.
        vegeta.Hit(T0 + 1_000 * MS, 20 * MS, 200, "", 1),
        vegeta.Hit(T0 + 1_500 * MS, 10 * MS, 200, "", 1),
        vegeta.Hit(T0 + 2_000 * MS, 10 * MS, 200, "", 1),
        # A duplicate is a 200 but no signal; an error is neither.
        vegeta.Hit(T0 + 1_600 * MS, 10 * MS, 200, "", 0),
        vegeta.Hit(T0 + 1_700 * MS, 30 * MS, 503, "503 Service Unavailable", 0),
        vegeta.Hit(T0 + 1_800 * MS, 0, 0, "connection refused", 0),
    ]
    out = vegeta.summarise(hits)
    assert (out.sent, out.ok, out.accepted, out.failed) == (8, 6, 5, 2)
    assert out.statuses == {"200": 6, "503": 1, "0": 1}
    assert out.errors == {"503 Service Unavailable": 1, "connection refused": 1}
    assert out.per_sec == pytest.approx(3 / 1.0)
    assert sorted(out.latency_ms) == [10.0, 10.0, 10.0, 10.0, 20.0]
    assert not out.ran_out
    assert out.seconds == pytest.approx(2.01)
    assert out.sending_seconds == pytest.approx(2.0)


def test_summary_measures_only_what_was_sent_after_the_server_settled() -> None:
    hits = [
        vegeta.Hit(T0, 900 * MS, 200, "", 1),  # settling: slow while the first folds start
        vegeta.Hit(T0 + 1_000 * MS, 900 * MS, 200, "", 1),
        vegeta.Hit(T0 + 2_000 * MS, 10 * MS, 200, "", 1),  # measured from here
        vegeta.Hit(T0 + 2_500 * MS, 30 * MS, 200, "", 1),
        vegeta.Hit(T0 + 3_000 * MS, 0, 0, "connection refused", 0),
    ]
    out = vegeta.summarise(hits, settle_s=2.0)
    assert (out.sent, out.accepted, out.failed) == (5, 4, 1)  # every request still counts
    assert sorted(out.latency_ms) == [10.0, 30.0]
    assert (out.measured_sent, out.measured_accepted) == (3, 2)
    assert out.measured_sending_seconds == pytest.approx(1.0)
    assert out.sending_seconds == pytest.approx(3.0)


def test_summary_notes_the_end_of_the_targets_without_counting_it_as_an_error() -> None:
    hits = [vegeta.Hit(T0, MS, 200, "", 1), vegeta.Hit(T0 + MS, 0, 0, vegeta.END_OF_TARGETS, 0)]
    out = vegeta.summarise(hits)
    assert out.ran_out
    assert (out.sent, out.failed, out.accepted) == (1, 0, 1)


def test_summary_of_nothing() -> None:
    out = vegeta.summarise([])
    assert (out.sent, out.accepted, out.per_sec, out.seconds) == (0, 0, 0.0, 0.0)


def test_accepted_signals_sums_the_accepted_series() -> None:
    text = "\n".join(
        [
            "# HELP aitrust_signals_total Signals received, by source and result.",
            "# TYPE aitrust_signals_total counter",
            'aitrust_signals_total{result="accepted",source="falco"} 120.0',
            'aitrust_signals_total{result="duplicate",source="falco"} 7.0',
            'aitrust_signals_total{result="accepted",source="cloudtrail"} 3.0',
            'aitrust_signals_created{result="accepted",source="falco"} 1.7e+09',
        ]
    )
    assert accepted_signals(text) == 123.0


def _request(body: bytes) -> bytes:
    return b"POST /v1/signals/falco HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def test_null_server_splits_pipelined_and_partial_requests() -> None:
    one, two = _request(b'{"a": 1}'), _request(b"")
    assert split_requests(one + two) == (2, b"")
    assert split_requests(one + two[:10]) == (1, two[:10])
    assert split_requests(one[:-3]) == (0, one[:-3])
    assert split_requests(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n") == (1, b"")


def test_null_server_refuses_chunked_bodies() -> None:
    with pytest.raises(ValueError, match="chunked"):
        split_requests(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
