"""The operator's acting half: find the live candidates of a resource, and perform the
:class:`~reconciler.operator.decide.Decision` through the API (``engine.apply.apply_plan``,
exactly as ``reconciler apply`` writes files' plans). The deciding is
:mod:`reconciler.operator.decide`, pure; the status patch is :mod:`reconciler.operator.status`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from reconciler.api import errors
from reconciler.api.client import Client
from reconciler.api.secrets import resolver
from reconciler.engine import apply as engine_apply
from reconciler.engine.normalize import desired_from_manifest, live_from_api
from reconciler.engine.plan import Plan
from reconciler.engine.types import Desired, Live
from reconciler.operator.decide import ClaimedBy, Decision, Mode, decide, decide_finalize, nobody, written
from reconciler.operator.status import Outcome
from reconciler.specs.model import Manifest

__all__ = ["ApplyFailed", "finalize", "find_candidates", "perform", "reconcile"]

log = logging.getLogger("reconciler.operator")


class ApplyFailed(Exception):
    """An API write failed; the message is the API's error text (never the token)."""


async def find_candidates(client: Client, desired: Desired, recorded_id: str | None) -> tuple[list[Live], dict[str, Any]]:
    """Candidates for pairing, and the raw API items by id (for status). The recorded id is the
    identity: that definition is the candidate whatever its live name (a rename is drift)."""
    raw: dict[str, Any] = {}
    if recorded_id:
        try:
            item = await client.get_definition(recorded_id)
        except errors.APINotFoundError:
            log.info("definition %s recorded in status is gone; looking it up by name", recorded_id)
        else:
            raw[str(item["id"])] = item
            return [live_from_api(item)], raw  # paired by its recorded id (decide), whatever its name
    candidates: list[Live] = []
    for name in (desired.name, *desired.previous_names):
        found = await client.find_by_name(name)
        if found is not None:
            raw[str(found["id"])] = found
            candidates.append(live_from_api(found))
    return candidates, raw


async def _write(client: Client, plan: Plan, what: str) -> engine_apply.ApplyResult:
    # Never the operator's own environment (see decide._secret_references).
    applied = await engine_apply.apply_plan(plan, client=client, resolve=resolver({}))
    failed = applied.of(engine_apply.Outcome.failed)
    if failed:
        raise ApplyFailed(failed[0].error or what)
    return applied


async def perform(client: Client, decision: Decision, *, name: str, raw: Mapping[str, Any]) -> Outcome:
    """Carry out a reconcile decision; ``raw``: the candidates as the API returned them."""
    if decision.outcome is not None:  # nothing to write
        return dataclasses.replace(decision.outcome, live=raw.get(decision.outcome.definition_id or ""))
    if decision.plan is None:
        raise ValueError(f"a {decision.verdict} decision has neither a write nor an outcome")
    applied = await _write(client, decision.plan, "the API write failed")
    definition_id = applied.results[0].id
    live: dict[str, Any] | None = await client.get_definition(definition_id) if definition_id else None
    return written(decision, name=name, definition_id=definition_id, live=live)


async def reconcile(client: Client, manifest: Manifest, *, recorded_id: str | None, mode: Mode,
                    claimed_by: ClaimedBy = nobody) -> Outcome:
    """Make the live definition match ``manifest`` (or, on a resync under driftPolicy Report, only
    say how it differs). Raises :class:`ApplyFailed` or an ``APIError`` when the API fails, and
    :class:`~reconciler.operator.decide.Conflict` when the matching definition is managed by
    another resource."""
    desired = desired_from_manifest(manifest)
    candidates, raw = await find_candidates(client, desired, recorded_id)
    decision = decide(desired, candidates, recorded_id=recorded_id, mode=mode, drift_policy=manifest.spec.driftPolicy,
                      claimed_by=claimed_by, live_names={i: str(item.get("name")) for i, item in raw.items()})
    return await perform(client, decision, name=desired.name, raw=raw)


async def finalize(client: Client, *, recorded_id: str | None, name: str, deletion_policy: str,
                   prevent_destroy: bool, claimed_by: ClaimedBy = nobody) -> tuple[bool, str]:
    """Delete the live definition on resource deletion unless the decision keeps it
    (:func:`~reconciler.operator.decide.decide_finalize`). Returns (deleted, message)."""
    decision = decide_finalize(recorded_id=recorded_id, name=name, deletion_policy=deletion_policy,
                               prevent_destroy=prevent_destroy, claimed_by=claimed_by)
    if decision.plan is None:
        return False, decision.message
    await _write(client, decision.plan, "the API delete failed")
    return True, decision.message
