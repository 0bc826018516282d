"""The operator's acting half: find the live candidates of a resource, and perform the
:class:`~reconciler.operator.decide.Decision`. Every step of the pipeline goes through the
operator's session (:mod:`reconciler.session`, opened in :mod:`reconciler.operator.opening`), the
same steps ``reconciler plan``/``apply`` take: references by name resolved, the project's ignore
rules, the policies judged, the sync windows' state, and the write (window checked, applied,
channels told) by :meth:`~reconciler.session.Session.apply`. The deciding is
:mod:`reconciler.operator.decide`, pure; the status patch is :mod:`reconciler.operator.status`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from reconciler.api import errors
from reconciler.api.client import Client
from reconciler.engine.normalize import desired_from_manifest, live_from_api
from reconciler.engine.plan import Plan
from reconciler.engine.types import Desired, Live
from reconciler.errors import ServiceError
from reconciler.operator import cache as live_cache
from reconciler.operator import policies
from reconciler.operator.decide import ClaimedBy, Decision, Mode, decide, decide_finalize, nobody, written
from reconciler.operator.status import Reconciliation
from reconciler.session import Session
from reconciler.specs.load import LoadedDocument
from reconciler.specs.model import Manifest

__all__ = ["ApplyFailed", "Unresolved", "finalize", "find_candidates", "perform", "prepare", "reconcile"]

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


async def _write(session: Session, client: Client, plan: Plan, what: str, *, at: datetime | None = None,
                 force: bool = False) -> str | None:
    """Apply the one-action ``plan`` (the windows judged ``at`` that moment); the id the API
    answered, or :class:`ApplyFailed`."""
    # The session's environ is empty: never the operator's own environment (decide._secret_references).
    applied = await session.apply(client, plan, force=force, at=at)
    if applied.failed:
        raise ApplyFailed(applied.failed[0].error or what)
    return applied.results[0].id


async def perform(session: Session, client: Client, decision: Decision, *, name: str, raw: Mapping[str, Any],
                  cache: live_cache.LiveCache | None = None, at: datetime | None = None) -> Reconciliation:
    """Carry out a reconcile decision; ``raw``: the candidates as the API returned them. ``cache``:
    what is written goes into the shared live snapshot; a failed write drops its entry, so the
    retry looks the definition up again (gone, renamed or changed meanwhile). ``at``: the moment
    the decision judged the sync windows at (the write is checked at the same one)."""
    if decision.outcome is not None:  # nothing to write
        return dataclasses.replace(decision.outcome, live=raw.get(decision.outcome.definition_id or ""))
    if decision.plan is None:
        raise ValueError(f"a {decision.step} decision has neither a write nor an outcome")
    try:
        definition_id = await _write(session, client, decision.plan, "the API write failed", at=at)
    except ApplyFailed:
        if cache is not None and decision.action is not None and decision.action.id:
            cache.forget(decision.action.id)
        raise
    live: dict[str, Any] | None = await client.get_definition(definition_id) if definition_id else None
    if cache is not None and live is not None:
        cache.put(live)
    return written(decision, name=name, definition_id=definition_id, live=live)


async def prepare(session: Session, client: Client,
                  manifest: Manifest) -> tuple[Desired, LoadedDocument, list[str]]:
    """The resource as the session's steps make it ready to decide, as ``plan`` makes a file's:
    references by name resolved to this target's ids (:class:`Unresolved` otherwise), the
    project's ignore rules added, and the manifest rules' verdicts (:class:`PolicyDenied` on a
    deny; the warn lines are returned, for the outcome to carry to the resource's status)."""
    resolved = await session.steps.resolve(client, [desired_from_manifest(manifest)])
    if resolved.errors:
        raise Unresolved("\n".join(resolved.errors))
    data = manifest.to_data()
    (desired,) = session.steps.with_ignore_rules(resolved.desired, [data])
    document = LoadedDocument(file=desired.source or desired.name, index=0, data=data, line=1, col=1)
    return desired, document, policies.warnings(session.steps.manifest_verdicts(document))


async def reconcile(session: Session, client: Client, manifest: Manifest, *, recorded_id: str | None, mode: Mode,
                    claimed_by: ClaimedBy = nobody, now: datetime | None = None,
                    fallback_delay: float = 300.0, cache: live_cache.LiveCache | None = None) -> Reconciliation:
    """Make the live definition match ``manifest`` (or, on a resync under driftPolicy Report, only
    say how it differs). Raises :class:`ApplyFailed` or an ``APIError`` when the API fails,
    :class:`~reconciler.operator.decide.ClaimedElsewhere` when the matching definition is managed by
    another resource, :class:`Unresolved` when a reference by name names nothing (or several), and
    :class:`~reconciler.operator.policies.PolicyDenied` when a deny policy refuses the manifest or its
    write (nothing is written); the warn verdicts' lines are the outcome's ``warnings``. ``cache``:
    the candidates come from the shared live snapshot (cache.py). ``now``: the moment the sync
    windows are judged at (default: now), one for the decision and the write."""
    moment = now or session.now()  # one moment for the decision and the write
    desired, document, warned = await prepare(session, client, manifest)
    if cache is None:
        candidates, raw = await find_candidates(client, desired, recorded_id)
    else:
        candidates, raw = await live_cache.find_candidates(client, cache, desired, recorded_id)
    decision = decide(desired, candidates, recorded_id=recorded_id, mode=mode, drift_policy=manifest.spec.driftPolicy,
                      claimed_by=claimed_by, live_names={i: str(item.get("name")) for i, item in raw.items()},
                      window=session.window(moment), fallback_delay=fallback_delay)
    if decision.writes and decision.plan is not None:
        judged = session.steps.judge(decision.plan, documents=[document], desired=[desired], live=candidates)
        warned += policies.warnings(judged.policy)
    outcome = await perform(session, client, decision, name=desired.name, raw=raw, cache=cache, at=moment)
    return dataclasses.replace(outcome, warnings=tuple(warned)) if warned else outcome


async def finalize(session: Session, client: Client, *, recorded_id: str | None, name: str, deletion_policy: str,
                   prevent_destroy: bool, claimed_by: ClaimedBy = nobody, suspended: bool = False,
                   cache: live_cache.LiveCache | None = None) -> tuple[bool, str]:
    """Delete the live definition on resource deletion unless the decision keeps it
    (:func:`~reconciler.operator.decide.decide_finalize`). Returns (deleted, message)."""
    decision = decide_finalize(recorded_id=recorded_id, name=name, deletion_policy=deletion_policy,
                               prevent_destroy=prevent_destroy, claimed_by=claimed_by, suspended=suspended)
    if decision.plan is None:
        return False, decision.message
    try:
        # force: a finalizer is not held by sync windows (a resource being deleted would hang until
        # the window opens); it deletes exactly this resource's definition, as before windows existed
        await _write(session, client, decision.plan, "the API delete failed", force=True)
    finally:
        if cache is not None and recorded_id:
            cache.forget(recorded_id)
    return True, decision.message
