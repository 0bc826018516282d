"""The project's policies in the operator: the same rules and the same engine as the CLI
(:mod:`reconciler.engine.policy`), read from policy files given with ``reconciler operator
--policy FILE`` (in the chart, a ConfigMap) and compiled once at start.

A custom resource's manifest is judged by the manifest rules before anything is planned; its one
planned action by the action rules before anything is written. A deny stops there with the
resource's ``Synced`` condition ``PolicyDenied`` naming the rule (nothing written); it is judged
again at the next change or resync. A warn is logged, posted as a Warning Event (reason
``PolicyWarning``, once per new set of warnings) and shown as the ``PolicyWarning`` condition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.engine import policy
from reconciler.engine.plan import Plan
from reconciler.engine.types import Desired, Live
from reconciler.engine.verdicts import Verdict
from reconciler.errors import PlanError
from reconciler.specs.load import LoadedDocument
from reconciler.specs.policies import load_policy_files

__all__ = ["OperatorPolicies", "PolicyDenied", "load"]


class PolicyDenied(PlanError):
    """A deny rule refused this resource's manifest or its planned action; ``str()`` lists them."""

    def __init__(self, verdicts: Sequence[Verdict]) -> None:
        super().__init__("; ".join(v.line() for v in verdicts))
        self.verdicts = tuple(verdicts)


@dataclass(frozen=True, kw_only=True)
class OperatorPolicies:
    """The compiled rules and the target name they see (``--policy-target``; rules with
    ``targets:`` run only when it is one of theirs)."""

    compiled: policy.Policies = field(default_factory=policy.Policies)
    target: str | None = None

    def manifest(self, data: Mapping[str, Any], *, source: str) -> list[Verdict]:
        """The manifest rules' verdicts; :class:`PolicyDenied` when any denies."""
        verdicts = policy.manifest_verdicts(self.compiled, data, target=self.target, source=source)
        _raise_denied(verdicts)
        return verdicts

    def action(self, plan: Plan, *, document: LoadedDocument, desired: Desired, live: Sequence[Live]) -> list[Verdict]:
        """The action rules' verdicts on the plan's one action; :class:`PolicyDenied` when any denies."""
        judged = policy.judge_plan(self.compiled, plan, documents=[document], desired=[desired], live=live,
                                   target=self.target)
        verdicts = list(judged.policy)
        _raise_denied(verdicts)
        return verdicts


def _raise_denied(verdicts: Sequence[Verdict]) -> None:
    denied = [v for v in verdicts if v.denied]
    if denied:
        raise PolicyDenied(denied)


def load(files: Sequence[str], *, target: str | None) -> OperatorPolicies:
    """Read and compile the policy files once (a file or rule that is wrong stops the start, with
    its place); no files: no rules, and the CEL runtime is never imported."""
    if not files:
        return OperatorPolicies(target=target)
    return OperatorPolicies(compiled=policy.compile_policies(load_policy_files(files).rules), target=target)
