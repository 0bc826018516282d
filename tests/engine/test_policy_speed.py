"""What makes policies fast must not change a verdict: the matches() rewrite (a literal pattern
compiled once, engine.cel_matches) against the runtime's own matches(), and judging on every core
(reconciler.cores) against one process. Google's CEL runtime and google-re2, really run; the forks
are real processes."""

from __future__ import annotations

import functools
import gc
import os
import sys
import threading
from typing import Any

import pytest

from reconciler import cores
from reconciler.engine import cel_matches, policy
from reconciler.specs.load import LoadedDocument
from reconciler.specs.policies import PolicyRule

from .helpers import manifest_data


def rule(name: str, expression: str, **kw: Any) -> PolicyRule:
    return PolicyRule(name=name, expression=expression, message=f"{name} says no", file="reconciler.yaml", line=3,
                      **kw)


def test_the_rewrite_renames_only_a_matches_call_on_a_string_literal() -> None:
    def every(literal: str) -> str:
        return literal

    fn = cel_matches.FUNCTION
    assert cel_matches.rewrite("x.matches('^a$')", every) == f"x.{fn}('^a$')"
    # spaces, comments and newlines between the tokens; raw and triple-quoted literals
    assert cel_matches.rewrite("x . matches ( r'\\d' ) // y.matches('a')\n|| y.matches('''a\nb''')", every) == (
        f"x . {fn} ( r'\\d' ) // y.matches('a')\n|| y.{fn}('''a\nb''')")
    # a raw string ends at its first quote, backslash or not: what follows is code
    assert cel_matches.rewrite("r'a\\' + x.matches('c')", every) == f"r'a\\' + x.{fn}('c')"
    for untouched in ["'x.matches(\\'a\\')' == y",  # inside a string
                      "\"x.matches('a')\" == y", "'''x.matches('a')''' == y",
                      "x.matches(b'a')",  # bytes: not a pattern
                      "x.matches(p)", "x.matches('a' + p)", "x.matches(('a'))",  # not one literal
                      "matches(x, 'a')",  # the global form: left as written
                      "x.matches('unterminated)"]:
        assert cel_matches.rewrite(untouched, every) is None, untouched
    # a literal the caller refuses (a pattern RE2 does not accept) is left as written
    assert cel_matches.rewrite("x.matches('(') && y.matches('b')", lambda lit: None if "(" in lit else lit) == (
        f"x.matches('(') && y.{fn}('b')")


# Patterns where RE2 and Python's re disagree, and the escapes a CEL literal decodes
PATTERNS = ["^[0-9a-f]{24}$", "a$", "^$", "", "(?i)DEMO", "\\bdemo\\b", "a.b", "(?s)a.b", "\\pL+$", "^\\p{Greek}",
            "[[:alpha:]]+", "\\Qa.b\\E", "x*", "^\\d{2,}", "é", "(a|ab)(c|bcd)(d*)", "\\x{263a}", "(?U)a+?"]
TEXTS = ["0123456789abcdef01234567", "a\n", "", "demo", "a-demo-b", "a\nb", "aXb", "αβγ", "Ωmega", "a.b", "12",
         "é", "abcd", "☺", "ab\u2028c"]


def test_re2_literal_patterns_give_the_runtimes_answers() -> None:
    """For every (pattern, text), the rewritten rule says what the runtime's matches() says."""
    rules = [rule(f"p{i}", f"!labels.text.matches({literal!r})")
             for i, literal in enumerate(PATTERNS)]
    fast = policy.compile_policies(rules)
    written = policy.compile_policies(rules, fast_matches=False)
    assert all(r.original is not None for r in fast.manifest_rules)  # every one rewritten
    assert all(r.original is None for r in written.manifest_rules)
    matched = 0
    for text in TEXTS:
        doc = manifest_data("demo-a")
        doc["metadata"]["labels"] = {"text": text}
        got = policy.manifest_verdicts(fast, doc, target=None)
        assert got == policy.manifest_verdicts(written, doc, target=None), text
        assert got == policy.manifest_verdicts(fast, doc, target=None, one_by_one=True)
        matched += len(got)
    assert 0 < matched < len(PATTERNS) * len(TEXTS)  # both answers occur


