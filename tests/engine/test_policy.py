"""Policies as values: compiling (located errors), the schedule helper, verdicts on manifests and
on a plan's actions, and the plan's JSON form keeping them (Google's CEL runtime, really run)."""

from __future__ import annotations

import json

import pytest

from reconciler.contract import validators
from reconciler.engine import plan as plans
from reconciler.engine import policy
from reconciler.engine.plan import build_plan
from reconciler.engine.select import Removed
from reconciler.engine.types import Scope
from reconciler.specs.load import LoadedDocument
from reconciler.specs.policies import PolicyRule

from .helpers import desired, live, manifest_data

SCOPE = Scope(name_prefix="demo-")


def rule(name: str, expression: str, **kw: object) -> PolicyRule:
    return PolicyRule(name=name, expression=expression, message=f"{name} says no", file="reconciler.yaml",
                      line=7, col=19, field="policies.rules[0].expression", **kw)  # type: ignore[arg-type]


def test_a_rule_that_does_not_compile_is_located_in_the_config_with_the_reason() -> None:
    with pytest.raises(policy.PolicyCompileError) as caught:
        policy.compile_policies([
            rule("syntax", "manifest.spec."),
            rule("unknown-variable", "action.kind == 'delete'"),  # a manifest rule sees no action
            rule("not-bool", "1 + 2"),
            rule("bad-selector", "true", selector="tier"),
            rule("fine", "true"),
        ])
    problems = caught.value.problems
    assert len(problems) == 4
    assert problems[0].startswith("reconciler.yaml:7:19: policies.rules[0].expression: rule 'syntax' does not compile: "
                                  "<input>:1:15: Syntax error")
    assert "undeclared reference to 'action.kind'" in problems[1] and "a rule on: manifest sees manifest, target" in problems[1]
    assert "rule 'not-bool' evaluates to int, not a bool" in problems[2]
    assert "selector of rule 'bad-selector'" in problems[3] and "expected LABEL=VALUE" in problems[3]
    assert caught.value.exit_code == 1


def test_no_rules_need_no_runtime() -> None:
    assert not policy.compile_policies([])


def test_schedule_helper_expands_the_five_lists_and_the_days_it_can_fire_on() -> None:
    def view(schedule: object) -> object:
        return policy.schedule_view({"spec": {"schedule": schedule}})

    nightly = view({"cron": "30 2 * * mon-fri"})
    assert nightly == {"minutes": [30], "hours": [2], "daysOfMonth": list(range(1, 32)), "months": list(range(1, 13)),
                       "daysOfWeek": [1, 2, 3, 4, 5]}
    lists = view({"minute": [0], "hour": ["*"], "dayOfMonth": ["*"], "month": ["jan"], "dayOfWeek": ["sun"]})
    assert lists["hours"] == list(range(24)) and lists["months"] == [1] and lists["daysOfWeek"] == [0]  # type: ignore[index]
    # a restricted day of the month falls on every weekday over the months (cron's union, too)
    assert view({"cron": "0 12 1 * sun"})["daysOfWeek"] == list(range(7))  # type: ignore[index]
    assert policy.schedule_view({"spec": {}}) is None and view({"cron": "not cron"}) is None


OFFICE = ("schedule == null || !(schedule.daysOfWeek.exists(d, d >= 1 && d <= 5)"
          " && schedule.hours.exists(h, h >= 8 && h < 18))")


