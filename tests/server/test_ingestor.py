"""Group commit and the journal, with a fake API: a burst is one record, then one status write."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from aitrust.api.v1alpha1 import AIWorkload, Mode, Severity, TrustPolicySpec
from aitrust.controller.journal import MAX_RECORD_BYTES, Inbox, build_journal_records, parse_journal_record
from aitrust.controller.reconciler import Reconciler
from aitrust.controller.store import Store
from aitrust.core.compact import build_lean_signal
from aitrust.core.signal import Signal, WorkloadHint
from aitrust.server.auth import RateLimiter, TokenStore
from aitrust.server.ingestor import CommitError, Ingestor

NOW = datetime(2026, 11, 1, tzinfo=UTC)


class FakeCore:
    """ConfigMaps in one namespace, as the journal uses them."""

    def __init__(self) -> None:
        self.config_maps: dict[str, dict[str, Any]] = {}
        self.creates = 0

    def create_namespaced_config_map(self, ns: str, body: dict[str, Any], **_: Any) -> Raw:
        self.creates += 1
        self.config_maps[body["metadata"]["name"]] = copy.deepcopy(body)
        return Raw(body)

    def list_namespaced_config_map(self, ns: str, **_: Any) -> Any:
        return Raw({"items": list(self.config_maps.values())})

    def delete_namespaced_config_map(self, name: str, ns: str, **_: Any) -> Raw:
        self.config_maps.pop(name, None)
        return Raw({})


class FakeAio:
    """``Kube.aio`` for the journal's ConfigMaps; ``gate`` (if set) is awaited before a create."""

    def __init__(self, core: FakeCore) -> None:
        self.core = core
        self.gate: Any = None

    async def request(self, method: str, path: str, body: Any = None, **_: Any) -> Any:
        parts = path.strip("/").split("/")
        assert parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "configmaps", path
        if method == "POST":
            if self.gate is not None:
                await self.gate()
            self.core.create_namespaced_config_map(parts[3], body)
            return body
        if method == "DELETE":
            self.core.delete_namespaced_config_map(parts[5], parts[3])
            return {}
        raise AssertionError(method)

    async def close(self) -> None:
        pass


class FakeNetworking:
    def read_namespaced_network_policy(self, *_: Any, **__: Any) -> Any:
        raise ApiException(status=404)


class Raw:
    def __init__(self, body: Any) -> None:
        self.data = json.dumps(body).encode()


