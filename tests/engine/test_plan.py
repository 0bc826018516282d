"""Plan decisions and guards, as values."""

from __future__ import annotations

import dataclasses
import json

import pytest

from reconciler.engine import plan as plans
from reconciler.engine.plan import ActionKind, build_plan
from reconciler.engine.types import Scope

from .helpers import desired, live

SCOPE = Scope(name_prefix="demo-")


def _kinds(plan: plans.Plan) -> list[tuple[str, str]]:
    return [(a.kind.value, a.name) for a in plan.actions]


def test_create_update_noop_and_order() -> None:
    a, b, c = desired("demo-a"), desired("demo-b"), desired("demo-c")
    lb = live(b, id_="b" * 24)
    lb.comparable["batchPredictionJob"]["intakeSettings"]["url"] = "s3://old.csv"
    p = build_plan(desired=[c, b, a], live=[live(a, id_="a" * 24), lb], scope=SCOPE)
    assert _kinds(p) == [("update", "demo-b"), ("create", "demo-c"), ("noop", "demo-a")]
    assert p.summary.text == "Plan: 1 to create, 1 to update, 0 to delete."
    (change,) = p.actions[0].changes
    assert dataclasses.astuple(change) == ("batchPredictionJob.intakeSettings.url", "change", "s3://old.csv", "s3://bucket/demo-b.csv")
    assert p.actions[0].id == "b" * 24 and p.actions[0].body is not None
    assert p.applyable and p.has_changes


def test_no_changes_summary() -> None:
    a = desired("demo-a")
    p = build_plan(desired=[a], live=[live(a, id_="a" * 24)], scope=SCOPE)
    assert p.summary.text == "No changes. Live definitions match the manifests."
    assert not p.has_changes and p.writes == ()


def test_prune_off_lists_orphans_and_never_deletes() -> None:
    a = desired("demo-a")
    gone = live(desired("demo-gone"), id_="1" * 24)
    other = live(desired("other"), id_="2" * 24)
    p = build_plan(desired=[a], live=[live(a, id_="a" * 24), gone, other], scope=SCOPE)
    assert p.of_kind(ActionKind.delete) == ()
    assert p.orphans == ("demo-gone",) and p.unmanaged == ("other",)


def test_prune_deletes_only_inside_the_scope() -> None:
    keep = [desired(f"demo-k{i}") for i in range(3)]
    lives = [live(d, id_=f"{i:024d}") for i, d in enumerate(keep)]
    gone = live(desired("demo-gone"), id_="9" * 24)
    outside = live(desired("other-thing"), id_="8" * 24)
    p = build_plan(desired=keep, live=[*lives, gone, outside], scope=SCOPE, prune=True)
    assert _kinds(p)[0] == ("delete", "demo-gone")
    assert p.unmanaged == ("other-thing",)
    assert all(a.name != "other-thing" for a in p.actions)
    assert p.summary.text == "Plan: 0 to create, 0 to update, 1 to delete."


def test_prune_without_scope_is_refused() -> None:
    p = build_plan(desired=[], live=[], scope=None, prune=True)
    assert not p.applyable and "scope" in p.errors[0]


def test_max_delete_fraction_refuses_unless_forced() -> None:
    keep = desired("demo-keep")
    lives = [live(keep, id_="0" * 24)] + [live(desired(f"demo-x{i}"), id_=f"{i + 1:024d}") for i in range(3)]
    refused = build_plan(desired=[keep], live=lives, scope=SCOPE, prune=True, max_delete_fraction=0.5)
    assert not refused.applyable
    assert "deletes 3 of 4" in refused.errors[0] and "--force" in refused.errors[0]
    forced = build_plan(desired=[keep], live=lives, scope=SCOPE, prune=True, max_delete_fraction=0.5, force=True)
    assert forced.applyable and len(forced.of_kind(ActionKind.delete)) == 3
    assert any("--force" in w for w in forced.warnings)


def test_destroy_respects_prevent_destroy_and_orphan_policy() -> None:
    a, b, c = desired("demo-a"), desired("demo-b", preventDestroy=True), desired("demo-c", deletionPolicy="Orphan")
    lives = [live(a, id_="a" * 24), live(b, id_="b" * 24), live(c, id_="c" * 24)]
    p = build_plan(desired=[a, b, c], live=lives, scope=SCOPE, destroy=True, max_delete_fraction=1.0)
    assert not p.applyable and "preventDestroy" in p.errors[0]
    p2 = build_plan(desired=[a, c], live=lives[::2], scope=SCOPE, destroy=True, max_delete_fraction=1.0)
    assert _kinds(p2) == [("delete", "demo-a")] and p2.orphans == ("demo-c",)


