"""Manifest ⇄ API body, and both sides brought to one comparable form. Pure: no I/O. (Secret
references are resolved by :mod:`reconciler.api.secrets`, only by apply, when a request is sent.)

Why a comparable form: the API answers with more than we sent (defaults filled, read-only fields,
server-chosen values such as ``numConcurrent``, write-only keys left out, set-like lists in any
order, TF's ``maxNGramExplanations`` spelling). Comparing raw JSON would show changes forever;
comparing normalized forms makes "apply, then plan" show none.

Comparable form, both sides::

    {"name": str, "enabled": bool, "schedule": {5 lists, names as numbers} (absent = not managed),
     "batchPredictionJob": {job spec, schema defaults filled, set-like lists sorted, no secrets}}
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from reconciler.contract.export import copy_json, manifest_from_live
from reconciler.contract.export import live_schedule as _schedule
from reconciler.contract.export import writable_job as _writable
from reconciler.engine.types import Desired, Live

if TYPE_CHECKING:
    from reconciler.specs.model import Manifest

__all__ = [
    "SECRET_REFS",
    "SERVER_CHOSEN",
    "SET_LIKE",
    "body_has_secret_refs",
    "comparable_job",
    "compare_view",
    "desired_from_manifest",
    "live_from_api",
    "manifest_from_live",
    "object_hash",
]

SECRET_REFS: Final = {"apiKeyFrom": "apiKey", "datarobotKeyFrom": "datarobotKey"}
# Job-spec fields the server chooses when the manifest leaves them out: not a change then.
SERVER_CHOSEN: Final = frozenset({
    "numConcurrent", "predictionThreshold", "predictionWarningEnabled", "columnNamesRemapping",
    "predictionInstance", "explanationAlgorithm", "batchJobType", "modelId", "modelPackageId", "pinnedModelId",
})
# Lists the API treats as sets, as paths inside the job spec.
SET_LIKE: Final = (
    ("passthroughColumns",), ("includeProbabilitiesClasses",), ("explanationClassNames",),
    ("outputSettings", "updateColumns"), ("outputSettings", "whereColumns"),
)


def _sort_key(value: Any) -> tuple[str, str]:
    return (type(value).__name__, json.dumps(value, sort_keys=True))


def _canonical_sets(job: dict[str, Any]) -> None:
    for path in SET_LIKE:
        node: Any = job
        for part in path[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(node.get(path[-1]), list):
            node[path[-1]] = sorted(node[path[-1]], key=_sort_key)


def comparable_job(job: Mapping[str, Any], *, defaults_filled: bool = False) -> dict[str, Any]:
    """A job spec in comparable form: TF spellings fixed, read-only and write-only keys and secret
    references dropped, unset (null) top-level fields dropped, defaults filled, sets sorted.

    ``defaults_filled``: the caller already ran :func:`job_spec_defaults` on ``job`` (a manifest's
    spec); filling twice gives the same result and costs a third of planning 10,000 manifests."""
    out = _writable(job, drop=SECRET_REFS)
    # the schema's defaults (read with the contract's validators, so imported only when needed:
    # importing the plan stays free of the schema libraries)
    from reconciler.contract.defaults import job_spec_defaults

    # a null dropped above may uncover a default: then fill again
    refill = not defaults_filled or any(value is None for value in job.values())
    filled = job_spec_defaults(out) if refill else out
    _canonical_sets(filled)
    return filled




def desired_from_manifest(manifest: Manifest, *, secret_roots: tuple[str, ...] = ()) -> Desired:
    """The API body (job spec flattened at the top level) and the comparable form of a manifest.

    ``secret_roots``: the directories its secret files may resolve into (kept only when the body
    has a secret reference); empty means the manifest's own directory."""
    from reconciler.contract.defaults import job_spec_defaults

    spec = manifest.spec
    name = manifest.definition_name
    job = copy_json(spec.batchPredictionJob)  # deepcopy took half of this function
    if not manifest.defaults_filled:  # from_data filled them with the manifest's (filling is idempotent)
        job = job_spec_defaults(job)
    schedule = spec.schedule.as_api() if spec.schedule is not None else None
    body: dict[str, Any] = {"name": name, "enabled": spec.enabled}
    if schedule is not None:
        body["schedule"] = schedule
    body.update(job)
    comparable: dict[str, Any] = {"name": name, "enabled": spec.enabled,
                                  "batchPredictionJob": comparable_job(job, defaults_filled=True)}
    if schedule is not None:
        comparable["schedule"] = dict(schedule)
    source = manifest.source
    return Desired(
        name=name, body=body, comparable=comparable, previous_names=tuple(spec.previousNames),
        prevent_destroy=spec.preventDestroy, deletion_policy=spec.deletionPolicy,
        source=f"{source.file}:{source.line}" if source else None,
        base_dir=_parent_dir(source.file) if source else None,
        secret_roots=tuple(secret_roots) if body_has_secret_refs(body) else (),
        ignore_changes=tuple(spec.ignoreChanges), suspend=spec.suspend,
    )


@functools.lru_cache(maxsize=256)
def _parent_dir(file: str) -> str:
    """A manifest file's directory as Path gives it (``.`` for a bare name). Kept: a file holds
    several manifests in a row, and pathlib took a tenth of building a Desired."""
    return str(Path(file).parent)


def live_from_api(item: Mapping[str, Any]) -> Live:
    """A list/GET item in comparable form (read-only fields out, names → numbers, defaults in)."""
    comparable: dict[str, Any] = {"name": item.get("name"), "enabled": bool(item.get("enabled", False)),
                                  "batchPredictionJob": comparable_job(item.get("batchPredictionJob") or {})}
    schedule = _schedule(item.get("schedule"))
    if schedule is not None:
        comparable["schedule"] = schedule
    return Live(id=str(item["id"]), name=str(item.get("name", "")), comparable=comparable,
                hash=object_hash(item["id"], comparable))


# json.dumps with options builds an encoder per call (75 µs a definition; 44 µs with one
# encoder); the text is exactly json.dumps's (same class, same options), so hashes do not move.
_HASH_ENCODER: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def object_hash(definition_id: Any, comparable: Mapping[str, Any]) -> str:
    """A short stable digest of one live object, for saved-plan fingerprints."""
    text = _HASH_ENCODER.encode([definition_id, comparable])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def compare_view(desired: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
    """The live comparable form restricted to what the manifest manages: server-chosen job fields
    the manifest leaves unset, and a schedule the manifest does not declare, are not changes."""
    view = dict(live)
    if "schedule" not in desired:
        view.pop("schedule", None)
    job = dict(view.get("batchPredictionJob") or {})
    wanted = desired.get("batchPredictionJob") or {}
    for key in SERVER_CHOSEN:
        if key not in wanted:
            job.pop(key, None)
    view["batchPredictionJob"] = job
    return view


def body_has_secret_refs(body: Mapping[str, Any]) -> bool:
    instance = body.get("predictionInstance")
    return isinstance(instance, dict) and any(key in instance for key in SECRET_REFS)
