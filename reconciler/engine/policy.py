"""Policies: rules written as CEL expressions, compiled once, judged over manifests and planned
actions. Pure computation: the CEL runtime (Google's, ``cel-expr-python``, the ``[policy]`` extra,
chosen by measurement in ``bench/bench_policy.py``) is imported only when a project has rules.

A rule's expression is true when its input complies; false reports the rule's message with its
severity (``deny`` or ``warn``). An expression that fails at run time (a missing key, a wrong type)
is a violation too, with the runtime's reason: a rule that cannot say yes says no (fail closed, as
Kubernetes' admission policies do by default); guard optional fields with ``has()``.

What a rule sees (every value is plain data: maps, lists, strings, numbers, booleans, null):

``manifest``  the manifest document as the target sees it (variables and overlays applied);
              null for the delete of a definition whose manifest is gone
``target``    the name of the target (``--target``), "" without one
``labels``    the definition's labels: its manifest's ``metadata.labels``; for the delete of a
              definition whose manifest is gone, the labels git last had for it when the plan
              runs with ``--changed-since`` (else none: the API keeps no labels). A rule's
              ``selector`` matches these
``schedule``  the manifest's schedule expanded: ``minutes``, ``hours``, ``daysOfMonth``,
              ``months`` (lists of numbers, ``*`` expanded) and ``daysOfWeek``: the days of the
              week (0 = Sunday) it can fire on (every day when dayOfMonth is restricted, as cron
              fires on those dates whatever their weekday); null without a schedule
``action``    (action rules) ``{kind, name, id, previous_name, changes}``, ``changes`` the changed
              field paths
``desired``   (action rules) the create/PATCH body; null for a delete
``live``      (action rules) the live definition in comparable form; null for a create
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from reconciler import errors
from reconciler.contract import cron
from reconciler.contract.issues import Issue
from reconciler.engine import cel_matches, collector
from reconciler.engine.select import Removed, SelectionError, parse_selectors
from reconciler.engine.verdicts import Verdict

if TYPE_CHECKING:
    from reconciler.engine.plan import Action, Plan
    from reconciler.engine.types import Desired, Live
    from reconciler.specs.load import LoadedDocument
    from reconciler.specs.policies import PolicyRule, PolicyTest
    from reconciler.specs.validate import ValidationReport

__all__ = ["ACTION_VARIABLES", "MANIFEST_VARIABLES", "CompiledRule", "Policies", "PolicyCompileError", "Ranges",
           "TestOutcome", "action_verdicts", "compile_policies", "judge_plan", "manifest_issues", "manifest_verdicts",
           "rules_digest", "run_tests", "schedule_view", "with_manifest_issues"]

# How work over the inputs [start, stop) is run: ``ranges(work, count)`` returns ``work(0, count)``,
# however it splits it (reconciler.cores.in_ranges forks; the engine itself never does).
Ranges = Callable[[Callable[[int, int], list[Issue]], int], list[Issue]]

MANIFEST_VARIABLES = ("manifest", "target", "schedule", "labels")
ACTION_VARIABLES = (*MANIFEST_VARIABLES, "action", "desired", "live")
RUNTIME_MODULE = "cel_expr_python"


class PolicyCompileError(errors.ConfigProblems):
    """Rules that do not compile; ``problems`` are ``file:line:col: ...`` lines, one per rule."""


@dataclass(frozen=True, kw_only=True)
class CompiledRule:
    rule: PolicyRule
    program: Any  # cel_expr_python's Expression: compiled from ``source``
    source: str  # the expression as run: the rule's, its literal matches() calls on RE2 kept compiled
    original: Any = None  # the rule as written when ``source`` differs: run again for the reason of a failure
    labels: tuple[tuple[str, str, bool], ...] = ()
    # the variables the expression names (a superset: a word in a string or comment counts too);
    # ``schedule`` is worked out only for inputs that a rule reading it judges
    reads: frozenset[str] = frozenset(ACTION_VARIABLES)

    @property
    def selection(self) -> tuple[tuple[str, ...] | None, tuple[tuple[str, str, bool], ...]]:
        """What decides whether the rule applies: rules with the same selection are checked once."""
        return self.rule.targets, self.labels

    def applies(self, *, target: str | None, labels: Mapping[str, Any]) -> bool:
        return _selected(self.selection, target=target, labels=labels)


def _selected(selection: tuple[tuple[str, ...] | None, tuple[tuple[str, str, bool], ...]], *, target: str | None,
              labels: Mapping[str, Any]) -> bool:
    targets, wanted = selection
    if targets is not None and target not in targets:
        return False
    return all((str(labels.get(k)) == v if k in labels else False) == eq for k, v, eq in wanted)


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _reads(expression: str, names: Sequence[str]) -> frozenset[str]:
    """The variables among ``names`` that ``expression`` can read. CEL names a variable only by
    writing it, so a name absent from the text is not read (present in a string literal or a
    comment, it only costs the work of computing it)."""
    return frozenset(names).intersection(_WORD.findall(expression))


@dataclass(frozen=True, kw_only=True)
class Policies:
    """The compiled rules of a project, split by what they judge; empty when it has none."""

    manifest_rules: tuple[CompiledRule, ...] = ()
    action_rules: tuple[CompiledRule, ...] = ()
    envs: Mapping[str, Any] = field(default_factory=dict, repr=False)  # "manifest"/"action" -> CEL Env
    digest: str | None = None  # rules_digest of the rules (None: no rules)
    # the rules that apply to an input, as ONE program returning their results as a list, compiled
    # on first use per set of rules: a CEL evaluation converts its whole input, so one evaluation
    # per input instead of one per rule (docs/policies.md has the measurements)
    combined: dict[int | tuple[int, ...], tuple[Any, Any, frozenset[str]]] = field(default_factory=dict, repr=False,
                                                                         compare=False)
    # the rules of a kind grouped by selection (targets and selector), made on first use
    groups: dict[int, tuple[tuple[CompiledRule, ...], list[tuple[Any, set[int]]]]] = field(
        default_factory=dict, repr=False, compare=False)

    def __bool__(self) -> bool:
        return bool(self.manifest_rules or self.action_rules)

    def of_file(self, file: str) -> Policies:
        """Only the rules written in ``file`` (a policy file's test cases judge its own rules)."""
        return replace(self, manifest_rules=tuple(r for r in self.manifest_rules if r.rule.file == file),
                       action_rules=tuple(r for r in self.action_rules if r.rule.file == file), combined={},
                       groups={})  # caches of its own: they are keyed by the ids of its rules


@functools.cache
def _runtime() -> Any:
    from reconciler.extras import require

    no_build = sys.platform == "linux" and platform.machine() not in ("x86_64", "AMD64")
    require("policy", "policies (the policies: section of reconciler.yaml)", modules=[RUNTIME_MODULE],
            alternative=f" (its CEL runtime has no build for Linux on {platform.machine()}: run reconciler on "
                        "x86-64 there)" if no_build else "")
    from cel_expr_python import cel

    return cel


def _problem(rule: PolicyRule, text: str, hint: str = "") -> str:
    return f"{rule.where}: {rule.field}: rule {rule.name!r} {text}" + (f"\n    {hint}" if hint else "")


def _fast(rule: PolicyRule, program: Any, written: Any, env: Any) -> tuple[str, Any] | None:
    """The rule with its ``X.matches('literal')`` calls on a pattern compiled once
    (:mod:`reconciler.engine.cel_matches`), compiled in ``env``; None when it has none to rewrite."""
    def pattern_of(literal: str) -> str | None:
        try:  # the literal's value as CEL decodes it (escapes, raw and triple-quoted forms)
            value = written.compile(literal).eval().value()
        except RuntimeError:  # not a literal after all: left as written
            return None
        return value if isinstance(value, str) and cel_matches.compiles(value) else None

    source = cel_matches.rewrite(rule.expression, pattern_of)
    if source is None:
        return None
    try:
        fast = env.compile(source)
    except RuntimeError:  # not expected (the same expression, a function renamed): run it as written
        return None
    return (source, fast) if fast.return_type() == program.return_type() else None


def compile_policies(rules: Sequence[PolicyRule], *, fast_matches: bool = True) -> Policies:
    """Compile every rule once (types checked: an unknown variable is an error here, not at run
    time); :class:`PolicyCompileError` lists each rule that does not compile, at its place.
    ``fast_matches=False``: every rule runs as written (the reference the rewrite is tested against)."""
    if not rules:
        return Policies()
    cel = _runtime()
    kinds = (("manifest", MANIFEST_VARIABLES), ("action", ACTION_VARIABLES))
    # rules are checked in the environment of what users may write; they run in one that also
    # declares the matches() of cel_matches (when google-re2 is installed)
    written = {kind: cel.NewEnv(variables=dict.fromkeys(names, cel.Type.DYN)) for kind, names in kinds}
    declared = cel_matches.declaration(cel) if fast_matches else None
    envs = written if declared is None else {
        kind: cel.NewEnv(variables=dict.fromkeys(names, cel.Type.DYN), functions=[declared]) for kind, names in kinds}
    compiled: dict[str, list[CompiledRule]] = {"manifest": [], "action": []}
    problems: list[str] = []
    for rule in rules:
        try:
            program = written[rule.on].compile(rule.expression)
        except RuntimeError as exc:
            text = str(exc).removeprefix("INVALID_ARGUMENT: ").removesuffix(" [INVALID_ARGUMENT]")
            head, _, caret = text.replace(" (in container '')", "").partition("\n")
            available = ", ".join(MANIFEST_VARIABLES if rule.on == "manifest" else ACTION_VARIABLES)
            problems.append(_problem(rule, f"does not compile: {head.removeprefix('ERROR: ')}",
                                     f"{caret.strip()}\n    (a rule on: {rule.on} sees {available})"
                                     .replace("\n |", "\n    |")))
            continue
        returns = program.return_type()
        if returns not in (cel.Type.BOOL, cel.Type.DYN):
            problems.append(_problem(rule, f"evaluates to {returns.name().lower()}, not a bool",
                                     "write a condition that is true when the input complies"))
            continue
        try:
            labels = parse_selectors([rule.selector]) if rule.selector else ()
        except SelectionError as exc:
            problems.append(f"{rule.where}: selector of rule {rule.name!r}: {str(exc).replace('--selector ', '')}")
            continue
        fast = _fast(rule, program, written[rule.on], envs[rule.on]) if declared is not None else None
        compiled[rule.on].append(CompiledRule(
            rule=rule, program=program if fast is None else fast[1], labels=labels,
            source=rule.expression if fast is None else fast[0], original=None if fast is None else program,
            reads=_reads(rule.expression, MANIFEST_VARIABLES if rule.on == "manifest" else ACTION_VARIABLES)))
    if problems:
        raise PolicyCompileError(problems)
    return Policies(manifest_rules=tuple(compiled["manifest"]), action_rules=tuple(compiled["action"]), envs=envs,
                    digest=rules_digest(rules))


def rules_digest(rules: Sequence[PolicyRule]) -> str | None:
    """``sha256:<hex>`` over what the rules say (not where they are written); None for no rules.
    A saved plan records it: apply refuses the plan once the project's rules are different."""
    if not rules:
        return None
    said = sorted([r.name, r.severity, r.on, r.expression, r.message, sorted(r.targets) if r.targets is not None
                   else None, r.selector] for r in rules)
    return "sha256:" + hashlib.sha256(json.dumps(said, separators=(",", ":")).encode()).hexdigest()


# -- the schedule helper -----------------------------------------------------------------------

_FULL = {name: list(range(low, high + 1)) for name, (low, high) in cron.RANGES.items()}
_VIEW_NAMES = {"minute": "minutes", "hour": "hours", "dayOfMonth": "daysOfMonth", "month": "months",
               "dayOfWeek": "daysOfWeek"}


_VIEWS: dict[str, dict[str, list[int]] | None] = {}  # by the schedule's repr (plain YAML data)
_VIEWS_LIMIT = 16_384


def _expanded(schedule: Mapping[str, Any]) -> dict[str, list[int]] | None:
    try:
        lists = (cron.cron_to_schedule(schedule["cron"]) if "cron" in schedule
                 else cron.normalize_schedule({f: list(schedule[f]) for f in cron.FIELDS}))
    except (cron.CronError, KeyError, TypeError, ValueError):
        return None  # validation reports the schedule itself
    view = {_VIEW_NAMES[f]: (_FULL[f] if lists[f] == ["*"] else [int(v) for v in lists[f]]) for f in cron.FIELDS}
    if lists["dayOfMonth"] != ["*"]:
        view["daysOfWeek"] = _FULL["dayOfWeek"]  # the dates fall on every weekday over the months
    return view


def schedule_view(manifest: Mapping[str, Any] | None) -> dict[str, list[int]] | None:
    """The ``schedule`` variable: the manifest's schedule with every list expanded (see above).
    Remembered by the schedule's ``repr``, which tells apart what JSON would (1, 1.0, True, "1")."""
    spec = (manifest or {}).get("spec")
    schedule = spec.get("schedule") if isinstance(spec, Mapping) else None
    if not isinstance(schedule, Mapping):
        return None
    key = repr(schedule)
    if key in _VIEWS:
        return _VIEWS[key]
    if len(_VIEWS) >= _VIEWS_LIMIT:
        _VIEWS.clear()
    view = _VIEWS[key] = _expanded(schedule)
    return view


# -- judging -------------------------------------------------------------------------------------

def _labels(manifest: Mapping[str, Any] | None) -> Mapping[str, Any]:
    meta = (manifest or {}).get("metadata")
    labels = meta.get("labels") if isinstance(meta, Mapping) else None
    return labels if isinstance(labels, Mapping) else {}


def _subject(manifest: Mapping[str, Any] | None) -> str:
    spec = (manifest or {}).get("spec")
    meta = (manifest or {}).get("metadata")
    name = spec.get("name") if isinstance(spec, Mapping) else None
    if not name and isinstance(meta, Mapping):
        name = meta.get("name")
    return str(name or "<unnamed>")


def _combined(policies: Policies, env: Any, rules: Sequence[CompiledRule]) -> tuple[Any, frozenset[str]]:
    """The program returning the results of ``rules`` as one list (None when they cannot be one:
    together they pass the runtime's limit on an expression's size or depth, though each compiles
    alone; judged one by one then), and the variables they read."""
    # the rules outlive the cache (it belongs to the Policies holding them); all of a kind's rules
    # (the usual case) are keyed by their tuple's id, a subset by the ids of its rules
    key: Any = id(rules) if isinstance(rules, tuple) else tuple(map(id, rules))
    found = policies.combined.get(key)
    if found is None or (isinstance(rules, tuple) and found[0] is not rules):
        try:
            # each expression on lines of its own: a trailing // comment cannot swallow the next one
            program = env.compile("[" + ",".join(f"(\n{r.source}\n)" for r in rules) + "]")
        except RuntimeError:
            program = None
        found = policies.combined[key] = (rules if isinstance(rules, tuple) else None, program,
                                          frozenset().union(*(r.reads for r in rules)))
    return found[1], found[2]


def _evaluated(program: Any, activation: Any, cel: Any) -> tuple[Any, bool]:
    """The program's value on the input and whether it failed. The runtime raises (rather than
    returning an error value) when an evaluation passes its iteration budget or recursion limit,
    e.g. nested comprehensions over lists: a failure like any other, so the rule says no."""
    try:
        result = program.eval(activation)
    except RuntimeError as exc:
        return str(exc), True
    return result.value(), result.type() == cel.Type.ERROR


def _rule_value(compiled: CompiledRule, activation: Any, cel: Any) -> tuple[Any, bool]:
    """One rule's value and whether it failed; a rewritten rule that fails runs again as written,
    so that the reason is the runtime's own (the same words as without the rewrite)."""
    value, failed = _evaluated(compiled.program, activation, cel)
    if failed and compiled.original is not None:
        return _evaluated(compiled.original, activation, cel)
    return value, failed


_EVERYWHERE: tuple[None, tuple[()]] = (None, ())  # no targets, no selector: applies to every input


def _applicable(policies: Policies, rules: tuple[CompiledRule, ...], *, target: str | None,
                labels: Mapping[str, Any]) -> Sequence[CompiledRule]:
    """The rules whose targets and selector take this input: each distinct selection checked once;
    ``rules`` itself when they all do."""
    groups = policies.groups.get(id(rules))
    if groups is None or groups[0] is not rules:
        by_selection: dict[Any, list[CompiledRule]] = {}
        for compiled in rules:
            by_selection.setdefault(compiled.selection, []).append(compiled)
        groups = policies.groups[id(rules)] = (rules, [(sel, {id(r) for r in members})
                                                        for sel, members in by_selection.items()
                                                        if sel != _EVERYWHERE])
    if not groups[1]:
        return rules
    left_out: set[int] = set()
    for selection, members in groups[1]:
        if not _selected(selection, target=target, labels=labels):
            left_out |= members
    return [r for r in rules if id(r) not in left_out] if left_out else rules


def _judge(policies: Policies, rules: tuple[CompiledRule, ...], env: Any, data: dict[str, Any], *,
           target: str | None, labels: Mapping[str, Any], subject: str, kind: str | None,
           source: str | None, one_by_one: bool = False) -> list[Verdict]:
    """The verdicts of ``rules`` on one input. ``data`` lacks ``schedule``, which is worked out
    here when a rule that applies reads it. Together (the default), the rules that apply run as
    ONE program over one activation holding only the variables they read: a CEL evaluation
    converts its whole input, and each evaluation has a fixed cost. ``one_by_one``: each rule's
    own program over every variable, the reference the combined program is tested against."""
    applicable = _applicable(policies, rules, target=target, labels=labels)
    if not applicable:
        return []
    cel = _runtime()
    values: list[Any] | None = None
    if one_by_one:
        data["schedule"] = schedule_view(data["manifest"])
        activation = env.Activation(data=data)
    else:
        program, reads = _combined(policies, env, applicable)
        if "schedule" in reads:
            data["schedule"] = schedule_view(data["manifest"])
        activation = env.Activation(data={name: data[name] for name in reads})
        if len(applicable) > 1 and program is not None:
            try:
                together = program.eval(activation)
            except RuntimeError:  # over the runtime's budget: one by one, for the rule and the reason
                together = None
            if together is not None and together.type() != cel.Type.ERROR:  # an error: one by one, for the reason
                values = together.plain_value()
    out = []
    for index, compiled in enumerate(applicable):
        if values is not None:
            value, failed = values[index], False
        else:
            value, failed = _rule_value(compiled, activation, cel)
        if value is True:
            continue
        rule = compiled.rule
        message = rule.message
        if failed:
            message += f" (the rule could not be evaluated: {value})"
        elif value is not False:
            message += f" (the rule evaluated to {value!r}, not a bool)"
        out.append(Verdict(rule=rule.name, severity=rule.severity, message=message, subject=subject, kind=kind,
                           source=source, rule_source=rule.where))
    return out


def manifest_verdicts(policies: Policies, manifest: Mapping[str, Any], *, target: str | None,
                      source: str | None = None, one_by_one: bool = False) -> list[Verdict]:
    """The manifest rules' verdicts on one manifest document (``one_by_one``: see :func:`_judge`)."""
    if not policies.manifest_rules:
        return []
    labels = _labels(manifest)
    data = {"manifest": manifest, "target": target or "", "labels": labels}
    return _judge(policies, policies.manifest_rules, policies.envs["manifest"], data, target=target,
                  labels=labels, subject=_subject(manifest), kind=None, source=source, one_by_one=one_by_one)


def _issues_of(policies: Policies, documents: Sequence[LoadedDocument], target: str | None) -> list[Issue]:
    issues = []
    for doc in documents:
        for verdict in manifest_verdicts(policies, doc.data, target=target):
            mark = doc.mark(("metadata", "name"))
            issues.append(Issue(doc.file, mark.line, mark.col, f"policy {verdict.rule}", verdict.message,
                                hint=f"rule at {verdict.rule_source}",
                                severity="error" if verdict.denied else "warning"))
    return issues


@collector.pausing  # a verdict and an issue per violation, next to every loaded manifest (engine.collector)
def manifest_issues(policies: Policies, documents: Iterable[LoadedDocument], *, target: str | None,
                    ranges: Ranges | None = None) -> list[Issue]:
    """Manifest rules as validation issues, located at each manifest's ``metadata.name``: a deny
    is an error (the manifest is invalid), a warn a warning. ``ranges``: how the work over
    documents[start:stop] is run (the session passes :func:`reconciler.cores.in_ranges`, which
    judges on every core, each process over a contiguous range); the same issues in the same
    order either way. None: here, in one go (the engine forks nothing itself)."""
    documents = documents if isinstance(documents, Sequence) else list(documents)
    if not policies.manifest_rules:
        return []
    # compiled before any fork, so that no child compiles it again
    _combined(policies, policies.envs["manifest"], policies.manifest_rules)

    def work(start: int, stop: int) -> list[Issue]:
        return _issues_of(policies, documents[start:stop], target)

    return work(0, len(documents)) if ranges is None else ranges(work, len(documents))


@collector.pausing  # the issues and their sort keys: a full pass would walk every loaded manifest
def with_manifest_issues(report: ValidationReport, policies: Policies, *, target: str | None,
                         ranges: Ranges | None = None) -> ValidationReport:
    """``report`` with the manifest rules' issues on its valid documents added (in place), sorted
    as validation sorts them. The one place validate, plan, apply, watch and CI judge manifests."""
    if not policies.manifest_rules:
        return report
    report.issues = sorted([*report.issues, *manifest_issues(policies, report.documents, target=target, ranges=ranges)],
                           key=lambda i: (i.file, i.line, i.col, i.field))
    return report


def action_verdicts(policies: Policies, action: Mapping[str, Any], *, manifest: Mapping[str, Any] | None,
                    desired: Mapping[str, Any] | None, live: Mapping[str, Any] | None, target: str | None,
                    source: str | None = None, labels: Mapping[str, Any] | None = None,
                    one_by_one: bool = False) -> list[Verdict]:
    """The action rules' verdicts on one planned write; ``labels`` default: the manifest's."""
    if not policies.action_rules:
        return []
    labels = _labels(manifest) if labels is None else labels
    data = {"manifest": manifest, "target": target or "", "labels": labels, "action": action, "desired": desired,
            "live": live}
    return _judge(policies, policies.action_rules, policies.envs["action"], data, target=target, labels=labels,
                  subject=str(action.get("name")), kind=str(action.get("kind")), source=source, one_by_one=one_by_one)


def _action_data(action: Action) -> dict[str, Any]:
    return {"kind": action.kind.value, "name": action.name, "id": action.id, "previous_name": action.previous_name,
            "changes": [c.path for c in action.changes]}


def judge_plan(policies: Policies, plan: Plan, *, documents: Sequence[LoadedDocument], desired: Sequence[Desired],
               live: Sequence[Live], target: str | None, removed: Sequence[Removed] = ()) -> Plan:
    """The plan with the action rules' verdicts on each of its writes: a deny is one of the plan's
    errors (it is not applyable: apply refuses it and writes nothing), a warn one of its warnings;
    both are kept in ``plan.policy``. ``documents`` and ``desired`` run in parallel; ``removed``:
    the manifests ``--changed-since`` found removed (their labels, for deletes)."""
    plan = replace(plan, policy_digest=policies.digest)
    if not policies.action_rules:
        return plan
    manifests = {want.name: doc.data for doc, want in zip(documents, desired, strict=True)}
    live_by_id = {item.id: item for item in live}
    removed_labels = {r.name: r.labels for r in removed}
    verdicts: list[Verdict] = []
    for action in plan.writes:
        have = live_by_id.get(action.id) if action.id else None
        manifest = manifests.get(action.name)
        verdicts += action_verdicts(policies, _action_data(action), manifest=manifest,
                                    desired=dict(action.body) if action.body is not None else None,
                                    live=have.comparable if have is not None else None, target=target,
                                    source=action.source,
                                    labels=removed_labels.get(action.name, {}) if manifest is None else None)
    if not verdicts:
        return plan
    return replace(plan, policy=(*plan.policy, *verdicts),
                   errors=(*plan.errors, *(v.line() for v in verdicts if v.denied)),
                   warnings=tuple(sorted((*plan.warnings, *(v.line() for v in verdicts if not v.denied)))))


# -- policy test cases -------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class TestOutcome:
    """One test case run: what denied and warned, against what it expected."""

    test: PolicyTest
    denied: frozenset[str] = frozenset()
    warned: frozenset[str] = frozenset()
    verdicts: tuple[Verdict, ...] = ()
    unknown: frozenset[str] = frozenset()  # expected rule names no rule has (a typo passes nothing)
    error: str | None = None  # the input could not be judged (an action test's manifest is invalid)

    @property
    def passed(self) -> bool:
        return (self.error is None and not self.unknown and self.denied == self.test.expect_deny
                and self.warned == self.test.expect_warn)

    def mismatches(self) -> list[str]:
        if self.error is not None:
            return [self.error]
        out = [f"expects rule(s) that do not exist: {', '.join(sorted(self.unknown))}"] if self.unknown else []
        for what, got, want in (("deny", self.denied, self.test.expect_deny),
                                ("warn", self.warned, self.test.expect_warn)):
            if got - want:
                out.append(f"unexpected {what}: {', '.join(sorted(got - want))}")
            if want - got:
                out.append(f"expected {what} did not happen: {', '.join(sorted(want - got))}")
        return out


def _test_action(test: PolicyTest) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any] | None]:
    """The action, the create/PATCH body and the live definition (comparable form) a test case
    describes, built as a plan builds them."""
    from reconciler.engine import diff as diffs
    from reconciler.engine.normalize import compare_view, desired_from_manifest, live_from_api
    from reconciler.specs.load import LoadedDocument
    from reconciler.specs.model import Manifest

    manifest = dict(test.manifest) if test.manifest is not None else None
    body: dict[str, Any] | None = None
    changes: list[str] = []
    live = live_from_api({"id": "test", **test.live}).comparable if test.live is not None else None
    name = _subject(manifest) if manifest is not None else str((test.live or {}).get("name") or "<unnamed>")
    if manifest is not None and test.action != "delete":
        doc = LoadedDocument(file=test.file, index=0, data=manifest, line=test.line, col=test.col)
        want = desired_from_manifest(Manifest.from_document(doc))
        body, name = dict(want.body), want.name
        if live is not None:
            changes = [c.path for c in diffs.diff(compare_view(want.comparable, live), want.comparable)]
    action = {"kind": test.action, "name": name, "id": (test.live or {}).get("id"), "previous_name": None,
              "changes": changes}
    return action, body, live


