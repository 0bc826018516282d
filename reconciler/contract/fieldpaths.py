"""The field paths a definition has, read off the schemas: what an ignore rule may name.

Why from the schemas: ``spec.ignoreChanges`` and the ``ignoreChanges`` rules of reconciler.yaml
name fields by dotted path (``batchPredictionJob.intakeSettings.url``); a typo would silently
ignore nothing, so a path the contract does not have is an error that names the closest one.
Paths are those of the plan's comparable form: ``enabled``, ``schedule`` (and its five lists),
``batchPredictionJob`` and every property below it, through ``$ref``/``allOf``/``if-then``
(every intake and output adapter's keys). ``name`` is the definition's identity, not a field
that can be ignored. Pure JSON walking: no validator library.
"""

from __future__ import annotations

import difflib
import functools
from typing import Any, Final

from reconciler.contract import cron, schemas

__all__ = ["ROOTS", "check_path", "known_paths"]

ROOTS: Final = ("enabled", "schedule", "batchPredictionJob")
_MAX_DEPTH: Final = 6


def _properties(schema: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every property a schema knows at one location, with each definition of it (several when
    adapters define the same key)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for sub in schemas.iter_subschemas(schema):
        for key, value in (sub.get("properties") or {}).items():
            if isinstance(value, dict):
                out.setdefault(key, []).append(value)
    return out


def _walk(prefix: str, definitions: list[dict[str, Any]], depth: int, out: set[str]) -> None:
    out.add(prefix)
    if depth >= _MAX_DEPTH:
        return
    children: dict[str, list[dict[str, Any]]] = {}
    for definition in definitions:
        for key, subs in _properties(definition).items():
            children.setdefault(key, []).extend(subs)
    for key, subs in children.items():
        _walk(f"{prefix}.{key}", subs, depth + 1, out)


@functools.cache
def known_paths() -> frozenset[str]:
    """Every path an ignore rule may name."""
    spec = schemas.get("definition-spec")["properties"]
    out: set[str] = {"enabled", "schedule", *(f"schedule.{name}" for name in cron.FIELDS)}
    _walk("batchPredictionJob", [spec["batchPredictionJob"]], 0, out)
    return frozenset(out)


def check_path(path: str) -> str | None:
    """None for a known path; else what is wrong, naming the closest known path."""
    known = known_paths()
    if path in known:
        return None
    if path == "name":
        return "'name' is the definition's identity and cannot be ignored (rename with spec.previousNames)"
    close = difflib.get_close_matches(path, sorted(known), n=1, cutoff=0.6)
    if not close:
        # a wrong leaf under a right parent: suggest among the parent's children
        parent = path.rpartition(".")[0]
        siblings = sorted(p for p in known if p.rpartition(".")[0] == parent)
        close = difflib.get_close_matches(path, siblings, n=1, cutoff=0.3) if siblings else []
    hint = f"did you mean `{close[0]}`?" if close else (
        "paths start with enabled, schedule or batchPredictionJob, e.g. batchPredictionJob.numConcurrent")
    return f"unknown field path {path!r}; {hint}"
