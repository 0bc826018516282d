"""The steps manifests take between loading and writing, the same whether they are files
(``plan``, ``apply``, ``watch``, ``ci comment``) or one custom resource (the operator): references
by name resolved to the target's ids, the project's ignore rules, and the policies; and
``reconciler validate``'s road (:func:`validate_project`), which takes the same policy step.

Why apart from :mod:`reconciler.session`: the session (which holds them as ``Session.steps``)
is the one road from flags or the operator's configuration; these are what both roads do with
what they loaded, and each is a short call into the engine or the API, kept in one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler import cores
from reconciler.api import refs as api_refs
from reconciler.api.client import Client
from reconciler.engine import ignore as ignoring
from reconciler.engine import policy
from reconciler.engine import refs as engine_refs
from reconciler.engine.plan import Plan
from reconciler.engine.select import Removed
from reconciler.engine.types import Desired, Live
from reconciler.engine.verdicts import Verdict
from reconciler.specs import environments, secrets
from reconciler.specs.config import find_config, load_config
from reconciler.specs.controls import IgnoreRule
from reconciler.specs.load import LoadedDocument
from reconciler.specs.policies import PolicyRule
from reconciler.specs.validate import ValidationReport, project_config_issues

__all__ = ["Rules", "Steps", "validate_project"]


@dataclass(frozen=True)
class Rules:
    """Policy rules compiled once, and the target name they see (the operator's ``--policy`` files
    and ``--policy-target``; the CLI judges by reconciler.yaml's rules and ``--target``)."""

    compiled: policy.Policies
    target: str | None

    @classmethod
    def compile(cls, rules: Sequence[PolicyRule], *, target: str | None) -> Rules:
        """No rules: nothing compiled, and the CEL runtime is never imported."""
        return cls(policy.compile_policies(rules), target)


@dataclass(frozen=True, kw_only=True)
class Steps:
    """The policy rules and the ignore rules of one session, and what they do to manifests."""

    rules: Rules
    ignore: tuple[IgnoreRule, ...] = ()

    async def resolve(self, client: Client, desired: Sequence[Desired]) -> engine_refs.ResolvedRun:
        """References by name -> this target's ids, one list call per kind (engine.refs, api.refs);
        the run's ``errors`` name what matches nothing, or several."""
        return await api_refs.resolve(api_refs.Catalog(client), desired)

    def with_ignore_rules(self, desired: Sequence[Desired], manifests: Sequence[Mapping[str, Any]]) -> tuple[Desired, ...]:
        """Each of ``desired`` (parallel to its ``manifests``) with the paths of the ignore rules
        that select it (by the manifest's labels and name)."""
        metadata = [m.get("metadata") or {} for m in manifests]
        return ignoring.with_rules(desired, [m.get("labels") or {} for m in metadata],
                                   [str(m.get("name")) for m in metadata], self.ignore)

    def with_manifest_issues(self, report: ValidationReport) -> ValidationReport:
        """``report`` with the manifest rules' issues on its valid documents (a deny is an error),
        judged on every core when there are many (:func:`reconciler.cores.in_ranges`)."""
        return policy.with_manifest_issues(report, self.rules.compiled, target=self.rules.target,
                                           ranges=cores.in_ranges)

    def manifest_verdicts(self, document: LoadedDocument) -> list[Verdict]:
        """The manifest rules' verdicts on one manifest."""
        return policy.manifest_verdicts(self.rules.compiled, document.data, target=self.rules.target,
                                        source=document.file)

    def judge(self, plan: Plan, *, documents: Sequence[LoadedDocument], desired: Sequence[Desired],
              live: Sequence[Live], removed: Sequence[Removed] = ()) -> Plan:
        """``plan`` with the action rules' verdicts on its writes (a deny errs the plan)."""
        return policy.judge_plan(self.rules.compiled, plan, documents=documents, desired=desired, live=live,
                                 target=self.rules.target, removed=removed)


def validate_project(paths: Sequence[Path], *, config: Path | None, target: str | None) -> ValidationReport:
    """``reconciler validate``'s road, which needs no API and must report a broken project config
    rather than stop at it: the config checked like the manifests (its issues first in the
    report), the manifests as ``target`` sees them, then the project's manifest policies through
    :class:`Steps` (compiled once; a rule that does not compile raises, located)."""
    found = config or find_config(list(paths))
    if found is not None and found.is_absolute() and found.is_relative_to(Path.cwd()):
        found = found.relative_to(Path.cwd())  # messages name it as the user would type it
    config_issues = project_config_issues(found) if found else []
    broken = any(i.severity == "error" for i in config_issues)  # a warning (a freeze with no end) still loads
    project = load_config(found) if found and not broken else None
    if broken and target:  # a target cannot be resolved from a broken config
        report = ValidationReport(files=1)
    else:
        # secret files stay in the project (its config's directory, else the paths) or allowedDirs
        roots = secrets.secret_roots(config_path=found, allowed_dirs=project.secret_dirs if project else (),
                                     paths=list(paths))
        report = environments.validate_for(list(paths), targets=project.targets if project else None,
                                           target_name=target, overlays_root=found.parent if found else None,
                                           secret_roots=roots)
        if project is not None:
            report = Steps(rules=Rules.compile(project.policies.rules, target=target)).with_manifest_issues(report)
    if config_issues:
        report.issues = sorted([*config_issues, *report.issues], key=lambda i: (i.file, i.line, i.col, i.field))
    return report
