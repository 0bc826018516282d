"""Which fields of a create the manifest set, and which are the API's defaults, so that a plan
shows the first and folds the second into one line ("+ 24 defaults"). Pure: it reads the
schemas' defaults through :mod:`reconciler.contract.defaults` (imported when first needed, as
:mod:`reconciler.engine.normalize` does, so importing the plan stays free of schema libraries).

A field is a default when the API would fill in the same value had the manifest left it out:
what the manifest set equal to a default folds too, as ``export`` leaves it out.
"""

from __future__ import annotations

from typing import Any, Final

from reconciler.engine import diff as diffs

__all__ = ["JOB_PREFIX", "split_defaults"]

JOB_PREFIX: Final = "batchPredictionJob."


def _nested(changes: tuple[diffs.Change, ...]) -> dict[str, Any]:
    """The job spec the create's changes describe (their paths are dotted, one leaf each)."""
    job: dict[str, Any] = {}
    for change in changes:
        if not change.path.startswith(JOB_PREFIX):
            continue
        *parents, leaf = change.path[len(JOB_PREFIX):].split(".")
        node = job
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = change.new
    return job


def _has(tree: Any, path: str) -> bool:
    node = tree
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def split_defaults(changes: tuple[diffs.Change, ...]) -> tuple[tuple[diffs.Change, ...], tuple[diffs.Change, ...]]:
    """A create's changes as (what the manifest sets, the API's defaults), each in the given order."""
    from reconciler.contract.defaults import job_spec_without_defaults

    kept = job_spec_without_defaults(_nested(changes), filled=True)  # a create's changes are its comparable form
    own: list[diffs.Change] = []
    defaults: list[diffs.Change] = []
    for change in changes:
        is_default = change.path.startswith(JOB_PREFIX) and not _has(kept, change.path[len(JOB_PREFIX):])
        (defaults if is_default else own).append(change)
    return tuple(own), tuple(defaults)
