"""Ignore rules (Terraform's ``lifecycle.ignore_changes``, Argo CD's ``ignoreDifferences``). Pure.

An ignored field is sent on create, but never diffed nor sent on update: a difference under an
ignored path is counted ("2 differences ignored") instead of planned, and the update's PATCH body
leaves the field out. The API's PATCH merges top-level keys only (a nested mapping is replaced
whole), so a nested ignored field is sent with its LIVE value inside its parent, and a field the
live definition lacks is left out of it: either way the live value stays. The typical case:
on-call disables a definition in the UI during an incident; with ``ignoreChanges: [enabled]`` the
next apply does not enable it again.

Paths are the comparable form's (``enabled``, ``schedule.hour``,
``batchPredictionJob.intakeSettings.url``); :mod:`reconciler.contract.fieldpaths` checks them.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reconciler.engine.diff import Change
from reconciler.engine.types import Desired
from reconciler.specs.controls import IgnoreRule

__all__ = ["covers", "split", "strip_body", "with_rules"]

_JOB = "batchPredictionJob"
_MISSING = object()


def covers(paths: Iterable[str], path: str) -> bool:
    """Whether ``path`` is one of ``paths`` or lies below one."""
    return any(path == p or path.startswith(p + ".") for p in paths)


def split(changes: Sequence[Change], paths: Sequence[str]) -> tuple[tuple[Change, ...], tuple[Change, ...]]:
    """``(kept, ignored)``: the changes outside the ignored paths, and those under them."""
    if not paths:
        return tuple(changes), ()
    kept = tuple(c for c in changes if not covers(paths, c.path))
    return kept, tuple(c for c in changes if covers(paths, c.path))


def _body_path(path: str) -> list[str]:
    parts = path.split(".")
    return parts[1:] if parts[0] == _JOB else parts


def _get(tree: Any, parts: Sequence[str]) -> Any:
    for part in parts:
        if not isinstance(tree, dict) or part not in tree:
            return _MISSING
        tree = tree[part]
    return tree


def strip_body(body: Mapping[str, Any], paths: Sequence[str], live: Mapping[str, Any]) -> dict[str, Any]:
    """An update's PATCH body that changes nothing under ``paths``: a top-level field is left out
    (PATCH leaves absent keys unchanged); a nested one carries the ``live`` (comparable) value
    inside its parent, or is dropped from it when the live definition has none."""
    out = dict(body)
    for path in sorted(paths):
        if path == _JOB:  # the whole job spec: every key of the body but name, enabled and schedule
            for key in [k for k in out if k not in ("name", "enabled", "schedule")]:
                del out[key]
            continue
        parts = _body_path(path)
        if len(parts) == 1:
            out.pop(parts[0], None)
            continue
        top = out.get(parts[0])
        if not isinstance(top, dict):
            continue
        top = copy.deepcopy(top)
        parent = _get(top, parts[1:-1])
        if not isinstance(parent, dict):
            continue
        value = _get(live, path.split("."))
        if value is _MISSING:
            parent.pop(parts[-1], None)
        else:
            parent[parts[-1]] = copy.deepcopy(value)
        out[parts[0]] = top
    return out


def with_rules(desired: Sequence[Desired], labels: Sequence[Mapping[str, str]], manifest_names: Sequence[str],
               rules: Sequence[IgnoreRule]) -> tuple[Desired, ...]:
    """Each desired definition with the paths of the config's rules that select it added to its
    own ``spec.ignoreChanges`` (``labels`` and ``manifest_names`` run parallel to ``desired``)."""
    if not rules:
        return tuple(desired)
    out = []
    for want, own_labels, meta_name in zip(desired, labels, manifest_names, strict=True):
        extra = [p for rule in rules if rule.matches(names=(want.name, meta_name), labels=own_labels)
                 for p in rule.paths]
        paths = tuple(dict.fromkeys((*want.ignore_changes, *extra)))
        out.append(dataclasses.replace(want, ignore_changes=paths) if paths != want.ignore_changes else want)
    return tuple(out)
