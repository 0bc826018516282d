"""The live state listed in a forked worker (reconciler.api.forked) is the listing, and planning over
its packed forms is planning over the full ones (issue #16: listing off the critical path)."""

from __future__ import annotations

import asyncio
import math
import os
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler import errors
from reconciler.api.client import Client
from reconciler.api.forked import ForkedListing, PackedLive, pack, unpack
from reconciler.api.live import fetch_live
from reconciler.engine import plan as plans
from reconciler.engine.types import Live, Scope
from reconciler.service.testing import LocalServer
from reconciler.session import Options, Session
from tests.engine.helpers import CREDENTIAL, DATASTORE, DEPLOYMENT, desired, live, manifest_data


def _packed(item: Live) -> PackedLive:
    return PackedLive(id=item.id, name=item.name, hash=item.hash, packed=pack(dict(item.comparable)))


def _types(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [type(value), *[_types(v) for v in value]]
    return type(value)


def test_pack_gives_back_the_same_value_with_the_same_types() -> None:
    for value in ({"a": True, "b": 1, "c": 1.0, "d": [1, "é", None, {"e": []}]}, {"big": 2**70, "neg": -(2**65)},
                  {"t": (1, 2)}, {"bool-list": [True, 1, 1.0]}, {"1e16": 1e16, "s": "\x7f\u00e9\n"}, {}):
        back = unpack(pack(value))
        assert back == value and repr(back) == repr(value) and _types(back) == _types(value)
    nan = unpack(pack({"x": float("nan")}))["x"]
    assert isinstance(nan, float) and math.isnan(nan)  # orjson would have written null


@pytest.mark.parametrize("case", ["no-change", "update", "rename", "ignored", "write-only", "prune", "create"])
def test_planning_over_packed_live_is_planning_over_live(case: str) -> None:
    base = desired("demo-a")
    want = base
    have = live(base, id_="1" * 24)
    others = [live(desired("demo-z"), id_="2" * 24)]
    if case == "update":
        want = desired("demo-a", job={"deploymentId": DEPLOYMENT, "numConcurrent": 2,
                                      "intakeSettings": {"type": "s3", "url": "s3://b/new.csv", "credentialId": CREDENTIAL},
                                      "outputSettings": {"type": "jdbc", "dataStoreId": DATASTORE, "table": "t",
                                                         "statementType": "insert"}})
    elif case == "rename":
        want = desired("demo-b", previousNames=["demo-a"])
    elif case == "ignored":
        want = desired("demo-a", ignoreChanges=["batchPredictionJob.intakeSettings.url"])
        moved = manifest_data("demo-a")["spec"]["batchPredictionJob"]
        moved["intakeSettings"]["url"] = "s3://elsewhere/x.csv"
        have = live(desired("demo-a", job=moved), id_="1" * 24)
    elif case == "write-only":
        job = {"deploymentId": DEPLOYMENT, "intakeSettings": {"type": "s3", "url": "s3://b/x.csv",
                                                              "credentialId": CREDENTIAL},
               "outputSettings": {"type": "localFile"},
               "predictionInstance": {"hostName": "h.example.com", "apiKeyFrom": {"env": "K"}}}
        want = desired("demo-a", job=job)
        have = live(want, id_="1" * 24)
    elif case == "create":
        have = others[0]
    full = [have, *others]
    kwargs: dict[str, Any] = {"scope": Scope(name_prefix="demo-"), "prune": case == "prune", "force": True}
    if case == "prune":
        want = desired("demo-c")
    expected = plans.to_dict(plans.build_plan(desired=[want], live=full, **kwargs))
    got = plans.to_dict(plans.build_plan(desired=[want], live=[_packed(x) for x in full], **kwargs))
    assert got == expected
    assert expected["summary"]["text"]  # the cases do plan something different each
    if case in ("update", "rename", "ignored", "prune", "create"):
        assert expected["has_changes"] or expected["summary"]["ignored"]


def _seeded(server: LocalServer, count: int) -> None:
    async def seed() -> None:
        async with Client(endpoint=server.api_url, page_size=7, check_scheme=False) as client:
            for path, body in (("deployments/", {"id": DEPLOYMENT, "label": "dep"}),
                               ("credentials/", {"id": CREDENTIAL, "name": "cred"}),
                               ("externalDataStores/", {"id": DATASTORE, "canonicalName": "store"})):
                await client.request("POST", client.url(path), json=body)
            for i in range(count):
                await client.create_definition(dict(desired(f"demo-{i:02d}").body))

    asyncio.run(seed())


@pytest.mark.fresh_process
def test_the_forked_listing_is_the_listing_and_the_plan_is_the_same(tmp_path: Path) -> None:
    assert threading.active_count() == 1  # else the listing is not forked and this proves nothing
    with LocalServer(separate_process=True) as server:
        _seeded(server, 30)
        listing = ForkedListing.start(lambda: Client(endpoint=server.api_url, page_size=7, check_scheme=False))
        assert listing is not None and listing.pid != os.getpid()
        forked = listing.take()

        async def listed() -> list[Live]:
            async with Client(endpoint=server.api_url, page_size=7, check_scheme=False) as client:
                return await fetch_live(client)

        plain = asyncio.run(listed())
        assert forked is not None and all(isinstance(x, PackedLive) for x in forked)
        assert [x.unpacked() for x in forked if isinstance(x, PackedLive)] == plain and len(plain) == 30

        # the command's road: a session listing ahead and one not, the same plan (one manifest edited)
        specs = tmp_path / "specs"
        specs.mkdir()
        (specs / "reconciler.yaml").write_text("apiVersion: reconciler.io/v1alpha1\nkind: Project\n"
                                              "scope: {namePrefix: demo-}\n")
        docs = [manifest_data(f"demo-{i:02d}") for i in range(29)]
        docs[3]["spec"]["batchPredictionJob"]["intakeSettings"]["url"] = "s3://bucket/edited.csv"
        (specs / "all.yaml").write_text(yaml.safe_dump_all(docs))
        session = Session.open(Options(paths=(specs,), endpoint=server.api_url, allow_http=True, no_cache=True,
                                       environ={"DATAROBOT_API_TOKEN": "unused"}))

        def planned(ahead: bool) -> dict[str, Any]:
            listing = session.list_ahead() if ahead else None
            assert (listing is not None) == ahead
            manifests = session.load()

            async def work() -> plans.Plan:
                async with session.client() as client:
                    return await session.plan(client, manifests, prune=True, force=True, listed=listing)

            data = plans.to_dict(asyncio.run(work()))
            assert listing is None or listing.take() is None  # taken once
            return data

        ahead = planned(True)
        assert ahead == planned(False)
        assert ahead["summary"]["update"] == 1 and ahead["summary"]["delete"] == 1


@pytest.mark.fresh_process
def test_a_failed_worker_leaves_the_listing_and_its_error_to_the_parent(tmp_path: Path) -> None:
    with LocalServer(separate_process=True, token="right") as server:
        session = Session.open(Options(paths=(tmp_path,), endpoint=server.api_url, allow_http=True, no_cache=True,
                                       environ={"DATAROBOT_API_TOKEN": "wrong"}), check_paths=False)
        listing = session.list_ahead()
        assert listing is not None
        assert listing.take() is None  # the worker was refused (401): nothing taken

        async def work(listed: ForkedListing | None) -> None:
            async with session.client() as client:
                await session.plan(client, session.load(), listed=listed)

        (tmp_path / "a.yaml").write_text(yaml.safe_dump(manifest_data("demo-a")))
        with pytest.raises(errors.ReconcilerError) as forked:
            asyncio.run(work(session.list_ahead()))
        with pytest.raises(errors.ReconcilerError) as plain:
            asyncio.run(work(None))
        assert type(forked.value) is type(plain.value) and str(forked.value) == str(plain.value)


@pytest.mark.fresh_process
def test_an_answer_not_taken_ends_the_worker() -> None:
    with LocalServer(separate_process=True) as server:
        listing = ForkedListing.start(lambda: Client(endpoint=server.api_url, check_scheme=False))
        assert listing is not None
        listing.close()
        with pytest.raises(ChildProcessError):
            os.waitpid(listing.pid, os.WNOHANG)  # reaped: no such child any more
        assert listing.take() is None
