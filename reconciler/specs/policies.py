"""Policy rules and their test cases, read from ``reconciler.yaml`` (``policies.rules``) and the
policy files it names (``policies.files``, ``kind: Policy``, see ``schemas/policy.schema.json``).

Why here: reading and locating is the specs layer's job; every rule keeps where its expression
stands (``file:line:col``) so that a rule that does not compile, or a test case that fails, is
reported at its place. Compiling and evaluating the CEL is :mod:`reconciler.engine.policy`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from reconciler import errors
from reconciler.specs.load import LoadedDocument, read_one_document

__all__ = ["PolicyError", "PolicyRule", "PolicySet", "PolicyTest", "load_policy_files", "rules_from_config"]

Severity = Literal["deny", "warn"]
On = Literal["manifest", "action"]


class PolicyError(errors.ConfigProblems):
    """A policy file or rule is unreadable or invalid; ``problems`` are ``file:line:col: ...`` lines."""


@dataclass(frozen=True, kw_only=True)
class PolicyRule:
    """One rule as written; ``file:line:col`` is where its expression stands."""

    name: str
    expression: str
    message: str
    severity: Severity = "deny"
    on: On = "manifest"
    targets: tuple[str, ...] | None = None
    selector: str | None = None
    file: str = "<rules>"
    line: int = 1
    col: int = 1
    field: str = "expression"  # the dotted path of the expression, for messages

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True, kw_only=True)
class PolicyTest:
    """One test case: the input the rules see and the rule names expected to deny and to warn."""

    name: str
    expect_deny: frozenset[str]
    expect_warn: frozenset[str]
    target: str | None = None
    manifest: Mapping[str, Any] | None = None
    action: str | None = None  # create/update/delete/adopt/rename: an action test
    live: Mapping[str, Any] | None = None
    file: str = "<tests>"
    line: int = 1
    col: int = 1


@dataclass(frozen=True, kw_only=True)
class PolicySet:
    rules: tuple[PolicyRule, ...] = ()
    tests: tuple[PolicyTest, ...] = ()
    files: tuple[str, ...] = field(default=())


def _rule(raw: Mapping[str, Any], doc: LoadedDocument, path: tuple[str | int, ...]) -> PolicyRule:
    mark = doc.mark((*path, "expression"))
    targets = raw.get("targets")
    return PolicyRule(name=raw["name"], expression=raw["expression"], message=raw["message"],
                      severity=raw.get("severity", "deny"), on=raw.get("on", "manifest"),
                      targets=tuple(targets) if targets is not None else None, selector=raw.get("selector"),
                      file=doc.file, line=mark.line, col=mark.col,
                      field=".".join(f"[{p}]" if isinstance(p, int) else p for p in (*path, "expression"))
                      .replace(".[", "["))


def _test(raw: Mapping[str, Any], doc: LoadedDocument, index: int) -> PolicyTest:
    mark = doc.mark(("tests", index, "name"))
    expect = raw.get("expect") or {}
    action = raw.get("action")
    return PolicyTest(name=raw["name"], expect_deny=frozenset(expect.get("deny") or ()),
                      expect_warn=frozenset(expect.get("warn") or ()), target=raw.get("target"),
                      manifest=raw.get("manifest"), action=action["kind"] if action else None,
                      live=action.get("live") if action else None, file=doc.file, line=mark.line, col=mark.col)


def _read_policy_file(path: Path) -> LoadedDocument:
    """One policy file: a bounded read, one YAML document, valid against policy.schema.json."""
    return read_one_document(path, what="policy file", schema_name="policy", error=PolicyError,
                             expected=" (kind: Policy)")


def _check_unique(rules: Iterable[PolicyRule]) -> None:
    seen: dict[str, PolicyRule] = {}
    problems = []
    for rule in rules:
        if rule.name in seen:
            problems.append(f"{rule.where}: rule {rule.name!r} is also defined at {seen[rule.name].where}; "
                            "rule names must be unique across reconciler.yaml and its policy files")
        seen.setdefault(rule.name, rule)
    if problems:
        raise PolicyError(problems)


def load_policy_files(paths: Iterable[str | os.PathLike[str]]) -> PolicySet:
    """The rules and test cases of policy files (``reconciler policy test FILES``)."""
    rules: list[PolicyRule] = []
    tests: list[PolicyTest] = []
    files = []
    for raw_path in paths:
        doc = _read_policy_file(Path(raw_path))
        files.append(doc.file)
        rules += [_rule(r, doc, ("rules", i)) for i, r in enumerate(doc.data.get("rules") or ())]
        tests += [_test(t, doc, i) for i, t in enumerate(doc.data.get("tests") or ())]
    _check_unique(rules)
    return PolicySet(rules=tuple(rules), tests=tuple(tests), files=tuple(files))


def rules_from_config(doc: LoadedDocument, *, config_file: str | os.PathLike[str]) -> PolicySet:
    """The project's policies: ``policies.rules`` of the (schema-valid) config document, then the
    rules and tests of each file of ``policies.files`` (relative to the config's directory)."""
    section = doc.data.get("policies") or {}
    inline = [_rule(r, doc, ("policies", "rules", i)) for i, r in enumerate(section.get("rules") or ())]
    base = Path(config_file).parent
    # the project: the config's directory (as named, and with its own symlinks resolved)
    roots = {Path(os.path.realpath(base)), Path(os.path.realpath(config_file)).parent}
    named = []
    for i, name in enumerate(section.get("files") or ()):
        path = base / name
        mark = doc.mark(("policies", "files", i))
        where = f"{doc.file}:{mark.line}:{mark.col}: policies.files[{i}]"
        resolved = Path(os.path.realpath(path))
        if not any(resolved.is_relative_to(root) for root in roots):
            # rules decide what may be deleted: they come from the project under review, not from
            # wherever a path or a symlink in it points (another checkout, a file the runner can read)
            through = " through a symbolic link" if not Path(name).is_absolute() and ".." not in Path(name).parts else ""
            raise PolicyError([f"{where}: policy file {name!r} is outside the project: it resolves{through} to "
                               f"{resolved}, outside {' and '.join(sorted(map(str, roots)))}\n    hint: keep policy "
                               "files in the project's directory (beside reconciler.yaml), e.g. policies/NAME.yaml"])
        if not path.is_file():
            raise PolicyError([f"{where}: no policy file {str(path)!r} (paths are relative to reconciler.yaml)"])
        named.append(path)
    from_files = load_policy_files(named)
    rules = (*inline, *from_files.rules)
    _check_unique(rules)
    return PolicySet(rules=rules, tests=from_files.tests, files=from_files.files)
