"""The memo of listed rows (reconciler.api.live_memo, issue #16): a warm listing takes each unchanged
definition's row from it, and the rows are always the ones normalizing gives, whatever the memo holds."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.api.client import Client, ListedPage
from reconciler.api.errors import APIError
from reconciler.api.forked import PackedLive, _listed, _row
from reconciler.api.live_memo import LiveMemo, Row, item_key
from reconciler.engine.exact import exact_form
from reconciler.engine.normalize import live_from_api
from reconciler.service.testing import LocalServer
from tests.engine.helpers import CREDENTIAL, DATASTORE, DEPLOYMENT, desired, manifest_data


def _seed(server: LocalServer, count: int) -> list[str]:
    async def seed() -> list[str]:
        async with Client(endpoint=server.api_url, check_scheme=False) as client:
            for path, body in (("deployments/", {"id": DEPLOYMENT, "label": "dep"}),
                               ("credentials/", {"id": CREDENTIAL, "name": "cred"}),
                               ("externalDataStores/", {"id": DATASTORE, "canonicalName": "store"})):
                await client.request("POST", client.url(path), json=body)
            return [str((await client.create_definition(dict(desired(f"demo-{i:02d}").body)))["id"])
                    for i in range(count)]

    return asyncio.run(seed())


def _rows(server: LocalServer, memo: LiveMemo | None) -> list[Row]:
    async def listing() -> list[Row]:
        async with Client(endpoint=server.api_url, page_size=7, check_scheme=False) as client:
            return await _listed(client, os.getppid(), memo)

    return asyncio.run(listing())


def test_a_warm_listing_takes_every_row_from_the_memo_and_a_changed_one_is_made_again(tmp_path: Path) -> None:
    with LocalServer(separate_process=True) as server:
        ids = _seed(server, 20)
        plain = _rows(server, None)
        first = LiveMemo(tmp_path, server.api_url)
        assert _rows(server, first) == plain and first.hits == 0
        first.save()

        warm = LiveMemo(tmp_path, server.api_url)
        assert _rows(server, warm) == plain and warm.hits == 20  # every row from the memo, the same rows
        assert warm.pages_recalled == 3  # 7 + 7 + 6: every page known by its bytes, none decoded

        async def edit() -> None:
            async with Client(endpoint=server.api_url, check_scheme=False) as client:
                await client.update_definition(ids[4], {"numConcurrent": 3})
                await client.delete_definition(ids[9])

        asyncio.run(edit())
        now = _rows(server, None)
        assert now != plain and len(now) == 19
        after = LiveMemo(tmp_path, server.api_url)
        assert _rows(server, after) == now and after.hits == 18  # the edited one normalized again
        assert after.pages_recalled == 0  # every page changed (an edit in the first, a row moved up in the rest)
        after.save()
        again = LiveMemo(tmp_path, server.api_url)
        assert _rows(server, again) == now and again.hits == 19 and again.pages_recalled == 3
        again.save()  # nothing changed: not written again
        assert again._cache.written == 0


def test_a_damaged_or_foreign_memo_is_an_empty_one(tmp_path: Path) -> None:
    with LocalServer(separate_process=True) as server:
        _seed(server, 5)
        plain = _rows(server, None)
        memo = LiveMemo(tmp_path, server.api_url)
        _rows(server, memo)
        memo.save()
        [entry] = [p for p in tmp_path.rglob("*") if p.is_file()]
        data = bytearray(entry.read_bytes())
        data[-10] ^= 0x20  # one flipped bit: the checksum no longer matches
        entry.write_bytes(bytes(data))
        damaged = LiveMemo(tmp_path, server.api_url)
        assert _rows(server, damaged) == plain and damaged.hits == 0

        foreign = LiveMemo(tmp_path, server.api_url)
        foreign._cache.put(foreign._key, {"rows": [["k", 1]]})  # a checksummed entry of another shape
        foreign._cache.flush()
        assert _rows(server, LiveMemo(tmp_path, server.api_url)) == plain

        whole = LiveMemo(tmp_path, server.api_url)
        _rows(server, whole)
        whole.save()
        kept = whole._cache.get(whole._key)
        assert kept is not None and len(kept["pages"]) == 1
        for bad in ([kept["pages"][0][0], None, 0, 6], [kept["pages"][0][0], None, -1, 2],
                    [kept["pages"][0][0], 7, 0, 5], [kept["pages"][0][0], None, 0, 5.0]):
            whole._cache.put(whole._key, {"rows": kept["rows"], "pages": [bad]})  # a range past the rows, ...
            whole._cache.flush()
            odd = LiveMemo(tmp_path, server.api_url)
            assert _rows(server, odd) == plain and odd.hits == 0 and odd.pages_recalled == 0


def test_a_known_page_follows_its_remembered_link_and_that_link_is_checked_as_any(tmp_path: Path) -> None:
    with LocalServer(separate_process=True) as server:
        _seed(server, 5)

        async def pages(known: dict[str, str | None]) -> list[ListedPage]:
            async with Client(endpoint=server.api_url, page_size=2, check_scheme=False) as client:
                return [page async for page in client.iter_pages(known=known)]

        first = asyncio.run(pages({}))
        assert [len(p) for p in first] == [2, 2, 1] and all(p.digest and not p.known for p in first)
        assert [p.link is None for p in first] == [False, False, True]
        same = asyncio.run(pages({first[1].digest: first[1].link}))  # type: ignore[dict-item]
        assert [(len(p), p.known) for p in same] == [(2, False), (0, True), (1, False)]
        assert [p.digest for p in same] == [p.digest for p in first]
        elsewhere = {first[0].digest: "http://203.0.113.9/api/v2/batchPredictionJobDefinitions/?offset=2"}
        with pytest.raises(APIError, match="refusing to follow a next link to another origin"):
            asyncio.run(pages(elsewhere))  # type: ignore[arg-type]


def test_items_of_a_page_orjson_did_not_decode_are_never_kept(tmp_path: Path) -> None:
    made: list[dict[str, Any]] = []

    def make(item: dict[str, Any]) -> Row:
        made.append(item)
        return ("1" * 24, "demo-a", "h", b"{}", True)

    memo = LiveMemo(tmp_path, "http://x/")
    item = {"id": "1" * 24, "name": "demo-a"}
    memo.row(item, make, strict=False)
    memo.row(item, make, strict=False)
    assert len(made) == 2 and memo.hits == 0
    memo.save()
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # nothing kept: nothing written

    memo.row(item, make, strict=True)  # the same item from a strict page: kept
    memo.save()
    warm = LiveMemo(tmp_path, "http://x/")
    count = len(made)
    assert warm.row(item, make, strict=True) == make(item) and warm.hits == 1 and len(made) == count + 1


def test_keys_tell_apart_values_json_equality_confuses() -> None:
    keys = {item_key({"a": value}) for value in (1, 1.0, True, None, "1", [1], {"1": 1}, -0.0, 0.0)}
    assert len(keys) == 9
    assert item_key({"a": 1, "b": 2}) != item_key({"b": 2, "a": 1})  # order too: only ever a miss
    assert item_key({"a": 2**70}) is None  # orjson refuses it: never kept


def test_pages_say_whether_orjson_decoded_them() -> None:
    page = ListedPage([{"a": 1}], strict=True)
    assert page == [{"a": 1}] and page.strict


def test_a_repeated_plan_uses_the_memo_and_still_sees_a_live_edit(tmp_path: Path) -> None:
    """The command's road (a forked worker, run in a process of its own so it forks): plan twice with a
    cache directory (the second lists from the memo), then edit a definition behind the tool's back:
    the next plan shows the edit."""
    with LocalServer(separate_process=True) as server:
        ids = _seed(server, 6)
        specs = tmp_path / "specs"
        specs.mkdir()
        (specs / "reconciler.yaml").write_text("apiVersion: reconciler.io/v1alpha1\nkind: Project\n"
                                              "scope: {namePrefix: demo-}\n")
        (specs / "all.yaml").write_text(yaml.safe_dump_all([manifest_data(f"demo-{i:02d}") for i in range(6)]))
        env = {**os.environ, "DATAROBOT_ENDPOINT": server.api_url, "DATAROBOT_API_TOKEN": "unused", "NO_COLOR": "1",
               "PYTHONPATH": str(Path(__file__).resolve().parents[2])}

        def plan() -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "reconciler", "plan", "specs", "--allow-http",
                                   "--detailed-exitcode", "--cache-dir", str(tmp_path / "cache")],
                                  cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)

        first, second = plan(), plan()
        assert first.returncode == second.returncode == 0, first.stdout + first.stderr
        assert first.stdout == second.stdout and "No changes" in second.stdout
        memo = LiveMemo(tmp_path / "cache", server.api_url)
        assert len(memo._rows) == 6  # the worker kept the rows (after answering, before exiting)

        async def edit() -> None:
            async with Client(endpoint=server.api_url, check_scheme=False) as client:
                await client.update_definition(ids[2], {"intakeSettings": {
                    "type": "s3", "url": "s3://bucket/edited-live.csv", "credentialId": CREDENTIAL}})

        asyncio.run(edit())
        third = plan()
        assert third.returncode == 2, third.stdout + third.stderr
        assert "demo-02" in third.stdout and "1 to update" in third.stdout


def test_the_row_of_an_item_is_what_normalizing_gives() -> None:
    item = {"id": "1" * 24, "name": "demo-a", "enabled": False,
            "batchPredictionJob": dict(desired("demo-a").body) | {"name": None}}
    item["batchPredictionJob"].pop("name", None)
    row = _row(item)
    assert row[:2] == ("1" * 24, "demo-a") and row[4] and row[3] == exact_form(live_from_api(item).comparable)
    packed = PackedLive.of_row(row)
    assert packed.exact is row[3] and packed.packed is None and packed.comparable == live_from_api(item).comparable
    odd = _row({**item, "batchPredictionJob": {**item["batchPredictionJob"], "maxExplanations": 2**70}})
    assert not odd[4] and PackedLive.of_row(odd).exact is None  # no exact bytes: pickled, compared by walking
    assert PackedLive.of_row(odd).comparable["batchPredictionJob"]["maxExplanations"] == 2**70
