"""The fast paths of planning give exactly what the plain paths give (issue #16: 100,000 definitions).

Equal pairs are settled in C (``==`` and canonical JSON) before the walk, a create walks one side
only, the collector is paused while planning and loading, fill_defaults keeps its per-schema work:
each is checked here against the slow path it replaced, on the cases where they could differ.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import hashlib
import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest

from reconciler.api.client import Client, _decoded_page, _maybe_long_number
from reconciler.api.live import fetch_live
from reconciler.contract import defaults
from reconciler.contract.export import writable_job
from reconciler.contract.schemas import get
from reconciler.engine import diff as diffs
from reconciler.engine.normalize import live_from_api, object_hash
from reconciler.engine.plan import build_plan
from reconciler.engine.types import Scope
from reconciler.service.testing import LocalServer

from .helpers import CREDENTIAL, DATASTORE, DEPLOYMENT, desired, live, manifest_data


def _walked(old: dict[str, Any], new: dict[str, Any]) -> tuple[diffs.Change, ...]:
    """The diff by the plain walk alone (what diff did before its fast paths)."""
    out: list[diffs.Change] = []
    diffs._walk(old, new, "", out)
    out.sort(key=lambda c: c.path)
    return tuple(out)


@pytest.mark.parametrize(("old", "new"), [
    ({"a": True}, {"a": 1}),  # == forgives it; the diff does not
    ({"a": {"b": [0]}}, {"a": {"b": [False]}}),
    ({"a": 1}, {"a": 1.0}),  # canonical JSON differs, the walk finds no change
    ({"a": [1]}, {"a": (1,)}),  # a tuple is not a list
    ({"a": 2**70}, {"a": 2**70}),  # orjson refuses it: the walk decides
    ({1: "x"}, {1: "x"}),  # a key that is not a string: the walk decides
    ({"a": {"b": 1}}, {"a": {"b": 1}}),
    ({}, {"a-b": 1, "a": {"x": 1, "y": {}}, "b": None}),  # a create: paths sort "a-b" before "a.x"
    ({}, {}),
])
def test_diff_is_the_walk(old: dict[str, Any], new: dict[str, Any]) -> None:
    assert diffs.diff(old, new) == _walked(old, new)
    assert diffs.diff(new, old) == _walked(new, old)


def test_a_change_is_a_named_tuple_with_its_fields() -> None:
    change = diffs.diff({}, {"a": {"b": 1}})[0]
    assert (change.path, change.op, change.old, change.new) == ("a.b", diffs.Op.add, None, 1)
    assert tuple(change) == ("a.b", "add", None, 1) and isinstance(change, diffs.Change)


@pytest.fixture
def eager_collector() -> Iterator[list[str]]:
    """The collector on with a tiny threshold, each of its passes recorded."""
    passes: list[str] = []

    def record(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            passes.append(str(info["generation"]))

    threshold, enabled = gc.get_threshold(), gc.isenabled()
    gc.enable()
    gc.set_threshold(10, 1, 1)
    gc.callbacks.append(record)
    try:
        yield passes
    finally:
        gc.callbacks.remove(record)
        gc.set_threshold(*threshold)
        if not enabled:
            gc.disable()


def test_planning_runs_no_collector_pass_and_turns_it_back_on(eager_collector: list[str]) -> None:
    wanted = [desired(f"demo-{i}") for i in range(40)]
    have = [live(d, id_=f"{i:024x}") for i, d in enumerate(wanted[:20])]
    eager_collector.clear()
    plan = build_plan(desired=wanted, live=have, scope=Scope(name_prefix="demo-"))
    passes = list(eager_collector)
    assert plan.summary.create == 20 and plan.summary.noop == 20
    assert len(passes) <= 1  # the one when it is turned back on (with it on all along: hundreds)
    assert gc.isenabled()
    gc.disable()  # paused inside, it stays as the caller left it
    build_plan(desired=wanted, live=have, scope=Scope(name_prefix="demo-"))
    assert not gc.isenabled()


def test_listing_gives_what_the_pages_give() -> None:
    with LocalServer(separate_process=True) as server:
        async def scenario() -> tuple[list[Any], list[dict[str, Any]]]:
            async with Client(endpoint=server.api_url, page_size=7, check_scheme=False) as client:
                for path, body in (("deployments/", {"id": DEPLOYMENT, "label": "dep"}),
                                   ("credentials/", {"id": CREDENTIAL, "name": "cred"}),
                                   ("externalDataStores/", {"id": DATASTORE, "canonicalName": "store"})):
                    await client.request("POST", client.url(path), json=body)
                for i in range(30):
                    await client.create_definition(dict(desired(f"demo-{i:02d}").body))
                raw = await client.list_definitions()
                return await fetch_live(client), raw

        listed, raw = asyncio.run(scenario())
    assert listed == [live_from_api(item) for item in raw] and len(listed) == 30


def test_a_page_orjson_refuses_is_decoded_as_response_json_does() -> None:
    for content in (b'{"data": [{"n": NaN}], "next": null}', b'{"data": [{"n": 123456789012345678901234}]}',
                    b'{"data": [{"userId": "000000000000000000000000", "n": [1, -12345678901234567890]}]}',
                    b'12345678901234567890123',
                    '{"data": ["é"]}'.encode("utf-16")):
        response = httpx.Response(200, content=content, headers={"content-type": "application/json"})
        assert repr(_decoded_page(response)) == repr((response.json(), False))
    plain = httpx.Response(200, content=b'{"data": [{"a": 1.5, "b": "\\u00e9"}], "next": "x"}')
    assert _decoded_page(plain) == (plain.json(), True)


def test_the_long_number_check_is_the_one_pattern_it_replaced() -> None:
    """The two-part search answers as rb"(?:^|[:\\[,])\\s*-?[0-9]{19}" does, on texts built to sit at
    its edges (the start, signs, spaces, runs of 18, 19 and 24 digits inside and outside strings)."""
    whole = re.compile(rb"(?:^|[:\[,])\s*-?[0-9]{19}")
    parts = [b":", b"[", b",", b" ", b"\n\t", b"-", b"\"", b"a", b"0" * 18, b"1" * 19, b"7" * 24, b"{", b"- ",
             b"\r", b"\x0b", b"\x0c", b"\xb2", b"9"]
    rng = random.Random(16)
    for _ in range(20_000):
        text = b"".join(rng.choice(parts) for _ in range(rng.randint(0, 6)))
        assert _maybe_long_number(text) == bool(whole.search(text)), text


def test_the_hash_of_a_live_object_is_the_json_dumps_one() -> None:
    comparable = {"b": [1, "é"], "a": {"z": True, "y": None}, "when": object}
    text = json.dumps(["id-1", comparable], sort_keys=True, separators=(",", ":"), default=str)
    assert object_hash("id-1", comparable) == hashlib.sha256(text.encode()).hexdigest()[:16]


def test_writable_job_copies_every_container() -> None:
    job = {"intakeSettings": {"type": "s3", "columns": [["a"]]}, "extra": {1, 2}, "numConcurrent": 2}
    out = writable_job(job)
    out["intakeSettings"]["columns"][0].append("b")
    out["extra"].add(3)
    assert job == {"intakeSettings": {"type": "s3", "columns": [["a"]]}, "extra": {1, 2}, "numConcurrent": 2}


def _fresh_fill(job: dict[str, Any]) -> Any:
    for table in (defaults._PLANS, defaults._CONDITIONS, defaults._ITEMS, defaults._ALL_OF):
        table.clear()
    return defaults.fill_defaults(job, get("job-spec"))


def test_fill_defaults_answers_the_discriminators_without_a_validator() -> None:
    defaults._IF_CHECKS.clear()
    filled = _fresh_fill({"deploymentId": DEPLOYMENT, "intakeSettings": {"type": "jdbc", "dataStoreId": DATASTORE,
                                                                        "table": "t"},
                          "outputSettings": {"type": "jdbc", "dataStoreId": DATASTORE, "table": "s",
                                             "statementType": "update", "updateColumns": ["a"]}})
    assert filled["outputSettings"]["statementType"] == "update" and "csvSettings" in filled
    # a whole manifest too: definition-spec's `if` is a boolean const (enabled: true needs a schedule)
    manifest = defaults.fill_defaults(manifest_data("demo-a", enabled=True, schedule={"cron": "0 1 * * *"}),
                                      get("manifest"))
    assert manifest["spec"]["batchPredictionJob"]["chunkSize"] == "auto"
    checks = [check for _, check in defaults._IF_CHECKS.values()]
    assert checks and all(isinstance(c, functools.partial) and c.func is defaults._holds for c in checks)


@pytest.mark.parametrize("rule", [{"const": True}, {"const": False}, {"const": "s3"}, {"enum": ["s3", True]}, None])
def test_a_discriminator_answers_as_json_schema_does(rule: dict[str, Any] | None) -> None:
    """A discriminator is taken for a validator: it must agree with one on every kind of value,
    1 and True included (equal in Python, not in JSON Schema). None: a bare ``required``."""
    schema: dict[str, Any] = {"properties": {"k": rule}, "required": ["k"]} if rule is not None else {"required": ["k"]}
    validator = jsonschema_rs.validator_for(schema)
    for instance in ({"k": True}, {"k": False}, {"k": 1}, {"k": 0}, {"k": 1.0}, {"k": "s3"}, {"k": "true"},
                     {"k": None}, {"k": [True]}, {"k": {"k": True}}, {}, {"other": True}, [], "s3", True, 1):
        assert defaults._matches(schema, instance) is validator.is_valid(instance), (rule, instance)
    assert defaults._discriminator(schema) is not None


def test_what_applies_is_told_apart_by_presence_and_by_value() -> None:
    """The memo key of what applies at a node (:func:`defaults._outcomes`) separates a key that is
    absent from one holding another value (a bare ``required`` tells them apart), and True from 1."""
    schedule = get("manifest-schedule")
    absent, null, five, text, other = (defaults._outcomes(schedule, instance) for instance in
                                       ({}, {"cron": None}, {"cron": 5}, {"cron": "x"}, {"cron": "0 1 * * *"}))
    # the schedule's `if` only requires cron: present or not is all that counts (not its text, which
    # would make one memo entry per cron expression)
    assert absent != null and null == five == text == other
    spec = get("definition-spec")
    assert defaults._outcomes(spec, {"enabled": True}) != defaults._outcomes(spec, {"enabled": 1})


def test_fill_defaults_keeps_nothing_of_one_definition_for_another() -> None:
    jobs = [{"deploymentId": DEPLOYMENT, "intakeSettings": {"type": kind, "url": "s3://b/x.csv"} if kind != "jdbc"
             else {"type": "jdbc", "dataStoreId": DATASTORE, "table": "t"}, "outputSettings": {"type": out}}
            for kind in ("s3", "jdbc", "localFile", "s3", "nonsense") for out in ("localFile", "s3", "azure")]
    expected = [_fresh_fill(job) for job in jobs]
    assert [defaults.fill_defaults(job, get("job-spec")) for job in jobs] == expected
    assert [defaults.fill_defaults(job, get("job-spec")) for job in reversed(jobs)] == expected[::-1]


def test_fill_defaults_memo_is_bounded() -> None:
    for i in range(defaults._MEMO_LIMIT + 50):
        defaults.fill_defaults({"intakeSettings": {"type": f"kind-{i}"}}, get("job-spec"))
    assert len(defaults._PLANS) <= defaults._MEMO_LIMIT


def _thirty_manifests(tmp_path: Path) -> Path:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "a.yaml").write_text("".join(f"---\n{json.dumps(manifest_data(f'demo-{i}'))}\n" for i in range(30)))
    return specs


def test_loaded_manifests_are_out_of_the_collectors_reach(tmp_path: Path, eager_collector: list[str]) -> None:
    from reconciler.session import InvalidManifests, Options, Session

    specs = _thirty_manifests(tmp_path)
    session = Session.open(Options(paths=(specs,), no_cache=True, environ={}))
    gc.unfreeze()
    eager_collector.clear()
    manifests = session.load()
    passes = len(eager_collector)
    assert len(manifests.desired) == 30 and gc.isenabled()
    assert passes <= 1  # the one when it is turned back on (with it on: dozens)
    frozen = gc.get_freeze_count()
    assert frozen > 0  # the manifests, and what else lived then: no pass walks them again
    gc.unfreeze()
    (specs / "b.yaml").write_text(json.dumps({**manifest_data("demo-x"), "spec": {}}))
    with pytest.raises(InvalidManifests):
        Session.open(Options(paths=(specs,), no_cache=True, environ={})).load()
    assert gc.get_freeze_count() == 0 and gc.isenabled()  # a failed load freezes nothing


def test_a_load_that_repeats_freezes_nothing(tmp_path: Path, eager_collector: list[str]) -> None:
    """watch loads for hours: ``settle=False`` pauses the collector while loading but freezes
    nothing, so a cycle that dies later is still collected."""
    from reconciler.session import Options, Session

    specs = _thirty_manifests(tmp_path)
    session = Session.open(Options(paths=(specs,), no_cache=True, environ={}))
    gc.unfreeze()
    eager_collector.clear()
    assert len(session.load(settle=False).desired) == 30
    assert gc.get_freeze_count() == 0 and gc.isenabled()
    assert len(eager_collector) <= 1  # paused while loading all the same
