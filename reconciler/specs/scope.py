"""The ownership scope a project declares in reconciler.yaml (``scope``, or a target's own).

Why a scope: the API has no labels, so ownership cannot be read off a live object; it is
declared by name prefix and exact names. No scope, no prune. A pure value (the engine plans
with it: :mod:`reconciler.engine.types` re-exports it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Scope"]


@dataclass(frozen=True, kw_only=True)
class Scope:
    """Names this project owns: those starting with ``name_prefix``, plus ``names`` exactly."""

    name_prefix: str | None = None
    names: frozenset[str] = frozenset()

    def contains(self, name: str) -> bool:
        return name in self.names or (self.name_prefix is not None and name.startswith(self.name_prefix))

    def describe(self) -> str:
        parts = [f"names starting with {self.name_prefix!r}"] if self.name_prefix else []
        if self.names:
            parts.append(f"{len(self.names)} exact name(s)")
        return " and ".join(parts) or "nothing"

    def as_dict(self) -> dict[str, Any]:
        return {"name_prefix": self.name_prefix, "names": sorted(self.names)}