def test_manifest_verdicts_honour_targets_selectors_and_fail_closed() -> None:
    compiled = policy.compile_policies([
        rule("max-concurrency-prod", "manifest.spec.batchPredictionJob.numConcurrent <= 8", targets=("prod",)),
        rule("office-hours", OFFICE, severity="warn"),
        rule("critical-only", "manifest.spec.enabled == false", selector="tier=critical"),
    ])
    doc = manifest_data("demo-a", schedule={"cron": "0 9 * * 1-5"}, enabled=True)
    doc["spec"]["batchPredictionJob"]["numConcurrent"] = 16
    in_dev = policy.manifest_verdicts(compiled, doc, target="dev")
    assert [(v.rule, v.severity) for v in in_dev] == [("office-hours", "warn")]
    in_prod = policy.manifest_verdicts(compiled, doc, target="prod")
    assert [(v.rule, v.severity) for v in in_prod] == [("max-concurrency-prod", "deny"), ("office-hours", "warn")]
    assert in_prod[0].line() == "policy max-concurrency-prod denied demo-a: max-concurrency-prod says no"
    doc["metadata"]["labels"] = {"tier": "critical"}
    assert "critical-only" in [v.rule for v in policy.manifest_verdicts(compiled, doc, target="dev")]
    # a missing field: the rule cannot say yes, so it says no, with the runtime's reason
    del doc["spec"]["batchPredictionJob"]["numConcurrent"]
    (missing,) = [v for v in policy.manifest_verdicts(compiled, doc, target="prod") if v.rule.startswith("max")]
    assert "could not be evaluated" in missing.message and "numConcurrent" in missing.message


def test_one_program_for_many_rules_gives_what_each_rule_gives_alone() -> None:
    rules = [rule("a", "manifest.metadata.name.startsWith('demo-')"), rule("b", "manifest.spec.enabled"),
             rule("c", "manifest.spec.batchPredictionJob.numConcurrent < 4 // a trailing comment"),
             rule("d", "size(manifest.metadata.name) > 3")]
    together = policy.compile_policies(rules)
    docs = [manifest_data("demo-a", enabled=True), manifest_data("x", enabled=False)]
    docs[0]["spec"]["batchPredictionJob"]["numConcurrent"] = 2  # docs[1] has none: rule c fails to evaluate
    for doc in docs:
        combined = policy.manifest_verdicts(together, doc, target=None)
        alone = [v for r in rules for v in policy.manifest_verdicts(policy.compile_policies([r]), doc, target=None)]
        assert combined == alone
    assert [v.rule for v in policy.manifest_verdicts(together, docs[1], target=None)] == ["a", "b", "c", "d"]
    assert len(together.combined) == 1


def test_the_fast_path_gives_the_verdicts_of_each_rule_judged_on_its_own() -> None:
    """The combined program, the variables trimmed to what the rules read and the selections
    checked once per group give exactly what each rule's own program gives over every variable:
    with a rule that cannot be evaluated, one that is not a bool, targets and selectors."""
    rules = [rule("prefix", "manifest.metadata.name.startsWith('demo-')"),
             rule("concurrency", "manifest.spec.batchPredictionJob.numConcurrent <= 8", targets=("prod",)),
             rule("office", OFFICE, severity="warn"),
             rule("tier-is-text", "labels.tier", selector="tier!=gold"),  # a string, not a bool
             rule("critical-off", "manifest.spec.enabled == false", selector="tier=critical"),
             rule("not-bronze", "target != 'prod' || labels.tier != 'bronze'", selector="tier!=gold"),
             rule("id", "manifest.spec.batchPredictionJob.deploymentId.matches('^[0-9a-f]{24}$')",
                  targets=("prod",), severity="warn")]
    compiled = policy.compile_policies(rules)
    assert [sorted(r.reads) for r in compiled.manifest_rules] == [
        ["manifest"], ["manifest"], ["schedule"], ["labels"], ["manifest"], ["labels", "target"], ["manifest"]]
    docs = []
    for i, (tier, schedule) in enumerate([(None, None), ("critical", {"cron": "0 9 * * 1-5"}),
                                          ("bronze", {"cron": "0 2 * * *"}), ("gold", {"cron": "0 12 1 * *"})]):
        doc = manifest_data(f"demo-{i}" if i % 2 else f"x{i}", enabled=bool(i % 2),
                            **({"schedule": schedule} if schedule else {}))
        if tier:
            doc["metadata"]["labels"] = {"tier": tier}
        if i != 2:  # i == 2 has none: the concurrency rule cannot be evaluated there
            doc["spec"]["batchPredictionJob"]["numConcurrent"] = 4 * i
        docs.append(doc)
    seen = set()
    for doc in docs:
        for target in (None, "prod", "dev"):
            fast = policy.manifest_verdicts(compiled, doc, target=target)
            assert fast == policy.manifest_verdicts(compiled, doc, target=target, one_by_one=True)
            alone = [v for r in rules for v in policy.manifest_verdicts(policy.compile_policies([r]), doc,
                                                                        target=target, one_by_one=True)]
            assert fast == alone
            seen |= {v.message for v in fast}
    assert "tier-is-text says no (the rule evaluated to 'critical', not a bool)" in seen
    assert any(m.startswith("concurrency says no (the rule could not be evaluated: ") for m in seen)

    both = policy.compile_policies([rule("no-delete", "action.kind != 'delete'", on="action"),
                                    rule("night", OFFICE, on="action", severity="warn"),
                                    rule("bad", "live.missing", on="action")])  # no such key
    act: dict[str, object] = {"kind": "delete", "name": "demo-1", "id": "x", "previous_name": None, "changes": []}
    for doc in docs:
        kw = {"manifest": doc, "desired": None, "live": {"name": "demo-1"}, "target": "prod"}
        fast = policy.action_verdicts(both, act, **kw)  # type: ignore[arg-type]
        assert fast == policy.action_verdicts(both, act, one_by_one=True, **kw)  # type: ignore[arg-type]
        assert {"no-delete", "bad"} <= {v.rule for v in fast}


