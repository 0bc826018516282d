"""diff and pair are pure and deterministic."""

from __future__ import annotations

import dataclasses

from reconciler.engine.diff import Op, diff, same
from reconciler.engine.pair import MatchBy, pair

from .helpers import desired, live


def test_diff_paths_ops_and_order() -> None:
    old = {"a": 1, "b": {"x": True, "y": [1, 2]}, "gone": "v"}
    new = {"a": 1.0, "b": {"x": 1, "y": [2, 1], "z": {"k": "v"}}, "c": None}
    assert [dataclasses.astuple(c) for c in diff(old, new)] == [
        ("b.x", "change", True, 1),
        ("b.y", "change", [1, 2], [2, 1]),
        ("b.z.k", "add", None, "v"),
        ("c", "add", None, None),
        ("gone", "remove", "v", None),
    ]
    assert diff(new, new) == ()
    assert same(1, 1.0) and not same(True, 1) and not same(0, False)
    assert Op.add == "add"


def test_pair_by_name_then_previous_names_and_leftovers() -> None:
    a, b = desired("demo-a"), desired("demo-b", previousNames=["demo-old-b"])
    c = desired("demo-c")
    la, lold, lx = live(a, id_="1" * 24), live(b, id_="2" * 24, name="demo-old-b"), live(a, id_="3" * 24, name="x")
    pairs = pair(desired=[c, b, a], live=[lx, lold, la])
    assert [(p.name, p.desired.name if p.desired else None, p.live.id if p.live else None, p.by) for p in pairs] == [
        ("demo-a", "demo-a", "1" * 24, MatchBy.name),
        ("demo-b", "demo-b", "2" * 24, MatchBy.previous_name),
        ("demo-c", "demo-c", None, MatchBy.none),
        ("x", None, "3" * 24, MatchBy.none),
    ]


def test_pair_prefers_the_current_name_over_a_previous_one() -> None:
    b = desired("demo-b", previousNames=["demo-old"])
    now, old = live(b, id_="1" * 24), live(b, id_="2" * 24, name="demo-old")
    pairs = pair(desired=[b], live=[old, now])
    assert [(p.name, p.live.id if p.live else None, p.by) for p in pairs] == [
        ("demo-b", "1" * 24, MatchBy.name), ("demo-old", "2" * 24, MatchBy.none)]


def test_a_recorded_identity_pairs_before_any_name() -> None:
    """The operator's recorded id is its identity: that definition is the match even when someone
    renamed it, and one with the desired name but another id is left alone."""
    from reconciler.engine.plan import ActionKind, build_plan

    a = desired("demo-a")
    renamed, other = live(a, id_="1" * 24, name="someone-renamed-it"), live(a, id_="2" * 24)
    pairs = pair(desired=[a], live=[other, renamed], identities={"demo-a": "1" * 24})
    assert [(p.name, p.live.id if p.live else None, p.by) for p in pairs] == [
        ("demo-a", "1" * 24, MatchBy.id), ("demo-a", "2" * 24, MatchBy.none)]
    plan = build_plan(desired=[a], live=[renamed], scope=None, identities={"demo-a": "1" * 24})
    (action,) = plan.actions
    assert action.kind is ActionKind.update and action.id == "1" * 24
    assert [c.path for c in action.changes] == ["name"]  # the rename behind its back is drift
