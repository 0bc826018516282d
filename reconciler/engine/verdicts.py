"""A policy verdict as a plain value: what the plan, its JSON form and the renderers carry.

Kept apart from :mod:`reconciler.engine.policy` (which compiles and runs the CEL rules through an
extra) so that a plan, a saved plan and every view of it need no CEL runtime.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Verdict"]


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """Rule ``rule`` (``severity`` deny or warn) reported ``message`` for definition ``subject``;
    ``kind`` is the planned action for an action rule (None for a manifest rule); ``source`` where
    the subject's manifest is (``file:line``), when it has one; ``rule_source`` where the rule is."""

    rule: str
    severity: Literal["deny", "warn"]
    message: str
    subject: str
    kind: str | None = None
    source: str | None = None
    rule_source: str | None = None

    @property
    def denied(self) -> bool:
        return self.severity == "deny"

    def line(self) -> str:
        """``policy no-critical-delete denied delete acme-churn: critical definitions are never deleted``."""
        verb = "denied" if self.denied else "warns on"
        what = f"{self.kind} {self.subject}" if self.kind else self.subject
        return f"policy {self.rule} {verb} {what}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "severity": self.severity, "message": self.message, "subject": self.subject,
                "kind": self.kind, "source": self.source, "rule_source": self.rule_source}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        return cls(rule=data["rule"], severity=data["severity"], message=data["message"], subject=data["subject"],
                   kind=data.get("kind"), source=data.get("source"), rule_source=data.get("rule_source"))
