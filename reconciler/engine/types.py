"""The engine's values: a manifest ready to plan (:class:`Desired`), a live definition
(:class:`Live`) and the ownership scope (:class:`Scope`). Pure values, no I/O and no library
beyond the standard one but orjson (forms held as their exact JSON bytes, :mod:`engine.exact`),
so that planning can be imported and tested on its own.

``Scope`` is declared with the project config it is parsed from (:mod:`reconciler.specs.scope`,
below the engine in the layers) and re-exported here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from typing import TYPE_CHECKING, Any

import orjson

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

    # ``body`` as its JSON bytes until first read (from_exact's ``body_json``), else None
    _body_json: bytes | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_exact(cls, exact: bytes, body_json: bytes | None = None, **fields: Any) -> Desired:
        """A Desired whose comparable form is read from its exact bytes when first used (the
        manifest cache keeps the bytes): a plan with no changes compares bytes only, so 100,000
        forms are never decoded or held. ``body_json``: the body as JSON, likewise read when first
        used (a plan with no changes sends nothing). ``fields``: every other field."""
        return _from_exact(cls, exact, body_json, **fields)

    def may_hold(self, keys: tuple[str, ...]) -> bool:
        """Whether the body may hold one of ``keys`` as a key, at any depth. False only when sure:
        a body still held as JSON text (from_exact) that names none of them, quoted and followed
        by a colon as orjson writes a key, cannot hold them, so it need not be decoded to look
        (issue #16: looking for references decoded 100,000 bodies at every cached plan)."""
        text = self._body_json
        return text is None or any(needle in text for needle in _key_needles(keys))

    if not TYPE_CHECKING:  # (only the unset slots of from_exact reach here)
        def __getattr__(self, name: str) -> Any:
            if name == "comparable":
                value = read_exact(object.__getattribute__(self, "exact"))
            elif name == "body" and object.__getattribute__(self, "_body_json") is not None:
                value = read_exact(object.__getattribute__(self, "_body_json"))
            else:
                raise AttributeError(name)
            object.__setattr__(self, name, value)
            return value


@functools.lru_cache(maxsize=16)
def _key_needles(keys: tuple[str, ...]) -> tuple[bytes, ...]:
    """Each key as orjson writes a key: quoted, then a colon (keys that need no escaping)."""
    return tuple(orjson.dumps(key) + b":" for key in keys)


def _compile_from_exact() -> Any:
    """Desired.from_exact's body, made without ``__init__`` (2.5 µs instead of 6; 100,000 of them at
    each cached plan): every slot set through its descriptor (bypassing the frozen ``__setattr__``,
    as the generated ``__init__`` does through object's), the two left unset read by
    ``__getattr__``. Generated as dataclasses generates ``__init__``, so that Python's own argument
    parsing checks the names (a loop over the fields in Python took 6 µs)."""
    namespace: dict[str, Any] = {"new": object.__new__, "UNSET": _READ_LATER}
    params, sets = [], []
    for f in fields(Desired):
        namespace[f"set_{f.name}"] = getattr(Desired, f.name).__set__
        if not f.init or f.name == "comparable":
            continue
        if f.name == "body":
            params.append("body=UNSET")
            continue
        if f.default is not MISSING:
            namespace[f"default_{f.name}"] = f.default
            params.append(f"{f.name}=default_{f.name}")
        else:
            params.append(f.name)
        sets.append(f"    set_{f.name}(self, {f.name})")
    source = "\n".join([
        f"def from_exact(cls, exact, body_json=None, /, *, {', '.join(params)}):",
        "    self = new(cls)",
        *sets,
        "    set_exact(self, exact)",
        "    set__body_json(self, body_json)",
        "    if body is not UNSET:",
        "        set_body(self, body)",
        "    elif body_json is None:",
        "        raise TypeError(\"Desired.from_exact() missing required argument: 'body'\")",
        "    return self",
    ])
    exec(source, namespace)  # our own source, built from the dataclass's fields
    return namespace["from_exact"]


_from_exact: Callable[..., Desired] = _compile_from_exact()


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