def test_verdicts_are_the_same_with_and_without_the_rewrite() -> None:
    rules = [
        rule("escaped", "manifest.metadata.name.matches('^demo-\\\\d+$')"),  # CEL decodes \\d to \d
        rule("raw", "manifest.metadata.name.matches(r'^demo-\\d+$')", severity="warn"),
        rule("in-text", "manifest.metadata.name != 'x.matches(\"y\")' && manifest.metadata.name.matches(\"^de\")"),
        rule("not-literal", "manifest.metadata.name.matches(labels.pattern)"),  # not rewritten; fails without it
        rule("invalid", "manifest.metadata.name.matches('(')"),  # RE2 refuses it: the runtime's error
        rule("not-a-string", "labels.size.matches('^[0-9]+$')"),  # an int receiver: no such overload
    ]
    fast = policy.compile_policies(rules)
    written = policy.compile_policies(rules, fast_matches=False)
    assert [r.original is not None for r in fast.manifest_rules] == [True, True, True, False, False, True]
    messages = set()
    for name, labels in [("demo-12", {"pattern": "^demo", "size": 3}), ("demo-x", {"pattern": "(", "size": "7"}),
                         ("other", {})]:
        doc = manifest_data(name)
        doc["metadata"]["labels"] = labels
        for one_by_one in (False, True):
            got = policy.manifest_verdicts(fast, doc, target=None, one_by_one=one_by_one)
            assert got == policy.manifest_verdicts(written, doc, target=None, one_by_one=one_by_one), (name, one_by_one)
            messages |= {v.message for v in got}
    assert any("invalid regular expression" in m and m.startswith("invalid says no") for m in messages)
    # the rewritten rule's failure reads as the runtime's own: the function as the user wrote it
    assert any(m.startswith("not-a-string says no") and ".matches(string)" in m
               and cel_matches.FUNCTION not in m for m in messages), messages
    assert {"escaped says no", "raw says no"} <= messages  # demo-x and other fail both


def test_a_rule_cannot_call_the_rewrites_function_itself() -> None:
    with pytest.raises(policy.PolicyCompileError, match=f"undeclared reference to '{cel_matches.FUNCTION}'"):
        policy.compile_policies([rule("direct", f"manifest.metadata.name.{cel_matches.FUNCTION}('a')")])


MIXED = [
    rule("prefix", "manifest.metadata.name.startsWith('demo-')"),  # deny
    rule("concurrency", "manifest.spec.batchPredictionJob.numConcurrent <= 8", severity="warn"),  # missing: fails
    rule("tier-is-text", "labels.tier", selector="tier!=gold"),  # a string, not a bool
    rule("id", "manifest.spec.batchPredictionJob.deploymentId.matches('^[0-9a-f]{24}$')", severity="warn"),
    rule("not-bronze", "target != 'prod' || labels.tier != 'bronze'", targets=("prod",)),
]


def _documents(count: int) -> list[LoadedDocument]:
    out = []
    for i in range(count):
        data = manifest_data(f"demo-{i}" if i % 3 else f"x-{i}")
        if i % 4:
            data["spec"]["batchPredictionJob"]["numConcurrent"] = i % 12
        if i % 5 == 0:
            data["metadata"]["labels"] = {"tier": ["bronze", "gold", "critical"][i % 3]}
        if i % 7 == 0:
            data["spec"]["batchPredictionJob"]["deploymentId"] = f"deployment-{i}"  # not 24 hex digits
        out.append(LoadedDocument(file=f"specs/f{i // 10}.yaml", index=i % 10, data=data, line=1 + 8 * (i % 10),
                                  col=1))
    return out


@pytest.mark.fresh_process
def test_every_core_gives_the_issues_of_one_process_in_the_same_order() -> None:
    compiled = policy.compile_policies(MIXED)
    docs = _documents(301)
    one = policy.manifest_issues(compiled, docs, target="prod")  # ranges=None: here, in one go
    for workers in (2, 3):
        ranges = functools.partial(cores.in_ranges, minimum=1, workers=workers)
        assert policy.manifest_issues(compiled, docs, target="prod", ranges=ranges) == one
    # and one process gives what each manifest judged on its own, rule by rule, gives
    assert [(i.field, i.message) for i in one] == [
        (f"policy {v.rule}", v.message) for d in docs
        for v in policy.manifest_verdicts(compiled, d.data, target="prod", one_by_one=True)]
    fields = {(i.field, i.severity) for i in one}
    assert {("policy prefix", "error"), ("policy concurrency", "warning"), ("policy tier-is-text", "error"),
            ("policy id", "warning"), ("policy not-bronze", "error")} <= fields
    texts = {i.message for i in one}
    assert any("could not be evaluated" in t for t in texts) and any("not a bool" in t for t in texts)


