"""The project's policies in the operator: the same rules and the same engine as the CLI, judged
through the operator's session (:meth:`reconciler.session_steps.Steps.manifest_verdicts` and
:meth:`~reconciler.session_steps.Steps.judge`) with the rules of ``reconciler operator --policy FILE``
(in the chart, a ConfigMap), compiled once at start (:mod:`reconciler.operator.opening`).

A custom resource's manifest is judged by the manifest rules before anything is planned; its one
planned action by the action rules before anything is written. A deny stops there with the
resource's ``Synced`` condition ``PolicyDenied`` naming the rule (nothing written); it is judged
again at the next change or resync. A warn is logged, posted as a Warning Event (reason
``PolicyWarning``, once per new set of warnings) and shown as the ``PolicyWarning`` condition.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from reconciler.engine.verdicts import Verdict
from reconciler.errors import PlanError

__all__ = ["PolicyDenied", "warnings"]

log = logging.getLogger("reconciler.operator")


class PolicyDenied(PlanError):
    """A deny rule refused this resource's manifest or its planned action; ``str()`` lists them."""

    def __init__(self, verdicts: Sequence[Verdict]) -> None:
        super().__init__("; ".join(v.line() for v in verdicts))
        self.verdicts = tuple(verdicts)


def warnings(verdicts: Sequence[Verdict]) -> list[str]:
    """The warn verdicts' lines (logged; the outcome carries them to the resource's status);
    :class:`PolicyDenied` when any verdict denies."""
    denied = [v for v in verdicts if v.denied]
    if denied:
        raise PolicyDenied(denied)
    for verdict in verdicts:
        log.warning("%s", verdict.line())
    return [v.line() for v in verdicts]