def test_the_rules_of_one_file_never_get_another_files_program() -> None:
    """The combined programs are cached by the ids of the rules: the Policies of one file (made
    again for each test case, ids reused once freed) must never meet another's program."""
    both = policy.compile_policies([
        PolicyRule(name="a1", expression="manifest.metadata.name == 'a'", message="a1", file="a.yaml"),
        PolicyRule(name="a2", expression="true", message="a2", file="a.yaml"),
        PolicyRule(name="b1", expression="manifest.metadata.name == 'b'", message="b1", file="b.yaml"),
        PolicyRule(name="b2", expression="false", message="b2", file="b.yaml")])
    doc = manifest_data("a")
    for _ in range(50):
        assert [v.rule for v in policy.manifest_verdicts(both.of_file("a.yaml"), doc, target=None)] == []
        assert [v.rule for v in policy.manifest_verdicts(both.of_file("b.yaml"), doc, target=None)] == ["b1", "b2"]


def test_the_schedule_is_worked_out_only_when_a_rule_reads_it() -> None:
    doc = manifest_data("demo-s", schedule={"minute": [7], "hour": [3], "dayOfMonth": ["*"], "month": ["*"],
                                            "dayOfWeek": ["tue"]})
    # a word in a string is read as a use (a superset is safe): only 'plain' does not read it
    plain = policy.compile_policies([rule("plain", "manifest.metadata.name != 'x'"),
                                     rule("quoted", "manifest.metadata.name != 'schedule'")])
    assert [sorted(r.reads) for r in plain.manifest_rules] == [["manifest"], ["manifest", "schedule"]]
    policy._VIEWS.clear()
    assert policy.manifest_verdicts(plain.of_file("reconciler.yaml").of_file("x"), doc, target=None) == []
    only_plain = policy.Policies(manifest_rules=plain.manifest_rules[:1], envs=plain.envs)
    assert policy.manifest_verdicts(only_plain, doc, target=None) == [] and policy._VIEWS == {}
    assert policy.manifest_verdicts(plain, doc, target=None) == [] and len(policy._VIEWS) == 1


