"""The operator's decision over plain values: a resource, its live candidates, the mode and the
drift policy give one step and the status result (no cluster, no API)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from operator_harness import manifest

from reconciler.engine.normalize import desired_from_manifest
from reconciler.engine.types import Desired, Live
from reconciler.operator import decide
from reconciler.operator.decide import Mode, Step
from reconciler.operator.status import Result

ID, OTHER = "a" * 24, "b" * 24


def _desired(name: str = "demo-op", **spec: Any) -> Desired:
    body = manifest(name, **spec)
    body["metadata"]["namespace"] = "ns"
    return desired_from_manifest(decide.parse(body))


def _live(desired: Desired, id_: str = ID, *, name: str | None = None, **changes: Any) -> Live:
    comparable = copy.deepcopy(desired.comparable)
    comparable.update(changes)
    return Live(id=id_, name=name or desired.name, comparable=comparable)


def test_no_live_definition_is_a_create() -> None:
    want = _desired()
    decision = decide.decide(want, [], recorded_id=None, mode=Mode.apply, drift_policy=None)
    assert (decision.step, decision.result, decision.writes) == (Step.create, Result.created, True)
    assert decision.action is not None and decision.action.name == "demo-op" and decision.outcome is None
    outcome = decide.written(decision, name="demo-op", definition_id=ID, live=None)
    assert (outcome.result, outcome.message, outcome.definition_id) == (Result.created, f"created definition {ID}", ID)


def test_a_matching_recorded_definition_is_a_noop_with_its_outcome() -> None:
    want = _desired()
    decision = decide.decide(want, [_live(want)], recorded_id=ID, mode=Mode.resync, drift_policy=None)
    assert (decision.step, decision.writes) == (Step.noop, False)
    assert decision.outcome is not None and decision.outcome.result is Result.unchanged
    with pytest.raises(ValueError, match="writes nothing"):
        decide.written(decision, name="demo-op", definition_id=ID, live=None)


def test_found_by_name_is_adopted_written_only_when_it_differs() -> None:
    want = _desired()
    same = decide.decide(want, [_live(want)], recorded_id=None, mode=Mode.apply, drift_policy=None)
    assert (same.step, same.result, same.writes) == (Step.adopt, Result.adopted, False)
    assert same.outcome is not None and same.outcome.message == f"adopted existing definition {ID} (it already matches the spec)"
    differs = decide.decide(want, [_live(want, enabled=not want.comparable["enabled"])], recorded_id=None,
                            mode=Mode.apply, drift_policy=None)
    assert (differs.step, differs.result, differs.writes) == (Step.adopt, Result.adopted, True)
    assert decide.written(differs, name="demo-op", definition_id=ID, live=None).message == (
        f"adopted existing definition {ID} and updated enabled")


@pytest.mark.parametrize(("policy", "step", "result", "writes"), [
    (None, Step.update, Result.drift_corrected, True),
    ("Correct", Step.update, Result.drift_corrected, True),
    ("Report", Step.report, Result.drift_reported, False),
])
def test_drift_on_resync_is_corrected_or_reported(policy: str | None, step: Step, result: Result,
                                                  writes: bool) -> None:
    want = _desired()
    decision = decide.decide(want, [_live(want, enabled=not want.comparable["enabled"])], recorded_id=ID,
                             mode=Mode.resync, drift_policy=policy)
    assert (decision.step, decision.result, decision.writes) == (step, result, writes)
    if not writes:
        assert decision.outcome is not None and decision.outcome.drift == ("enabled",)


def test_a_spec_change_is_an_update_and_a_missing_definition_is_recreated_or_reported() -> None:
    want = _desired()
    changed = decide.decide(want, [_live(want, enabled=not want.comparable["enabled"])], recorded_id=ID,
                            mode=Mode.apply, drift_policy="Report")
    assert (changed.step, changed.result) == (Step.update, Result.updated)
    gone = decide.decide(want, [], recorded_id=ID, mode=Mode.resync, drift_policy=None)
    assert (gone.step, gone.result, gone.writes) == (Step.create, Result.created, True)
    reported = decide.decide(want, [], recorded_id=ID, mode=Mode.resync, drift_policy="Report")
    assert (reported.step, reported.result) == (Step.report, Result.missing_reported)
    assert reported.outcome is not None and reported.outcome.drift == ("<definition>",)


def test_a_candidate_another_resource_manages_is_a_conflict() -> None:
    want = _desired()
    with pytest.raises(decide.ClaimedElsewhere, match=f"{OTHER} \\('demo-op'\\) is already managed by .* ns2/x"):
        decide.decide(want, [_live(want, OTHER)], recorded_id=None, mode=Mode.apply, drift_policy=None,
                      claimed_by=lambda i: "ns2/x" if i == OTHER else None)


@pytest.mark.parametrize(("kwargs", "step", "message"), [
    ({"recorded_id": None}, Step.keep, "nothing to delete"),
    ({"deletion_policy": "Orphan"}, Step.keep, "(deletionPolicy: Orphan)"),
    ({"prevent_destroy": True}, Step.keep, "(preventDestroy: true)"),
    ({"claimed_by": lambda i: "ns2/x"}, Step.keep, "managed by"),
    ({}, Step.delete, f"deleted definition {ID}"),
])
def test_finalize_deletes_only_what_is_recorded_and_ours(kwargs: dict[str, Any], step: Step,
                                                         message: str) -> None:
    args: dict[str, Any] = {"recorded_id": ID, "name": "demo-op", "deletion_policy": "Delete",
                            "prevent_destroy": False, **kwargs}
    decision = decide.decide_finalize(**args)
    assert decision.step is step and message in decision.message
    if step is Step.delete:
        assert decision.plan is not None and [(a.kind.value, a.id) for a in decision.plan.actions] == [("delete", ID)]
    else:
        assert decision.plan is None
