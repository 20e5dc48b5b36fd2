"""OpaTarget against a real OPA: batched incremental writes land exactly, and never clobber siblings."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from aitrust.kube.opa import OpaTarget
from aitrust.render.opa import OPA_ROOT
from aitrust.testing.cluster import OpaServer
from aitrust.testing.processes import free_port


def test_concurrent_writes_are_batched_and_exact(tmp_path: Path) -> None:
    opa = OpaServer(workdir=tmp_path / "opa").start()
    requests: list[str] = []

    def full() -> dict[str, Any]:
        return {"workloads": {"ns0": {"keep": {"tier": "trusted"}}}, "subjects": {}}

    async def scenario() -> dict[str, Any]:
        target = OpaTarget(opa.url, {}, full)

        async def log(request: httpx.Request) -> None:
            requests.append(request.method)

        target.client.event_hooks["request"].append(log)
        await target.push_full()
        requests.clear()
        docs = {(f"ns{i % 3}", f"w{i}"): {"tier": "restricted", "i": i} for i in range(60)}
        results = await asyncio.gather(
            *(target.push_document([OPA_ROOT, "workloads", ns, name], d) for (ns, name), d in docs.items()),
            target.push_document(["aitrust_data", "subjects", "ns1"], {"sa": ["w1"]}),
        )
        assert all(results)
        # Unchanged documents are not written again; a deletion is.
        same = {"tier": "restricted", "i": 1}
        assert await target.push_document(["aitrust_data", "workloads", "ns1", "w1"], same)
        assert await target.push_document(["aitrust_data", "workloads", "ns2", "w2"], None)
        data: dict[str, Any] = (await target.client.get("/v1/data/aitrust_data")).json()["result"]
        await target.stop()
        return data

    try:
        data = asyncio.run(scenario())
    finally:
        opa.stop()
    assert data["workloads"]["ns0"]["keep"] == {"tier": "trusted"}  # the sibling survived the adds
    assert data["workloads"]["ns0"]["w0"] == {"tier": "restricted", "i": 0}
    assert sum(len(v) for v in data["workloads"].values()) == 60  # 61 written, one deleted
    assert "w2" not in data["workloads"]["ns2"]
    assert data["subjects"]["ns1"] == {"sa": ["w1"]}
    assert requests.count("PATCH") < 10, requests  # 61 documents, a handful of requests
    assert requests.count("PUT") == 0 and requests.count("DELETE") == 1


def test_a_document_pushed_while_the_full_sync_is_in_flight_is_not_lost(tmp_path: Path) -> None:
    """The snapshot is taken before the full PUT; a workload reconciled meanwhile is newer."""
    opa = OpaServer(workdir=tmp_path / "opa").start()
    effective = {"w0": {"tier": "trusted"}}

    def full() -> dict[str, Any]:
        return {"workloads": {"ns": dict(effective)}, "subjects": {}}

    async def scenario() -> dict[str, Any]:
        target = OpaTarget(opa.url, {}, full)
        sent = asyncio.Event()

        async def reconcile_during_put(request: httpx.Request) -> None:
            if request.method == "PUT" and not sent.is_set():
                sent.set()
                effective["w1"] = {"tier": "quarantined"}
                # Not synced yet: answered at once (a reconcile never waits on OPA), held for later.
                assert not await target.push_document([OPA_ROOT, "workloads", "ns", "w1"], effective["w1"])
                effective["w0"] = {"tier": "restricted"}
                assert not await target.push_document([OPA_ROOT, "workloads", "ns", "w0"], effective["w0"])

        target.client.event_hooks["request"].append(reconcile_during_put)
        await target.push_full()
        assert sent.is_set()
        for _ in range(100):
            data: dict[str, Any] = (await target.client.get(f"/v1/data/{OPA_ROOT}")).json()["result"]
            if "w1" in data["workloads"]["ns"]:
                break
            await asyncio.sleep(0.02)
        await target.stop()
        return data

    try:
        data = asyncio.run(scenario())
    finally:
        opa.stop()
    assert data["workloads"]["ns"] == {"w0": {"tier": "restricted"}, "w1": {"tier": "quarantined"}}


def test_a_target_that_comes_up_late_is_synced_with_backoff_and_reports_why_until_then(
    tmp_path: Path,
) -> None:
    port = free_port()
    errors: list[str] = []
    synced: list[str] = []

    effective: dict[str, Any] = {"w0": {"tier": "trusted"}}

    def full() -> dict[str, Any]:
        return {"workloads": {"ns": dict(effective)}, "subjects": {}}

    async def scenario() -> tuple[str | None, str | None, dict[str, Any]]:
        target = OpaTarget(
            f"http://127.0.0.1:{port}", {}, full, on_error=errors.append, on_synced=synced.append
        )
        target.start()
        for _ in range(300):
            if errors:
                break
            await asyncio.sleep(0.05)
        down_error = target.last_error
        # Not acknowledged while down (reported at once); the full sync will carry it.
        effective["w1"] = {"tier": "restricted"}
        held = await target.push_document([OPA_ROOT, "workloads", "ns", "w1"], {"tier": "restricted"})
        assert held is False
        opa = await asyncio.to_thread(OpaServer(workdir=tmp_path / "opa", port=port).start)
        try:
            await asyncio.wait_for(target.synced.wait(), timeout=60)
            for _ in range(100):
                data: dict[str, Any] = (await target.client.get(f"/v1/data/{OPA_ROOT}")).json()["result"]
                if "w1" in data["workloads"]["ns"]:
                    break
                await asyncio.sleep(0.05)
            after_error = target.last_error
            await target.stop()
        finally:
            opa.stop()
        return down_error, after_error, data

    down_error, after_error, data = asyncio.run(scenario())
    assert errors and set(errors) == {f"http://127.0.0.1:{port}"}
    assert down_error is not None and "Connect" in down_error
    assert after_error is None
    assert synced == [f"http://127.0.0.1:{port}"]
    assert data["workloads"]["ns"] == {"w0": {"tier": "trusted"}, "w1": {"tier": "restricted"}}