def test_rename_is_an_update_of_the_same_id() -> None:
    new = desired("demo-new", previousNames=["demo-old"])
    old_live = live(new, id_="7" * 24, name="demo-old")
    p = build_plan(desired=[new], live=[old_live], scope=SCOPE, prune=True)
    (action,) = p.actions
    assert (action.kind, action.id, action.previous_name) == (ActionKind.rename, "7" * 24, "demo-old")
    assert [dataclasses.astuple(c) for c in action.changes] == [("name", "change", "demo-old", "demo-new")]
    assert p.summary.text == "Plan: 0 to create, 1 to update, 0 to delete."
    assert p.summary.rename == 1


def test_adopt_outside_scope_and_unmanaged_untouched() -> None:
    mine = desired("team-x", enabled=False)
    lv = live(mine, id_="5" * 24, enabled=True, schedule={"minute": [0], "hour": [1], "dayOfMonth": ["*"],
                                                             "month": ["*"], "dayOfWeek": ["*"]})
    p = build_plan(desired=[mine], live=[lv, live(desired("stranger"), id_="6" * 24)], scope=SCOPE, prune=True)
    assert _kinds(p) == [("adopt", "team-x")]
    assert p.unmanaged == ("stranger",)
    assert p.summary.text == "Plan: 0 to create, 1 to update, 0 to delete." and p.summary.adopt == 1
    assert any("outside the scope" in w for w in p.warnings)


def test_live_field_absent_from_manifest_warns_instead_of_flapping() -> None:
    a = desired("demo-a")
    la = live(a, id_="a" * 24)
    la.comparable["batchPredictionJob"]["thresholdHigh"] = 0.9
    p = build_plan(desired=[a], live=[la], scope=SCOPE)
    assert _kinds(p) == [("noop", "demo-a")]
    assert "thresholdHigh" in p.warnings[0]


def test_plan_is_deterministic_and_round_trips_through_json() -> None:
    ds = [desired(f"demo-{i}") for i in range(5)]
    lives = [live(d, id_=f"{i:024d}") for i, d in enumerate(ds[:3])]
    lives[0].comparable["enabled"] = True
    p1 = build_plan(desired=ds, live=lives, scope=SCOPE)
    p2 = build_plan(desired=ds[::-1], live=lives[::-1], scope=SCOPE)
    assert p1 == p2
    back = plans.from_dict(json.loads(json.dumps(plans.to_dict(p1))))
    assert back.actions == p1.actions and back.fingerprint == p1.fingerprint and back.summary == p1.summary


def test_a_saved_plan_carries_a_digest_of_its_content_and_an_edit_is_refused() -> None:
    ds = [desired("demo-a"), desired("demo-b")]
    data = json.loads(json.dumps(plans.to_dict(build_plan(desired=ds, live=[], scope=SCOPE), version="1.2.3")))
    assert data["format_version"] == plans.FORMAT_VERSION == "1.3" and list(data)[-1] == "digest" and data["digest"].startswith("sha256:")
    assert plans.content_digest(data) == data["digest"]
    plans.from_dict(data)  # intact: read back
    for edit in (lambda d: d["actions"][0]["body"].update(numConcurrent=77), lambda d: d.update(reconciler_version="x"),
                 lambda d: d["actions"].pop(), lambda d: d["options"].update(force=True),
                 lambda d: d["actions"][0].update(secret_roots=["/"])):
        edited = json.loads(json.dumps(data))
        edit(edited)
        with pytest.raises(ValueError, match="the plan was changed after `reconciler plan` wrote it"):
            plans.from_dict(edited)
    # key order and whitespace are not content: the same data re-serialized keeps its digest
    plans.from_dict(json.loads(json.dumps(data, indent=None, sort_keys=True)))
    old = {k: v for k, v in data.items() if k != "digest"} | {"format_version": "1.1"}
    with pytest.raises(ValueError, match=r"the plan has no digest \(format_version '1.1'"):
        plans.from_dict(old)


def test_fingerprint_names_what_changed() -> None:
    a, b = desired("demo-a"), desired("demo-b")
    la, lb = live(a, id_="a" * 24), live(b, id_="b" * 24)
    p = build_plan(desired=[a, b], live=[la, lb], scope=SCOPE)
    lb2 = live(b, id_="b" * 24, enabled=True, schedule={"minute": [0], "hour": [1], "dayOfMonth": ["*"],
                                                          "month": ["*"], "dayOfWeek": ["*"]})
    extra = live(desired("demo-c"), id_="c" * 24)
    outside = live(desired("zzz"), id_="d" * 24)
    now = plans.fingerprint(live=[la, lb2, extra, outside], scope=SCOPE, watched_names=p.fingerprint.watched_names)
    assert p.fingerprint.compare(now) == [f"demo-b [id {'b' * 24}] changed", f"demo-c [id {'c' * 24}] appeared"]