def test_manifest_issues_are_located_at_the_manifest() -> None:
    text = ("apiVersion: reconciler.io/v1alpha1\nkind: BatchPredictionJobDefinition\nmetadata:\n"
            "  name: demo-a\nspec: {batchPredictionJob: {deploymentId: d1}}\n")
    from reconciler.specs.load import load_text

    (doc,), _ = load_text(text, file="specs/a.yaml")
    compiled = policy.compile_policies([rule("named", "manifest.metadata.name != 'demo-a'"),
                                        rule("warned", "false", severity="warn")])
    issues = policy.manifest_issues(compiled, [doc], target=None)
    assert [i.format().splitlines()[0] for i in issues] == [
        "specs/a.yaml:4:9: policy named: named says no", "specs/a.yaml:4:9: warning: policy warned: warned says no"]
    assert issues[0].hint == "rule at reconciler.yaml:7:19"


def _docs(*names: str, labels: dict[str, str] | None = None) -> list[LoadedDocument]:
    out = []
    for name in names:
        data = manifest_data(name)
        if labels:
            data["metadata"]["labels"] = labels
        out.append(LoadedDocument(file=f"specs/{name}.yaml", index=0, data=data, line=1, col=1))
    return out


def test_action_rules_refuse_the_plan_and_keep_warnings_in_its_json() -> None:
    compiled = policy.compile_policies([
        rule("no-critical-delete", "action.kind != 'delete'", on="action", selector="tier=critical"),
        rule("creates-warn", "action.kind != 'create' || desired.name.startsWith('x')", on="action", severity="warn"),
        rule("live-seen", "action.kind != 'update' || live.enabled == false", on="action"),
    ])
    a, b = desired("demo-a"), desired("demo-b")
    base = build_plan(desired=[a, b], live=[live(a, id_="a" * 24)], scope=SCOPE, destroy=True, force=True)
    judged = policy.judge_plan(compiled, base, documents=_docs("demo-a", "demo-b", labels={"tier": "critical"}),
                               desired=[a, b], live=[live(a, id_="a" * 24)], target=None)
    assert not judged.applyable and judged.errors == (
        "policy no-critical-delete denied delete demo-a: no-critical-delete says no",)
    created = policy.judge_plan(compiled, build_plan(desired=[a, b], live=[], scope=SCOPE), documents=_docs("demo-a", "demo-b"),
                                desired=[a, b], live=[], target=None)
    assert created.applyable and len(created.policy) == 2 and all(v.severity == "warn" for v in created.policy)
    assert "policy creates-warn warns on create demo-a: creates-warn says no" in created.warnings
    data = json.loads(json.dumps(plans.to_dict(created)))
    validators.validator("plan").validate(data)
    assert data["policy"]["rules_digest"] == compiled.digest == policy.rules_digest(list(
        c.rule for c in compiled.action_rules)) and compiled.digest.startswith("sha256:")
    assert data["policy"]["verdicts"][0] == {"rule": "creates-warn", "severity": "warn", "message": "creates-warn says no",
                                 "subject": "demo-a", "kind": "create", "source": "specs/demo-a.yaml:1",
                                 "rule_source": "reconciler.yaml:7:19"}
    assert plans.from_dict(data).policy == created.policy  # a saved plan keeps its verdicts (and its digest covers them)


def test_a_pruned_definition_has_the_labels_git_last_had_for_it() -> None:
    compiled = policy.compile_policies([rule("no-critical-delete", "action.kind != 'delete'", on="action",
                                             selector="tier=critical")])
    gone = desired("demo-gone")
    base = build_plan(desired=[], live=[live(gone, id_="g" * 24)], scope=SCOPE, prune=True, force=True)
    without = policy.judge_plan(compiled, base, documents=[], desired=[], live=[live(gone, id_="g" * 24)], target=None)
    assert without.applyable  # the API keeps no labels: nothing to match without --changed-since
    found = policy.judge_plan(compiled, base, documents=[], desired=[], live=[live(gone, id_="g" * 24)], target=None,
                              removed=[Removed(name="demo-gone", labels={"tier": "critical"})])
    assert not found.applyable and found.policy[0].kind == "delete"
