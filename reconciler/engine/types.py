"""The engine's values: a manifest ready to plan (:class:`Desired`), a live definition
(:class:`Live`) and the ownership scope (:class:`Scope`). Pure values, no I/O and no library
beyond the standard one, so that planning can be imported and tested on its own.

``Scope`` is declared with the project config it is parsed from (:mod:`reconciler.specs.scope`,
below the engine in the layers) and re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reconciler.engine.exact import exact_form, read_exact
from reconciler.specs.scope import Scope

__all__ = ["Desired", "Live", "Resolved", "Scope"]


_READ_LATER: dict[str, Any] = {}  # Desired.from_exact's placeholder form (by identity), never kept


@dataclass(frozen=True, kw_only=True, slots=True)  # held once per definition: no __dict__ each
class Desired:
    """One manifest, ready to pair, diff and send. ``body`` is the create/PATCH body with secret
    *references* (``apiKeyFrom``), safe to print or save; ``comparable`` is the normalized form."""

    name: str
    body: dict[str, Any]
    comparable: dict[str, Any]
    previous_names: tuple[str, ...] = ()
    prevent_destroy: bool = False
    deletion_policy: str = "Delete"
    source: str | None = None  # file:line, for messages
    base_dir: str | None = None  # secret files are relative to the manifest's directory
    # where a secret file may resolve (reconciler.specs.secrets); empty: base_dir only
    secret_roots: tuple[str, ...] = ()
    ignore_changes: tuple[str, ...] = ()  # comparable paths never diffed nor sent on update (engine.ignore)
    suspend: bool = False  # out of reconciliation: nothing is written for it
    # ``comparable`` as canonical bytes (engine.exact), worked out from it whenever one is made
    # (dataclasses.replace too: never passed, so never carried over to another comparable)
    exact: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.comparable is not _READ_LATER:
            object.__setattr__(self, "exact", exact_form(self.comparable))

    @classmethod
    def from_exact(cls, exact: bytes, **fields: Any) -> Desired:
        """A Desired whose comparable form is read from its exact bytes when first used (the
        manifest cache keeps the bytes): a plan with no changes compares bytes only, so 100,000
        forms are never decoded or held. ``fields``: every other field but ``comparable``."""
        self = cls(comparable=_READ_LATER, **fields)  # the generated __init__: 3x faster than a loop here
        object.__setattr__(self, "exact", exact)
        object.__delattr__(self, "comparable")  # unset: the first read decodes ``exact`` (__getattr__)
        return self

    if not TYPE_CHECKING:  # (only the unset slot of from_exact's ``comparable`` reaches here)
        def __getattr__(self, name: str) -> Any:
            if name != "comparable":
                raise AttributeError(name)
            form = read_exact(object.__getattribute__(self, "exact"))
            object.__setattr__(self, "comparable", form)
            return form


@dataclass(frozen=True, kw_only=True, slots=True)  # held once per definition: no __dict__ each
class Live:
    """One live definition: its id, name and normalized form (``comparable``)."""

    id: str
    name: str
    comparable: dict[str, Any] = field(repr=False)
    hash: str = ""
    exact: bytes | None = field(default=None, init=False, repr=False, compare=False)  # as Desired.exact

    def __post_init__(self) -> None:
        object.__setattr__(self, "exact", exact_form(self.comparable))


@dataclass(frozen=True, kw_only=True)
class Resolved:
    """A reference by name resolved for a target: ``path`` of the reference in the manifest
    (``batchPredictionJob.intakeSettings.credentialRef``), the kind, the name and the id sent."""

    path: str
    kind: str
    name: str
    id: str
