"""The operator's acting half: find the live candidates of a resource, and perform the
:class:`~reconciler.operator.decide.Decision` through the API (``engine.apply.apply_plan``,
exactly as ``reconciler apply`` writes files' plans). The deciding is
:mod:`reconciler.operator.decide`, pure; the status patch is :mod:`reconciler.operator.status`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from reconciler.api import errors
from reconciler.api import refs as api_refs
from reconciler.api.client import Client
from reconciler.api.secrets import resolver
from reconciler.engine import apply as engine_apply
from reconciler.engine import windows
from reconciler.engine.normalize import desired_from_manifest, live_from_api
from reconciler.engine.plan import Plan
from reconciler.engine.types import Desired, Live
from reconciler.errors import ServiceError
from reconciler.operator import cache as live_cache
from reconciler.operator import controls as operator_controls
from reconciler.operator.decide import ClaimedBy, Decision, Mode, decide, decide_finalize, nobody, written
from reconciler.operator.policies import OperatorPolicies
from reconciler.operator.status import Reconciliation
from reconciler.specs.controls import Controls
from reconciler.specs.load import LoadedDocument
from reconciler.specs.model import Manifest

__all__ = ["ApplyFailed", "Unresolved", "finalize", "find_candidates", "perform", "reconcile"]

log = logging.getLogger("reconciler.operator")


class ApplyFailed(ServiceError):
    """An API write failed; the message is the API's error text (never the token)."""


class Unresolved(ApplyFailed):
    """A reference by name (deploymentRef, credentialRef, dataStoreRef) matches no resource of the
    target, or several; the message lists the close matches."""


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


async def perform(client: Client, decision: Decision, *, name: str, raw: Mapping[str, Any],
                  cache: live_cache.LiveCache | None = None) -> Reconciliation:
    """Carry out a reconcile decision; ``raw``: the candidates as the API returned them. ``cache``:
    what is written goes into the shared live snapshot; a failed write drops its entry, so the
    retry looks the definition up again (gone, renamed or changed meanwhile)."""
    if decision.outcome is not None:  # nothing to write
        return dataclasses.replace(decision.outcome, live=raw.get(decision.outcome.definition_id or ""))
    if decision.plan is None:
        raise ValueError(f"a {decision.step} decision has neither a write nor an outcome")
    try:
        applied = await _write(client, decision.plan, "the API write failed")
    except ApplyFailed:
        if cache is not None and decision.action is not None and decision.action.id:
            cache.forget(decision.action.id)
        raise
    definition_id = applied.results[0].id
    live: dict[str, Any] | None = await client.get_definition(definition_id) if definition_id else None
    if cache is not None and live is not None:
        cache.put(live)
    return written(decision, name=name, definition_id=definition_id, live=live)


async def reconcile(client: Client, manifest: Manifest, *, recorded_id: str | None, mode: Mode,
                    claimed_by: ClaimedBy = nobody, policies: OperatorPolicies | None = None,
                    controls: Controls | None = None, now: datetime | None = None,
                    fallback_delay: float = 300.0, cache: live_cache.LiveCache | None = None) -> Reconciliation:
    """Make the live definition match ``manifest`` (or, on a resync under driftPolicy Report, only
    say how it differs). Raises :class:`ApplyFailed` or an ``APIError`` when the API fails,
    :class:`~reconciler.operator.decide.ClaimedElsewhere` when the matching definition is managed by
    another resource, :class:`Unresolved` when a reference by name names nothing (or several), and
    :class:`~reconciler.operator.policies.PolicyDenied` when a deny policy refuses the manifest or its
    write (nothing is written); the warn verdicts' lines are the outcome's ``warnings``. ``cache``: the candidates come from the shared live snapshot
    (cache.py)."""
    controls = controls or Controls()  # the project's ignore rules and sync windows (operator.controls)
    # references by name -> ids, as the session resolves them (one list call per kind)
    resolved = await api_refs.resolve(api_refs.Catalog(client), [desired_from_manifest(manifest)])
    if resolved.errors:
        raise Unresolved("\n".join(resolved.errors))
    desired = operator_controls.with_project_rules(resolved.desired[0], manifest, controls)
    document = LoadedDocument(file=desired.source or desired.name, index=0, data=manifest.to_data(), line=1, col=1)
    warned: list[str] = []  # the warn verdicts' lines: the outcome carries them to the resource's status
    if policies is not None:
        for verdict in policies.manifest(document.data, source=document.file):
            log.warning("%s", verdict.line())
            warned.append(verdict.line())
    if cache is None:
        candidates, raw = await find_candidates(client, desired, recorded_id)
    else:
        candidates, raw = await live_cache.find_candidates(client, cache, desired, recorded_id)
    decision = decide(desired, candidates, recorded_id=recorded_id, mode=mode, drift_policy=manifest.spec.driftPolicy,
                      claimed_by=claimed_by, live_names={i: str(item.get("name")) for i, item in raw.items()},
                      window=windows.state(controls.windows, now or datetime.now(UTC)),
                      fallback_delay=fallback_delay)
    if policies is not None and decision.writes and decision.plan is not None:
        for verdict in policies.action(decision.plan, document=document, desired=desired, live=candidates):
            log.warning("%s", verdict.line())
            warned.append(verdict.line())
    outcome = await perform(client, decision, name=desired.name, raw=raw, cache=cache)
    return dataclasses.replace(outcome, warnings=tuple(warned)) if warned else outcome


async def finalize(client: Client, *, recorded_id: str | None, name: str, deletion_policy: str,
                   prevent_destroy: bool, claimed_by: ClaimedBy = nobody, suspended: bool = False,
                   cache: live_cache.LiveCache | None = None) -> tuple[bool, str]:
    """Delete the live definition on resource deletion unless the decision keeps it
    (:func:`~reconciler.operator.decide.decide_finalize`). Returns (deleted, message)."""
    decision = decide_finalize(recorded_id=recorded_id, name=name, deletion_policy=deletion_policy,
                               prevent_destroy=prevent_destroy, claimed_by=claimed_by, suspended=suspended)
    if decision.plan is None:
        return False, decision.message
    try:
        await _write(client, decision.plan, "the API delete failed")
    finally:
        if cache is not None and recorded_id:
            cache.forget(recorded_id)
    return True, decision.message