class FakeKube:
    """Status patches with resourceVersion checks like the API server, and the journal's ConfigMaps."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.patches = 0
        self.core = FakeCore()
        self.aio = FakeAio(self.core)
        self.networking = FakeNetworking()

    async def patch_status(
        self, kind: str, ns: str, name: str, status: dict[str, Any], rv: str | None = None
    ) -> Any:
        assert rv == self.body["metadata"]["resourceVersion"]
        self.patches += 1
        self.body = copy.deepcopy(self.body)
        self.body["status"] = status
        self.body["metadata"]["resourceVersion"] = str(int(rv or 0) + 1)
        return self.body

    def get_custom(self, kind: str, ns: str, name: str) -> dict[str, Any]:
        return self.body


def signal(i: int) -> Signal:
    return Signal(
        id=f"evt-{i}",
        source="falco",
        time=NOW,
        severity=Severity.LOW,
        rule="Read sensitive file untrusted",
        target=WorkloadHint(namespace="ml", pod="agent-0"),
    )


BODY = {
    "apiVersion": "aitrust.dev/v1alpha1",
    "kind": "AIWorkload",
    "metadata": {"name": "agent", "namespace": "ml", "resourceVersion": "1", "generation": 1},
    "spec": {"kind": "agent", "selector": {"matchLabels": {"app": "agent"}}},
}
KEY = ("ml", "agent")


def reconciler_for(kube: FakeKube) -> Reconciler:
    store = Store()
    store.upsert("AIWorkload", kube.body)
    return Reconciler(
        kube,  # type: ignore[arg-type]
        store,
        clock=lambda: NOW,
        default_mode=Mode.AUDIT,
        journal_namespace="aitrust-system",
    )


async def settle(reconciler: Reconciler) -> None:
    await reconciler._reconcile(KEY)
    await asyncio.sleep(0.05)  # the record deletion runs in the background


def test_a_burst_is_one_journal_record_then_one_status_write() -> None:
    kube = FakeKube(copy.deepcopy(BODY))

    async def run() -> tuple[int, int]:
        reconciler = reconciler_for(kube)
        ingestor = Ingestor(reconciler, window=0.2)  # wide enough that the whole burst queues first
        ingestor.start()
        results = await asyncio.gather(*(ingestor.submit(KEY, [signal(i % 1000)]) for i in range(1000)))
        again = await ingestor.submit(KEY, [signal(1)])
        # Acknowledged means journaled: nothing is in status yet, all of it is in the record.
        assert kube.patches == 0
        assert kube.core.creates == 1
        assert len(reconciler.inbox) == 1000
        await settle(reconciler)
        await ingestor.stop()
        return sum(r.added for r in results), again.duplicates

    added, duplicates = asyncio.run(run())
    assert added == 1000
    assert duplicates == 1
    assert kube.patches == 1  # one status write for the burst
    assert len(kube.body["status"]["signals"]) == 100  # bounded, most recent/severe kept
    assert kube.core.config_maps == {}  # applied: the record is gone


def test_a_big_fold_lets_the_loop_answer_requests_meanwhile() -> None:
    kube = FakeKube(copy.deepcopy(BODY))

    async def run() -> tuple[list[str], int]:
        reconciler = reconciler_for(kube)
        order: list[str] = []

        async def request() -> None:
            order.append("request answered")

        waiting = [signal(i) for i in range(450)]
        workload = AIWorkload.model_validate(kube.body)
        inputs = reconciler.gather_inputs(workload)
        small = asyncio.ensure_future(request())
        await reconciler._fold(workload, waiting[:10], inputs, NOW)
        order.append("small fold done")  # inline: nothing else ran in between
        await small
        big = asyncio.ensure_future(request())
        ingestion = await reconciler._fold(workload, waiting, inputs, NOW)
        order.append("big fold done")
        await big
        return order, len(ingestion.added)

    order, added = asyncio.run(run())
    assert order == ["small fold done", "request answered", "request answered", "big fold done"]
    assert added == 450


def test_one_request_waits_once_for_signals_of_several_workloads() -> None:
    kube = FakeKube(copy.deepcopy(BODY))
    other = ("ml", "other")

    async def run() -> tuple[int, int, int, int]:
        reconciler = reconciler_for(kube)
        ingestor = Ingestor(reconciler)
        ingestor.start()
        committed = await ingestor.submit_many({KEY: [signal(1), signal(2), signal(1)], other: [signal(3)]})
        empty = await ingestor.submit_many({})
        await ingestor.stop()
        return committed.added, committed.duplicates, empty.added + empty.duplicates, len(reconciler.inbox)

    added, duplicates, empty, waiting = asyncio.run(run())
    assert (added, duplicates) == (3, 1)  # the repeated id within the request counts once
    assert empty == 0
    assert waiting == 3
    assert kube.core.creates == 1


def test_a_failed_journal_write_fails_the_whole_request() -> None:
    kube = FakeKube(copy.deepcopy(BODY))

    async def refuse() -> None:
        raise ApiException(status=500, reason="etcd down")

    async def run() -> None:
        reconciler = reconciler_for(kube)
        ingestor = Ingestor(reconciler)
        kube.aio.gate = refuse
        ingestor.start()
        try:
            await ingestor.submit_many({KEY: [signal(1)], ("ml", "other"): [signal(2)]})
        finally:
            await ingestor.stop()

    with pytest.raises(CommitError, match="etcd down"):
        asyncio.run(run())


def test_a_killed_operators_journal_is_replayed_once() -> None:
    kube = FakeKube(copy.deepcopy(BODY))

    async def acknowledge_then_die() -> None:
        reconciler = reconciler_for(kube)
        ingestor = Ingestor(reconciler)
        ingestor.start()
        await ingestor.submit(KEY, [signal(1), signal(2)])
        await ingestor.stop()  # "killed": nothing was applied

    asyncio.run(acknowledge_then_die())
    assert kube.patches == 0 and len(kube.core.config_maps) == 1

    async def restart() -> int:
        reconciler = reconciler_for(kube)
        reconciler.replay_journal()
        waiting = len(reconciler.inbox)
        await settle(reconciler)
        return waiting

    assert asyncio.run(restart()) == 2
    assert {s["id"] for s in kube.body["status"]["signals"]} >= {"evt-1", "evt-2"}
    assert kube.core.config_maps == {}

    # A record left over after its signals reached status (killed before the delete) changes nothing.
    leftover = build_journal_records([(KEY, signal(1))])[0].body
    kube.core.create_namespaced_config_map("aitrust-system", leftover)
    before = copy.deepcopy(kube.body["status"])

    async def restart_again() -> None:
        reconciler = reconciler_for(kube)
        reconciler.replay_journal()
        await settle(reconciler)

    asyncio.run(restart_again())
    assert kube.body["status"]["signals"] == before["signals"]
    assert kube.core.config_maps == {}


def test_noise_is_journaled_and_held_without_its_evidence_a_costly_signal_keeps_it() -> None:
    kube = FakeKube(copy.deepcopy(BODY))
    noise = cloud_event(1, "DescribeInstances").model_copy(update={"evidence": {"userAgent": "boto3"}})
    costly = signal(7).model_copy(update={"evidence": {"output": "read /etc/shadow"}})

    async def run() -> None:
        reconciler = reconciler_for(kube)
        ingestor = Ingestor(reconciler)
        ingestor.start()
        assert (await ingestor.submit(KEY, [noise, costly])).added == 2
        (record,) = kube.core.config_maps.values()
        lines = [json.loads(line)["signal"] for line in record["data"]["signals.json"].splitlines()]
        journaled = {line["id"]: line for line in lines}
        assert journaled["evt-7"]["evidence"] == {"output": "read /etc/shadow"}
        # Only what the fold reads, defaults left out.
        assert set(journaled["ct-1"]) == {"id", "source", "time", "severity", "rule", "event_name"}
        assert {s.id: s.evidence for s in reconciler.inbox.pending(KEY)} == {"ct-1": {}, "evt-7": {}}
        # A restarted operator would hold what this one holds.
        replayed = [(key, build_lean_signal(s)) for key, s in parse_journal_record(record)]
        assert replayed == [(KEY, build_lean_signal(s)) for s in (noise, costly)]
        await settle(reconciler)
        assert kube.core.config_maps == {}
        await ingestor.stop()

    asyncio.run(run())
    assert [r["id"] for r in kube.body["status"]["signals"]] == ["evt-7"]  # noise is folded, not listed


@pytest.mark.parametrize("baseline", [True, False])
def test_a_fold_of_noise_lists_none_of_it_and_frees_its_record(baseline: bool) -> None:
    kube = FakeKube(copy.deepcopy(BODY))

    async def run() -> None:
        reconciler = reconciler_for(kube)
        meta, spec = {"name": "default", "namespace": "ml"}, {"signals": {"baseline": {"enabled": baseline}}}
        reconciler.store.upsert("TrustPolicy", {"metadata": meta, "spec": spec})
        await reconciler._reconcile(KEY)  # first scoring
        scored = kube.patches
        ingestor = Ingestor(reconciler)
        ingestor.start()
        noise = [cloud_event(i, "DescribeInstances") for i in range(1, 51)]
        assert (await ingestor.submit(KEY, noise)).added == 50
        assert len(kube.core.config_maps) == 1 and len(reconciler.inbox) == 50
        reconciler.fold_due.add(KEY)
        await settle(reconciler)
        assert len(reconciler.inbox) == 0 and kube.core.config_maps == {}
        assert kube.body["status"].get("signals", []) == []
        if baseline:  # the baseline learned from the noise: that is what status must keep
            assert kube.patches == scored + 1
            assert kube.body["status"]["baseline"]["events"]["cloudtrail:DescribeInstances"]["n"] == 50
        else:  # nothing a person or the score reads changed: no write at all
            assert kube.patches == scored
        assert (await ingestor.submit(KEY, noise[:1])).duplicates == 1  # still counted once
        await ingestor.stop()

    asyncio.run(run())


def test_journal_records_split_under_the_configmap_cap_and_round_trip() -> None:
    entries = [(("ns", f"w{i % 7}"), signal(i)) for i in range(5000)]
    records = build_journal_records(entries)
    assert len(records) > 1
    assert all(len(r.body["data"]["signals.json"]) <= MAX_RECORD_BYTES for r in records)
    assert len({r.body["metadata"]["name"] for r in records}) == len(records)
    assert [e for r in records for e in parse_journal_record(r.body)] == entries
    assert all(parse_journal_record(r.body) == r.entries for r in records)
    broken = {"data": {"signals.json": "not json\n" + records[0].body["data"]["signals.json"]}}
    assert len(parse_journal_record(broken)) == len(records[0].entries)


def test_inbox_settles_records_only_when_every_signal_is_applied() -> None:
    inbox = Inbox()
    inbox.add("r1", [(KEY, signal(1)), (("ml", "other"), signal(2))])
    inbox.add("r2", [(KEY, signal(1)), (KEY, signal(3))])  # evt-1 again: counted once
    assert len(inbox) == 3
    assert inbox.holds(KEY, "evt-3") and not inbox.holds(("ml", "other"), "evt-3")
    assert inbox.settle(KEY, ["evt-1", "evt-3"]) == ["r2"]
    assert inbox.drop(("ml", "other")) == ["r1"]
    assert len(inbox) == 0 and inbox.workloads() == []
    assert inbox.empty_records(["r1", "r3"]) == ["r1", "r3"]


def test_a_costly_signal_is_enforced_while_its_journal_write_runs() -> None:
    kube = FakeKube(copy.deepcopy(BODY))
    release = asyncio.Event()
    failures = [RuntimeError("etcd unavailable")]

    async def gate() -> None:
        await release.wait()
        if failures:
            raise failures.pop()

    kube.aio.gate = gate

    async def run() -> None:
        reconciler = reconciler_for(kube)
        ingestor = Ingestor(reconciler)
        ingestor.start()
        first = asyncio.create_task(ingestor.submit(KEY, [signal(7)]))
        await asyncio.sleep(0.1)
        # Not durable yet, not acknowledged, but already waiting to be enforced, urgently.
        assert not first.done()
        assert [s.id for s in reconciler.inbox.pending(KEY)] == ["evt-7"]
        assert not reconciler.inbox.holds(KEY, "evt-7")  # a retry would not count as a duplicate
        assert KEY in reconciler.queue._urgent
        release.set()
        with pytest.raises(CommitError):
            await first  # the write failed: 503, the sender retries
        retry = await ingestor.submit(KEY, [signal(7)])
        assert retry.added == 1  # journaled this time, not mistaken for a duplicate
        assert reconciler.inbox.holds(KEY, "evt-7") and len(kube.core.config_maps) == 1
        await settle(reconciler)
        assert kube.core.config_maps == {}
        await ingestor.stop()

    asyncio.run(run())
    assert [s["id"] for s in kube.body["status"]["signals"]] == ["evt-7"]


def test_a_costly_signal_does_not_wait_for_the_group_commit_window() -> None:
    kube = FakeKube(copy.deepcopy(BODY))

    async def run() -> None:
        reconciler = reconciler_for(kube)
        ingestor = Ingestor(reconciler, window=30.0)  # a batch that would not be written for 30 s
        ingestor.start()
        waiting = asyncio.create_task(ingestor.submit(KEY, [signal(8)]))
        await asyncio.sleep(0)
        assert [s.id for s in reconciler.inbox.pending(KEY)] == ["evt-8"]
        assert KEY in reconciler.queue._urgent
        assert kube.core.creates == 0 and not waiting.done()  # the 2xx still waits for the journal
        waiting.cancel()
        await ingestor.stop()

    asyncio.run(run())


def test_a_costly_signal_already_in_status_when_its_batch_runs_is_accepted_not_a_duplicate() -> None:
    kube = FakeKube(copy.deepcopy(BODY))

    async def run() -> tuple[int, int, int]:
        reconciler = reconciler_for(kube)
        ingestor = Ingestor(reconciler, window=0.2)
        ingestor.start()
        waiting = asyncio.create_task(ingestor.submit(KEY, [signal(9)]))
        await asyncio.sleep(0)
        await reconciler._reconcile(KEY)  # the urgent reconcile wins the race with the batch
        assert [r["id"] for r in kube.body["status"]["signals"]] == ["evt-9"]
        committed = await waiting
        again = await ingestor.submit(KEY, [signal(9)])
        await ingestor.stop()
        return committed.added, committed.duplicates, again.duplicates

    added, duplicates, replayed = asyncio.run(run())
    assert (added, duplicates) == (1, 0)
    assert kube.core.creates == 0  # durable in status already: no journal record needed
    assert replayed == 1


def test_a_resync_leaves_held_noise_for_its_fold_but_folds_a_costly_signal() -> None:
    kube = FakeKube(copy.deepcopy(BODY))

    async def run() -> None:
        reconciler = reconciler_for(kube)
        reconciler.inbox.add("journal-1", [(KEY, cloud_event(1, "DescribeInstances"))])
        reconciler.holding.add(KEY)
        await reconciler._reconcile(KEY)  # a resync: the noise waits for its scheduled fold
        assert [s["id"] for s in kube.body["status"].get("signals", [])] == []
        assert len(reconciler.inbox) == 1
        reconciler.inbox.add("provisional:x", [(KEY, signal(5))])  # costs points: enforced now
        await reconciler._reconcile(KEY)
        assert [s["id"] for s in kube.body["status"]["signals"]] == ["evt-5"]  # noise is not listed
        assert len(reconciler.inbox) == 0 and KEY not in reconciler.holding

        # The fold comes due while more noise arrived: the fold takes it all, nothing starves.
        reconciler.inbox.add("journal-2", [(KEY, cloud_event(2, "DescribeInstances"))])
        reconciler.holding.add(KEY)
        reconciler.fold_due.add(KEY)
        reconciler.inbox.add("journal-3", [(KEY, cloud_event(3, "DescribeInstances"))])
        await reconciler._reconcile(KEY)
        assert len(reconciler.inbox) == 0 and not reconciler.holding and not reconciler.fold_due

    asyncio.run(run())


def cloud_event(i: int, name: str) -> Signal:
    return Signal(
        id=f"ct-{i}",
        source="cloudtrail",
        time=NOW,
        severity=Severity.INFO,
        rule=name,
        event_name=name,
        target=WorkloadHint(namespace="ml", pod="agent-0"),
    )


def test_a_sequence_step_is_never_held_as_noise() -> None:
    kube = FakeKube(copy.deepcopy(BODY))

    async def run() -> None:
        reconciler = reconciler_for(kube)
        ingestor = Ingestor(reconciler, coalesce=1.0, max_coalesce=10.0, fold_rate=100.0)
        noise = cloud_event(1, "DescribeInstances")  # free, no sequence step
        step = cloud_event(2, "ListFoundationModels")  # an LLMjacking step
        ingestor._apply_early({KEY: [noise]})
        assert reconciler.inbox.pending(KEY) == []  # free: waits for the group commit
        assert ingestor._steps == set()
        ingestor._apply_early({KEY: [noise, step]})
        assert [s.id for s in reconciler.inbox.pending(KEY)] == [step.id]  # 5 points by default: at once
        assert ingestor._early == {(KEY, step.id)}
        # A policy where single steps cost nothing: the step still is not left waiting as noise.
        free = TrustPolicySpec.model_validate(
            {"signals": {"severityPoints": {"critical": 0, "high": 0, "medium": 0, "low": 0, "info": 0}}}
        )
        reconciler.policy_for = lambda key: free  # type: ignore[method-assign]
        ingestor._apply_early({KEY: [noise, cloud_event(3, "ListFoundationModels")]})
        assert len(reconciler.inbox) == 1
        assert ingestor._steps == {(KEY, "ct-3")}  # a step: folded promptly; the noise is not
        reconciler.inbox.drop(KEY)

    asyncio.run(run())


def test_held_workloads_get_their_fold_oldest_first_evenly_spaced() -> None:
    kube = FakeKube(copy.deepcopy(BODY))

    async def run() -> None:
        reconciler = reconciler_for(kube)
        reconciler.policy_for = lambda key: TrustPolicySpec()  # type: ignore[method-assign]
        ingestor = Ingestor(reconciler, coalesce=1.0, max_coalesce=10.0, fold_rate=100.0)
        now = [100.0]
        released: list[tuple[float, tuple[str, str]]] = []

        async def sleep(seconds: float) -> None:
            now[0] += seconds
            await asyncio.sleep(0)

        ingestor.clock = lambda: now[0]
        ingestor.sleep = sleep  # type: ignore[assignment]
        enough = asyncio.Event()
        wanted = [0]

        def release(key: tuple[str, str]) -> None:
            released.append((now[0], key))
            if len(released) >= wanted[0]:
                enough.set()

        ingestor._release = release  # type: ignore[method-assign]
        ingestor.start()

        async def hold(keys: list[tuple[str, str]], first: int) -> None:
            batch = {key: [cloud_event(first + i, "DescribeInstances")] for i, key in enumerate(keys)}
            assert (await ingestor.submit_many(batch)).added == len(keys)

        async def released_count(count: int) -> None:
            wanted[0] = count
            enough.clear()
            if len(released) < count:
                await enough.wait()

        # 500 workloads start holding at once: they fold over 5 s at 100 a second, each after
        # holding 1 s at least, not in one burst of status writes.
        keys = [("ml", f"w{i}") for i in range(500)]
        await hold(keys, 0)
        await released_count(500)
        times = [t for t, _ in released]
        assert times[0] == pytest.approx(101.0)
        assert all(b - a == pytest.approx(0.01) for a, b in itertools.pairwise(times))
        assert {key for _, key in released} == set(keys)

        # Oldest hold first; a workload folded early (a costly signal) has no turn left to take.
        reconciler.holding.clear()
        released.clear()
        await hold([("ml", "late")], 1000)
        now[0] += 0.5
        await hold([("ml", "later"), ("ml", "folded")], 1001)
        reconciler.holding.discard(("ml", "folded"))
        await released_count(2)
        await asyncio.sleep(0.01)
        assert [key for _, key in released] == [("ml", "late"), ("ml", "later")]

        # More held noise than max_waiting_noise, or a hold older than max_coalesce: faster.
        assert len(reconciler.inbox) == 503
        assert ingestor.fold_pace(5.0) == 100.0
        assert ingestor.fold_pace(30.0) == pytest.approx(300.0)
        ingestor.max_waiting_noise = 100
        assert ingestor.fold_pace(5.0) == pytest.approx(503.0)
        await ingestor.stop()

    asyncio.run(run())


def test_a_full_backlog_refuses_new_signals_instead_of_growing() -> None:
    kube = FakeKube(copy.deepcopy(BODY))

    async def run() -> None:
        reconciler = reconciler_for(kube)
        ingestor = Ingestor(reconciler, max_backlog=3)
        ingestor.start()
        assert (await ingestor.submit(KEY, [signal(i) for i in range(3)])).added == 3
        assert len(reconciler.inbox) == 3  # journaled, waiting to be folded
        with pytest.raises(CommitError, match="3 signals are waiting"):
            await ingestor.submit(KEY, [signal(9)])  # 503: the sender retries later
        assert not reconciler.inbox.holds(KEY, "evt-9")
        await settle(reconciler)
        assert (await ingestor.submit(KEY, [signal(9)])).added == 1  # room again once folded
        await ingestor.stop()

    asyncio.run(run())


def test_rate_limiter_and_tokens() -> None:
    limiter = RateLimiter(rate=10, burst=2)
    assert limiter.acquire("a", now=0.0) == 0.0
    assert limiter.acquire("a", now=0.0) == 0.0
    wait = limiter.acquire("a", now=0.0)
    assert 0 < wait <= 0.1
    assert limiter.acquire("b", now=0.0) == 0.0  # per caller
    assert limiter.acquire("a", now=1.0) == 0.0  # refilled
    off = RateLimiter(rate=0, burst=1)  # the chart's "0 disables the limit"
    assert [off.acquire("a", now=0.0) for _ in range(5)] == [0.0] * 5

    tokens = TokenStore(lambda: {"sidekick": "a-token-of-sixteen+", "short": "tooshort"})
    tokens.refresh()
    assert tokens.authenticate("Bearer a-token-of-sixteen+") == "sidekick"
    assert tokens.authenticate("Bearer tooshort") is None  # weak tokens are not accepted at all
    assert tokens.authenticate("Basic a-token-of-sixteen+") is None
    assert tokens.authenticate(None) is None
