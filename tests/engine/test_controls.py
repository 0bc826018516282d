"""Ignore rules, suspend and sync windows in the engine: pure values, exact clocks."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest

from reconciler.contract import validators
from reconciler.contract.fieldpaths import check_path, known_paths
from reconciler.engine import ignore as ignoring
from reconciler.engine import plan as plans
from reconciler.engine import windows
from reconciler.engine.plan import ActionKind, build_plan
from reconciler.engine.render import render
from reconciler.engine.types import Scope
from reconciler.specs.controls import IgnoreRule, SyncWindow, parse_selector

from .helpers import desired, live

SCOPE = Scope(name_prefix="demo-")
SCHEDULE = {"cron": "0 2 * * *"}


def _disabled_live(name: str, **spec: object) -> tuple[plans.Plan, object]:
    want = desired(name, enabled=True, schedule=SCHEDULE, **spec)
    have = live(want, id_="a" * 24, enabled=False)  # on-call disabled it in the UI
    return build_plan(desired=[want], live=[have], scope=SCOPE), have


# -- ignore rules -------------------------------------------------------------------------------

def test_an_ignored_field_is_counted_not_planned_and_a_noop_stays_a_noop() -> None:
    plan, _ = _disabled_live("demo-a", ignoreChanges=["enabled"])
    (action,) = plan.actions
    assert action.kind is ActionKind.noop and action.changes == ()
    assert [tuple(c) for c in action.ignored] == [("enabled", "change", False, True)]
    assert plan.summary.ignored == 1 and not plan.has_changes
    assert plan.summary.text == "No changes. Live definitions match the manifests. 1 difference ignored."
    # without the rule the same state is an update that would enable it again
    plain, _ = _disabled_live("demo-a")
    assert plain.actions[0].kind is ActionKind.update and plain.summary.ignored == 0


def test_an_update_leaves_an_ignored_top_level_field_out_of_its_body() -> None:
    want = desired("demo-a", enabled=True, schedule=SCHEDULE, ignoreChanges=["enabled"])
    have = live(want, id_="a" * 24, enabled=False)
    have.comparable["batchPredictionJob"]["intakeSettings"]["url"] = "s3://old.csv"
    (action,) = build_plan(desired=[want], live=[have], scope=SCOPE).actions
    assert action.kind is ActionKind.update and [c.path for c in action.changes] == [
        "batchPredictionJob.intakeSettings.url"]
    assert action.body is not None and "enabled" not in action.body and action.body["schedule"]
    assert action.line() == f"~ update demo-a [id {'a' * 24}] (1 change) (1 difference ignored)"


def test_a_nested_ignored_field_is_sent_with_its_live_value_inside_its_parent() -> None:
    want = desired("demo-a", ignoreChanges=["batchPredictionJob.intakeSettings.url"])
    have = live(want, id_="a" * 24)
    have.comparable["batchPredictionJob"]["intakeSettings"]["url"] = "s3://set-by-hand.csv"
    have.comparable["batchPredictionJob"]["outputSettings"]["table"] = "old_scores"
    (action,) = build_plan(desired=[want], live=[have], scope=SCOPE).actions
    assert [c.path for c in action.changes] == ["batchPredictionJob.outputSettings.table"]
    assert action.body is not None
    assert action.body["intakeSettings"]["url"] == "s3://set-by-hand.csv"
    assert action.body["intakeSettings"]["credentialId"] == want.body["intakeSettings"]["credentialId"]
    assert want.body["intakeSettings"]["url"] == "s3://bucket/demo-a.csv"  # the manifest's body is untouched


def test_strip_body_drops_a_nested_field_the_live_definition_lacks_and_a_whole_job() -> None:
    body = {"name": "x", "enabled": True, "intakeSettings": {"type": "s3", "url": "u", "endpointUrl": "e"},
            "numConcurrent": 2}
    live_form = {"batchPredictionJob": {"intakeSettings": {"type": "s3", "url": "u"}}}
    out = ignoring.strip_body(body, ["batchPredictionJob.intakeSettings.endpointUrl"], live_form)
    assert out["intakeSettings"] == {"type": "s3", "url": "u"} and body["intakeSettings"]["endpointUrl"] == "e"
    assert ignoring.strip_body(body, ["batchPredictionJob"], live_form) == {"name": "x", "enabled": True}


def test_a_create_sends_ignored_fields() -> None:
    want = desired("demo-a", enabled=True, schedule=SCHEDULE, ignoreChanges=["enabled"])
    (action,) = build_plan(desired=[want], live=[], scope=SCOPE).actions
    assert action.kind is ActionKind.create and action.body is not None and action.body["enabled"] is True


def test_config_rules_select_by_label_and_name_pattern() -> None:
    a, b, c = desired("demo-a"), desired("demo-b"), desired("other-c")
    rules = [IgnoreRule(paths=("enabled",), selector=parse_selector("team=growth,tier!=critical") or ()),
             IgnoreRule(paths=("batchPredictionJob.numConcurrent",), names=("other-*",))]
    out = ignoring.with_rules([a, b, c], [{"team": "growth"}, {"team": "growth", "tier": "critical"}, {}],
                              ["demo-a", "demo-b", "other-c"], rules)
    assert [d.ignore_changes for d in out] == [("enabled",), (), ("batchPredictionJob.numConcurrent",)]


def test_paths_come_from_the_schemas_and_a_typo_names_the_closest() -> None:
    paths = known_paths()
    assert {"enabled", "schedule.hour", "batchPredictionJob.numConcurrent",
            "batchPredictionJob.outputSettings.table", "batchPredictionJob.intakeSettings.url"} <= paths
    assert "name" not in paths
    assert "did you mean `batchPredictionJob.numConcurrent`" in (check_path("batchPredictionJob.numConcurent") or "")
    assert "identity" in (check_path("name") or "")


def test_saved_plans_carry_ignored_differences_under_their_digest() -> None:
    plan, _ = _disabled_live("demo-a", ignoreChanges=["enabled"])
    data = json.loads(render(plan, "json"))
    validators.validator("plan").validate(data)
    assert data["actions"][0]["ignored"] == [{"path": "enabled", "op": "change", "old": False, "new": True}]
    assert data["summary"]["ignored"] == 1
    back = plans.from_dict(data)
    assert back.actions[0].ignored == plan.actions[0].ignored and back.summary == plan.summary
    data["actions"][0]["ignored"] = []
    with pytest.raises(ValueError, match="digest does not match"):
        plans.from_dict(data)


# -- suspend ---------------------------------------------------------------------------------------

def test_a_suspended_manifest_gets_no_action_whatever_it_would_do() -> None:
    new = desired("demo-new", suspend=True)
    changed = desired("demo-changed", suspend=True)
    have = live(changed, id_="c" * 24)
    have.comparable["batchPredictionJob"]["intakeSettings"]["url"] = "s3://old.csv"
    plan = build_plan(desired=[new, changed], live=[have], scope=SCOPE, prune=True)
    assert plan.actions == () and not plan.has_changes
    assert [(s.name, s.id, s.pending, s.changes) for s in plan.suspended] == [
        ("demo-changed", "c" * 24, "update", 1), ("demo-new", None, "create", 0)]
    assert plan.summary.text == "No changes. Live definitions match the manifests. 2 definitions suspended."
    text = render(plan, "text")
    assert "Suspended (spec.suspend), nothing written (2):" in text
    assert f"demo-changed [id {'c' * 24}] (would update, 1 change)" in text


def test_prune_and_destroy_never_delete_a_suspended_manifests_definition() -> None:
    kept = desired("demo-kept", suspend=True)
    gone = desired("demo-gone")
    lk, lg = live(kept, id_="k" * 24), live(gone, id_="g" * 24)
    pruned = build_plan(desired=[], live=[lk, lg], scope=SCOPE, prune=True, force=True)
    assert {a.name for a in pruned.of_kind(ActionKind.delete)} == {"demo-kept", "demo-gone"}  # no manifest: pruned
    pruned = build_plan(desired=[kept], live=[lk, lg], scope=SCOPE, prune=True, force=True)
    assert [a.name for a in pruned.of_kind(ActionKind.delete)] == ["demo-gone"]
    destroyed = build_plan(desired=[kept, gone], live=[lk, lg], scope=SCOPE, destroy=True, force=True)
    assert [a.name for a in destroyed.of_kind(ActionKind.delete)] == ["demo-gone"]
    assert [(s.name, s.pending) for s in destroyed.suspended] == [("demo-kept", "delete")]
    back = plans.from_dict(plans.to_dict(destroyed))
    assert back.suspended == destroyed.suspended


# -- sync windows ----------------------------------------------------------------------------------

FRI_2330 = datetime(2026, 12, 4, 23, 30, tzinfo=UTC)  # a Friday
FREEZE = SyncWindow(kind="deny", schedule="0 22 * * 5", duration=timedelta(days=2, hours=8), name="weekend freeze")
OFFICE = SyncWindow(kind="allow", schedule="0 9 * * 1-5", duration=timedelta(hours=8))


def test_a_deny_window_is_closed_inside_and_says_when_it_ends() -> None:
    state = windows.state([FREEZE], FRI_2330)
    assert state is not None and not state.open and state.active == ("weekend freeze",)
    assert state.until == datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
    assert state.reason == "deny window weekend freeze is open until 2026-12-07 06:00 UTC"
    assert windows.state([FREEZE], datetime(2026, 12, 7, 6, 0, tzinfo=UTC)).open  # type: ignore[union-attr]
    assert windows.state([FREEZE], datetime(2026, 12, 4, 21, 59, tzinfo=UTC)).open  # type: ignore[union-attr]
    assert windows.state([], FRI_2330) is None


def test_allow_windows_admit_writes_only_inside_and_deny_wins() -> None:
    monday_8 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    outside = windows.state([OFFICE], monday_8)
    assert outside is not None and not outside.open and outside.until == datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    assert outside.reason.startswith("outside every allow window; writes are allowed from 2026-12-07 09:00 UTC")
    inside = windows.state([OFFICE], datetime(2026, 12, 7, 16, 59, tzinfo=UTC))
    assert inside is not None and inside.open and inside.active == ("allow '0 9 * * 1-5' for 8h",)
    # deny wins when both are open: Friday 16:00 inside the office window and a Friday deny window
    friday = SyncWindow(kind="deny", schedule="0 15 * * 5", duration=timedelta(hours=3))
    both = windows.state([OFFICE, friday], datetime(2026, 12, 4, 16, 0, tzinfo=UTC))
    assert both is not None and not both.open
    assert both.until == datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # deny ends 18:00, office reopens on Monday
    assert both.reason == ("deny window deny '0 15 * * 5' for 3h is open until 2026-12-04 18:00 UTC; "
                           "writes are allowed from 2026-12-07 09:00 UTC")
    always = windows.state([SyncWindow(kind="deny", schedule="* * * * *", duration=timedelta(hours=1))], FRI_2330)
    assert always is not None and always.until is None
    assert always.reason == "deny window deny '* * * * *' for 1h is open and does not close within 400 days"


def test_gate_refuses_writes_in_a_closed_window_unless_forced() -> None:
    closed = windows.state([FREEZE], FRI_2330)
    assert windows.gate(closed, writes=0, force=False) is None  # nothing to write: nothing refused
    with pytest.raises(windows.WindowClosed, match=r"apply refused: deny window weekend freeze .*pass --force"):
        windows.gate(closed, writes=2, force=False)
    assert windows.gate(closed, writes=2, force=True) == f"sync window overridden by --force: {closed.reason}"  # type: ignore[union-attr]
    assert windows.WindowClosed.exit_code == 1


def test_the_plan_shows_the_window_in_every_view() -> None:
    want = desired("demo-a")
    state = windows.state([FREEZE], FRI_2330)
    plan = build_plan(desired=[want], live=[], scope=SCOPE, window=state)
    assert plan.has_changes and plan.applyable  # planning is allowed; apply decides
    assert ("Sync window: closed (deny window weekend freeze is open until 2026-12-07 06:00 UTC). Apply would refuse "
            "to write (--force overrides).") in render(plan, "text")
    assert ":no_entry: Sync window: closed" in render(plan, "markdown")
    data = json.loads(render(plan, "json"))
    validators.validator("plan").validate(data)
    assert data["sync_window"] == {"open": False, "checked_at": "2026-12-04T23:30:00Z", "reason": state.reason,  # type: ignore[union-attr]
                                   "until": "2026-12-07T06:00:00Z", "active": ["weekend freeze"],
                                   "windows": [{"name": "weekend freeze", "kind": "deny", "schedule": "0 22 * * 5",
                                                "duration": "2d8h"}]}
    assert dataclasses.replace(plans.from_dict(data), fingerprint=plan.fingerprint).window == state


def test_a_long_chain_of_windows_is_not_called_endless() -> None:
    """Ten hours of one-minute deny windows end at 10:00, but the walk stops after 512 window ends:
    the reason says that, not "does not close within 400 days" (which was false)."""
    chain = SyncWindow(kind="deny", schedule="* 0-9 * * *", duration=timedelta(minutes=1))
    found = windows.state([chain], datetime(2026, 12, 7, 0, 0, tzinfo=UTC))
    assert found is not None and not found.open and found.until is None
    assert found.reason == ("deny window deny '* 0-9 * * *' for 1m is open and does not close within the next "
                            "512 window openings and closings")