def _pids(start: int, stop: int) -> list[tuple[int, int]]:
    return [(i, os.getpid()) for i in range(start, stop)]


@pytest.mark.fresh_process
def test_ranges_run_in_forked_processes_and_come_back_in_order() -> None:
    out = cores.in_ranges(_pids, 10, minimum=1, workers=3)
    assert [i for i, _ in out] == list(range(10))
    pids = [pid for _, pid in out]
    # this process takes the first range (4 of 10), its two workers the others (either may take both)
    assert pids[:4] == [os.getpid()] * 4 and os.getpid() not in pids[4:]
    # below the minimum, or with one worker: here
    assert {pid for _, pid in cores.in_ranges(_pids, 10, minimum=11, workers=3)} == {os.getpid()}
    assert {pid for _, pid in cores.in_ranges(_pids, 10, minimum=1, workers=1)} == {os.getpid()}


def test_a_process_running_other_threads_is_not_forked() -> None:
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert not cores.can_fork()  # the one test every fork of the program goes through
        assert {pid for _, pid in cores.in_ranges(_pids, 10, minimum=1, workers=2)} == {os.getpid()}
        from reconciler.api.forked import ForkedListing

        assert ForkedListing.start(lambda: None) is None  # the listing is not forked either: listed here
    finally:
        release.set()
        other.join()


def _fails(start: int, stop: int) -> list[int]:
    if start > 0:
        raise ValueError(f"range {start}-{stop} failed")
    return list(range(start, stop))


@pytest.mark.fresh_process
def test_a_failure_in_a_forked_range_is_raised_here() -> None:
    with pytest.raises(ValueError, match="range 5-10 failed"):
        cores.in_ranges(_fails, 10, minimum=1, workers=2)


def test_judging_never_runs_the_cyclic_collector() -> None:
    """A full pass of the collector walks every loaded manifest again (0.3 s at 10,000): judging
    and sorting the issues build only acyclic objects, so it stays off (engine.collector)."""
    from reconciler.specs.validate import ValidationReport

    compiled = policy.compile_policies(MIXED)
    docs = _documents(50)
    passes: list[str] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        frame = sys._getframe(1)
        while phase == "start" and frame is not None:  # a pass that started inside the policy code
            if frame.f_code.co_filename == policy.__file__:
                passes.append(frame.f_code.co_name)
                break
            frame = frame.f_back  # type: ignore[assignment]

    report = ValidationReport(documents=docs)
    threshold = gc.get_threshold()
    gc.callbacks.append(seen)
    gc.set_threshold(200)  # a pass every 200 allocations (judging makes thousands), were it on
    try:
        policy.with_manifest_issues(report, compiled, target="prod")
    finally:
        gc.set_threshold(*threshold)
        gc.callbacks.remove(seen)
    assert report.issues and passes == [] and gc.isenabled()


PARENT = os.getpid()


def _dies_in_a_child(start: int, stop: int) -> list[int]:
    if os.getpid() != PARENT:
        os._exit(9)  # as the kernel's OOM killer would end it: no exception, no result
    return list(range(start, stop))


@pytest.mark.fresh_process
def test_a_range_whose_process_died_is_worked_here() -> None:
    assert cores.in_ranges(_dies_in_a_child, 10, minimum=1, workers=3) == list(range(10))


def test_a_cgroup_cpu_limit_caps_the_cores() -> None:
    assert cores.quota_cores("max 100000\n") is None
    assert cores.quota_cores("100000 100000\n") == 1
    assert cores.quota_cores("150000 100000") == 2  # 1.5 cores: two processes share them
    assert cores.quota_cores("400000 100000") == 4
    assert cores.quota_cores("garbage") is None and cores.quota_cores("5 0") is None
    assert 1 <= cores.cores() <= len(os.sched_getaffinity(0))


def test_a_google_re2_without_its_re2_binding_runs_the_runtimes_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    """``cel_matches`` reaches google-re2's private ``_re2`` binding; a release without it must
    leave every rule as written (same verdicts), never fail the compile."""
    import re2

    monkeypatch.delattr(re2, "_re2")
    rules = [rule("escaped", "manifest.metadata.name.matches('^demo-\\\\d+$')")]
    compiled = policy.compile_policies(rules)
    assert [r.original for r in compiled.manifest_rules] == [None]  # not rewritten
    for name in ("demo-12", "demo-x"):
        assert policy.manifest_verdicts(compiled, manifest_data(name), target=None) == policy.manifest_verdicts(
            policy.compile_policies(rules, fast_matches=False), manifest_data(name), target=None)
