"""Exact forms (reconciler.engine.exact): equal bytes only for values diff finds no difference
between, and planning over them is planning without them (issue #16)."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime
from typing import Any

import pytest

from reconciler.engine import diff as diffs
from reconciler.engine import plan as plans
from reconciler.engine.exact import exact_form
from reconciler.engine.types import Desired, Live, Scope
from tests.engine.helpers import desired, live


def test_values_without_exact_bytes() -> None:
    for value in ({"a": (1, 2)}, {"a": float("nan")}, {"a": float("inf")},
                  {"a": datetime.now(UTC)}, {"a": 2**64}, {1: "a"}):
        assert exact_form(value) is None, value


def test_exact_bytes_are_canonical_and_tell_types_apart() -> None:
    assert exact_form({"b": 1, "a": [True, None]}) == exact_form({"a": [True, None], "b": 1}) == b'{"a":[true,null],"b":1}'
    forms = [exact_form({"x": value}) for value in (1, 1.0, True, "1", None, [1], -0.0, 0.0)]
    assert len(set(forms)) == len(forms)


def test_a_form_and_its_copy_made_otherwise_differ_in_bytes_only_where_diff_finds_a_difference() -> None:
    rng = random.Random(5)
    atoms: list[Any] = [0, 1, 1.0, -0.0, True, False, None, "", "a", "é", [], [1, "a"], [True], {}, {"k": 1}]
    for _ in range(3000):
        a = {rng.choice("abc"): rng.choice(atoms) for _ in range(rng.randint(0, 3))}
        b = {rng.choice("abc"): rng.choice(atoms) for _ in range(rng.randint(0, 3))}
        if exact_form(a) == exact_form(b):
            assert diffs.diff(a, b) == () and diffs.diff(b, a) == (), (a, b)


def test_desired_and_live_hold_the_bytes_of_their_own_form() -> None:
    want = desired("demo-a")
    assert want.exact == exact_form(want.comparable) is not None
    have = Live(id="1" * 24, name="demo-a", comparable=dict(want.comparable))
    assert have.exact == want.exact
    assert live(want, id_="1" * 24).exact != want.exact  # the server's choices are in the live form
    edited = dict(want.comparable, enabled=not want.comparable["enabled"])
    moved = dataclasses.replace(want, comparable=edited)
    assert moved.exact == exact_form(edited) != want.exact  # worked out again, never carried over
    kept = Desired.from_exact(b'{"a":1,"b":[true]}', name="demo-a", body={"x": 1}, source="a.yaml:1")
    assert kept.exact == b'{"a":1,"b":[true]}' and kept.previous_names == () and kept.deletion_policy == "Delete"
    assert kept.comparable == {"a": 1, "b": [True]}  # read from the bytes when first used
    assert kept == Desired(name="demo-a", body={"x": 1}, comparable={"a": 1, "b": [True]}, source="a.yaml:1")
    assert dataclasses.replace(kept, comparable={"a": 2}).exact == b'{"a":2}'
    assert dataclasses.replace(kept, suspend=True).comparable == {"a": 1, "b": [True]}
    with pytest.raises(TypeError, match="body"):
        Desired.from_exact(b"{}", name="demo-a")
    with pytest.raises(AttributeError):
        kept.typo  # type: ignore[attr-defined]  # noqa: B018


def test_equal_bytes_plan_a_noop_and_a_bool_against_a_number_is_still_a_change() -> None:
    want = desired("demo-a")
    same = Live(id="1" * 24, name="demo-a", comparable=dict(want.comparable))
    plan = plans.build_plan(desired=[want], live=[same], scope=Scope(name_prefix="demo-"))
    assert [a.kind for a in plan.actions] == [plans.ActionKind.noop]
    job = dict(want.comparable["batchPredictionJob"], abortOnError=1)  # == True in Python, not in the API
    mixed = dataclasses.replace(want, comparable=dict(want.comparable, batchPredictionJob=job))
    assert mixed.comparable == {**want.comparable, "batchPredictionJob": {**job, "abortOnError": True}}
    plan = plans.build_plan(desired=[mixed], live=[same], scope=Scope(name_prefix="demo-"))
    assert [a.kind for a in plan.actions] == [plans.ActionKind.update]
    assert [c.path for c in plan.actions[0].changes] == ["batchPredictionJob.abortOnError"]


class _Tagged(dict[str, Any]):
    """A mapping subclass: a create walks into it like any mapping."""


def _walked(new: dict[str, Any]) -> tuple[diffs.Change, ...]:
    out: list[diffs.Change] = []
    diffs._walk({}, new, "", out)
    out.sort(key=lambda c: c.path)
    return tuple(out)


def test_a_create_adds_exactly_the_leaves_the_full_walk_finds() -> None:
    rng = random.Random(7)

    def value(depth: int) -> Any:
        kind = rng.randrange(7 if depth < 3 else 4)
        if kind == 0:
            return rng.choice([0, 1.5, True, None, "x", "é"])
        if kind == 1:
            return [rng.choice([1, "a"]) for _ in range(rng.randint(0, 2))]
        if kind == 2:
            return {}
        if kind == 3:
            return rng.choice([False, -1, ""])
        mapping = {rng.choice(["a", "b", "a.b", "a-b", "B", "é"]): value(depth + 1) for _ in range(rng.randint(1, 4))}
        return _Tagged(mapping) if kind == 6 else mapping

    for _ in range(2000):
        new = {rng.choice(["name", "enabled", "job", "x-y", "x.y"]): value(0) for _ in range(rng.randint(1, 5))}
        assert diffs.diff({}, new) == _walked(new), new


def _cached(want: Desired) -> Desired:
    """``want`` as the manifest cache revives it: both forms held as JSON bytes until first read."""
    import orjson

    kept = {f.name: getattr(want, f.name) for f in dataclasses.fields(Desired)
            if f.init and f.name not in ("body", "comparable")}
    assert want.exact is not None
    return Desired.from_exact(want.exact, orjson.dumps(want.body), **kept)


def _decoded(item: Desired, name: str) -> bool:
    try:
        object.__getattribute__(item, name)  # the slot itself, without __getattr__'s decoding
    except AttributeError:
        return False
    return True


def test_a_body_held_as_json_is_read_when_first_used_and_equals_the_original() -> None:
    want = desired("demo-a")
    kept = _cached(want)
    assert not _decoded(kept, "body") and not _decoded(kept, "comparable")
    assert kept == want and kept.body == want.body and _decoded(kept, "body")
    assert dataclasses.replace(kept, suspend=True).body == want.body
    with pytest.raises(TypeError, match="body"):
        Desired.from_exact(b"{}", name="demo-a")
    with pytest.raises(TypeError, match="typo"):
        Desired.from_exact(b"{}", b"{}", name="demo-a", typo=1)  # Python's own argument check


def test_references_are_looked_for_without_decoding_a_body_that_names_none() -> None:
    """kinds_wanted over cached manifests decoded every body (2 s at 100,000); a body's JSON text that
    names no reference key cannot hold one. The answers are the decoded bodies' answers."""
    from reconciler.contract.refs import ref_fields
    from reconciler.engine.refs import kinds_wanted

    plain = desired("demo-a")
    job = dict(plain.body)
    with_ref = dataclasses.replace(plain, body={**job, "intakeSettings": {
        **job["intakeSettings"], "credentialRef": {"name": "cred"}}})
    in_value = dataclasses.replace(plain, body={**job, "intakeSettings": {
        **job["intakeSettings"], "url": 's3://b/"credentialRef":.csv'}})  # escaped in a value: no match
    mentions = dataclasses.replace(plain, body={**job, 'x"credentialRef': 1})  # a key that ends so: a "maybe"
    deep = dataclasses.replace(plain, body={**job, "deploymentRef": {"name": "dep"}})
    keys = tuple(f.ref for declared in ref_fields().values() for f in declared)
    for want in (plain, with_ref, in_value, mentions, deep):
        kept = _cached(want)
        assert kinds_wanted([kept]) == kinds_wanted([want])
        assert _decoded(kept, "body") == kept.may_hold(keys)  # decoded only when its text names a key
    assert not _cached(plain).may_hold(keys) and not _cached(in_value).may_hold(keys)
    assert _cached(mentions).may_hold(keys) and kinds_wanted([_cached(mentions)]) == set()  # a "maybe" costs a look
    assert kinds_wanted([_cached(with_ref)]) == {"credential"} and kinds_wanted([_cached(deep)]) == {"deployment"}
    assert plain.may_hold(keys)  # a body held as a mapping: always looked at