def run_tests(project: Policies, tests: Sequence[PolicyTest]) -> list[TestOutcome]:
    """Run each case through the rules of its own file that it concerns (manifest rules, or the
    action rules when it has an ``action``) and compare the rule names that denied and warned with
    its expectations. Own file only: a policy file and its tests are one unit, which a rule added
    in another file cannot break."""
    outcomes = []
    for test in tests:
        policies = project.of_file(test.file)
        known = {c.rule.name for c in (*policies.manifest_rules, *policies.action_rules)}
        unknown = frozenset((test.expect_deny | test.expect_warn) - known)
        if test.action is None:
            verdicts = manifest_verdicts(policies, test.manifest or {}, target=test.target)
        else:
            try:
                action, body, live = _test_action(test)
            except ValueError as exc:  # pydantic's ValidationError is one
                first = str(exc).strip().splitlines()
                outcomes.append(TestOutcome(test=test, unknown=unknown,
                                            error="its manifest is not a valid manifest, so no action can be "
                                                  f"planned from it: {' '.join(first[:3])} (check it with "
                                                  "`reconciler validate`)"))
                continue
            verdicts = action_verdicts(policies, action, manifest=test.manifest, desired=body, live=live,
                                       target=test.target)
        outcomes.append(TestOutcome(test=test, denied=frozenset(v.rule for v in verdicts if v.denied),
                                    warned=frozenset(v.rule for v in verdicts if not v.denied),
                                    verdicts=tuple(verdicts), unknown=unknown))
    return outcomes
