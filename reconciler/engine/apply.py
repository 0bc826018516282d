"""Apply: carry out a :class:`Plan` through the API client. This is the I/O edge of the engine;
it takes a plan and never recomputes one (``dry_run`` walks the same path without writing).

Order and dependencies: creates, updates, adoptions and renames are independent of each other
and run concurrently (bounded by the client's concurrency). Deletes depend on all of them: if any
failed, no delete runs, so a broken apply never leaves the project with fewer definitions than it
had. Every action ends as ``applied``, ``failed`` or ``skipped`` and the summary says which.

Stopping early: when the API cannot be reached any more (every retry of a request failed to
connect or to get an answer) or refuses the token, actions not started yet are not attempted
(``skipped``, with the reason) instead of each failing the same way after its own retries. On
cancellation (Ctrl-C: ``asyncio.run`` cancels the main task), no new action starts, the requests
in flight are awaited so that their outcome is known and reported, the rest is reported as not
attempted, and :class:`ApplyInterrupted` (a ``CancelledError`` carrying the result) is raised.
A second Ctrl-C aborts at once.

Any failure is a failure: an action that raises anything (an API error, a secret that cannot be
read, a body the JSON encoder refuses, a bug) is recorded as ``failed`` with its message, counted
in the summary, and stops the deletes; nothing escapes as an unretrieved task exception while the
rest of the plan carries on as if it had worked.

Secrets: an action's body holds references (``apiKeyFrom``); they are resolved here, per request,
and the resolved body is never stored, logged or returned.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from reconciler import errors
from reconciler.display import printable
from reconciler.engine.normalize import body_has_secret_refs
from reconciler.engine.plan import Action, ActionKind, Plan
from reconciler.errors import PlanError

__all__ = ["ActionResult", "ApplyInterrupted", "ApplyResult", "DefinitionWriter", "Outcome", "PlanRefusedError",
           "SecretResolver", "StalePlanError", "apply_plan"]

log = logging.getLogger("reconciler.apply")

_VERBS = {ActionKind.create: "created", ActionKind.update: "updated", ActionKind.adopt: "adopted",
          ActionKind.rename: "renamed", ActionKind.delete: "deleted"}


class PlanRefusedError(PlanError):
    """The plan has errors (a guard refused it): nothing is applied."""


class StalePlanError(PlanError):
    """A saved plan no longer matches the live state; ``changes`` names what moved."""

    def __init__(self, changes: Sequence[str]) -> None:
        super().__init__("the saved plan is stale, the live state changed since it was made: " + "; ".join(changes[:20])
                         + (f"; … and {len(changes) - 20} more" if len(changes) > 20 else "")
                         + ". Run `reconciler plan` again.")
        self.changes = list(changes)


class ApplyInterrupted(asyncio.CancelledError):
    """The apply was cancelled (Ctrl-C); ``result`` says what was applied, failed and not attempted."""

    def __init__(self, result: ApplyResult) -> None:
        super().__init__(result.summary)
        self.result = result


class Outcome(StrEnum):
    applied = "applied"
    failed = "failed"
    skipped = "skipped"


@dataclass(frozen=True, kw_only=True)
class ActionResult:
    action: Action
    outcome: Outcome
    id: str | None = None
    error: str | None = None

    def line(self) -> str:
        """The result as one printable line (:func:`reconciler.display.printable`)."""
        a = self.action
        if self.outcome is Outcome.applied:
            text = f"{a.name}: {_VERBS.get(a.kind, a.kind.value)}" + (f" [id {self.id}]" if self.id else "")
        elif self.outcome is Outcome.failed:
            text = f"{a.name}: {a.kind.value} FAILED: {self.error}"
        else:
            text = f"{a.name}: {a.kind.value} not attempted ({self.error})"
        return printable(text)


@dataclass(frozen=True, kw_only=True)
class ApplyResult:
    results: tuple[ActionResult, ...]
    dry_run: bool = False
    interrupted: bool = False

    def of(self, outcome: Outcome) -> tuple[ActionResult, ...]:
        return tuple(r for r in self.results if r.outcome is outcome)

    @property
    def failed(self) -> tuple[ActionResult, ...]:
        return self.of(Outcome.failed)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.of(Outcome.skipped)

    @property
    def summary(self) -> str:
        applied = self.of(Outcome.applied)
        counts = {kind: sum(1 for r in applied if r.action.kind is kind) for kind in _VERBS}
        done = (f"{counts[ActionKind.create]} created, "
                f"{counts[ActionKind.update] + counts[ActionKind.adopt] + counts[ActionKind.rename]} updated, "
                f"{counts[ActionKind.delete]} deleted")
        if self.ok and not self.interrupted:
            return ("Dry run complete (nothing written): " if self.dry_run else "Apply complete: ") + done + "."
        return (f"Apply {'interrupted' if self.interrupted else 'failed'}: {done}; {len(self.of(Outcome.failed))} failed, "
                f"{len(self.of(Outcome.skipped))} not attempted.")


class DefinitionWriter(Protocol):
    """The port apply writes through (the API client implements it); ``concurrency`` bounds the
    requests in flight."""

    @property
    def concurrency(self) -> int: ...

    async def create_definition(self, body: Mapping[str, Any]) -> Mapping[str, Any]: ...

    async def update_definition(self, definition_id: str, body: Mapping[str, Any]) -> Any: ...

    async def delete_definition(self, definition_id: str) -> bool: ...


class SecretResolver(Protocol):
    """Resolves a body's secret references (``apiKeyFrom``) into values, right before a request
    (:func:`reconciler.api.secrets.resolver`); raises :class:`reconciler.errors.SecretError`."""

    def __call__(self, body: Mapping[str, Any], *, base_dir: str | None, roots: tuple[str, ...]) -> dict[str, Any]: ...


def _error_text(exc: BaseException, action: Action | None = None) -> str:
    if isinstance(exc, errors.NameTaken) and action is not None and action.kind in (
            ActionKind.create, ActionKind.rename):
        return (f"the name {action.name!r} is taken by a live definition that was not there when the plan was made "
                f"(another apply running at the same time?); nothing was changed for it; run `reconciler plan` "
                f"again [{exc}]")
    if isinstance(exc, (errors.ServiceError, errors.SecretError)):
        return str(exc) or type(exc).__name__
    # not an error apply expects: name its type, and say that the outcome may be unknown
    return (f"unexpected {type(exc).__name__}: {exc or 'no message'} (whether the request was sent is not known; "
            "`reconciler plan` shows the live state)")


def _halts(exc: BaseException) -> str | None:
    """Why no further action should start after this failure, or None."""
    if isinstance(exc, errors.Unreachable):
        return f"the API is unreachable ({exc})"
    if isinstance(exc, errors.Unauthorized):
        return f"the API refused the token ({exc})"
    return None


async def _run_one(action: Action, client: DefinitionWriter, *, resolve: SecretResolver,
                   dry_run: bool, halt: list[str]) -> ActionResult:
    try:
        if dry_run:
            return ActionResult(action=action, outcome=Outcome.applied, id=action.id)
        if action.kind is ActionKind.delete:
            assert action.id is not None
            gone_now = await client.delete_definition(action.id)
            if not gone_now:
                log.info("%s [id %s] was already gone", action.name, action.id)
            return ActionResult(action=action, outcome=Outcome.applied, id=action.id)
        assert action.body is not None
        body = resolve(action.body, base_dir=action.base_dir, roots=action.secret_roots)
        if action.kind is ActionKind.create:
            created = await client.create_definition(body)
            return ActionResult(action=action, outcome=Outcome.applied, id=str(created.get("id")))
        assert action.id is not None
        await client.update_definition(action.id, body)
        return ActionResult(action=action, outcome=Outcome.applied, id=action.id)
    except Exception as exc:  # every failure is recorded (Ctrl-C, a BaseException, is handled by apply_plan)
        if not isinstance(exc, (errors.ServiceError, errors.SecretError)):
            log.debug("%s: %s failed", action.name, action.kind.value, exc_info=True)
        reason = _halts(exc)
        if reason is not None and not halt:
            halt.append(reason)
        return ActionResult(action=action, outcome=Outcome.failed, id=action.id, error=_error_text(exc, action))


def _unresolved_secrets(plan: Plan, *, resolve: SecretResolver) -> list[str]:
    """Every write's secret references, resolved once before the first write (and dropped): a
    missing variable or file stops the apply up front instead of half-way through."""
    problems = []
    for action in plan.writes:
        if action.body is None or not body_has_secret_refs(action.body):
            continue
        try:
            resolve(action.body, base_dir=action.base_dir, roots=action.secret_roots)
        except errors.SecretError as exc:
            problems.append(printable(f"{action.name}" + (f" ({action.source})" if action.source else "") + f": {exc}"))
    return problems


async def apply_plan(plan: Plan, *, client: DefinitionWriter, resolve: SecretResolver,
                     on_result: Callable[[ActionResult], None] | None = None, dry_run: bool = False) -> ApplyResult:
    """Run the plan's writes through ``client``; report each result through ``on_result`` as it
    lands. ``resolve`` turns secret references into values, per request."""
    if not plan.applyable:
        raise PlanRefusedError("the plan was refused: " + "; ".join(printable(e) for e in plan.errors))
    unresolved = _unresolved_secrets(plan, resolve=resolve)
    if unresolved:
        raise PlanRefusedError("nothing was applied: secret references do not resolve: " + "; ".join(unresolved)
                               + " (set the variables or create the files, then apply again)")
    first = [a for a in plan.writes if a.kind is not ActionKind.delete]
    deletes = plan.of_kind(ActionKind.delete)
    gate = asyncio.Semaphore(client.concurrency)
    results: list[ActionResult] = []
    halt: list[str] = []  # set once: why nothing more is started
    started: set[int] = set()

    def record(result: ActionResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    def not_attempted(actions: Sequence[Action], reason: str) -> None:
        done = {id(r.action) for r in results}
        for action in actions:
            if id(action) not in done and id(action) not in started:
                record(ActionResult(action=action, outcome=Outcome.skipped, id=action.id, error=reason))

    async def run(action: Action) -> None:
        async with gate:
            if halt:
                return  # reported as not attempted below
            started.add(id(action))
            result = await _run_one(action, client, resolve=resolve, dry_run=dry_run, halt=halt)
        record(result)

    async def run_all(actions: Sequence[Action]) -> None:
        tasks = [asyncio.ensure_future(run(a)) for a in actions]
        if not tasks:
            return
        try:
            await asyncio.wait(tasks)
            # _run_one records every failure of an action; what is left (on_result raising) stops
            # the apply here, before any delete, instead of dying unseen in its task
            for task in tasks:
                if not task.cancelled() and (failure := task.exception()) is not None:
                    raise failure
        except asyncio.CancelledError:
            halt.append("interrupted")
            in_flight = [t for t in tasks if not t.done()]
            if in_flight:
                log.warning("interrupted: waiting for the %d action(s) in flight to finish, so that their outcome "
                            "is known (interrupt again to abort at once)", len(started) - len(results))
                try:
                    await asyncio.wait(in_flight)
                except asyncio.CancelledError:
                    for t in in_flight:
                        t.cancel()
                    await asyncio.gather(*in_flight, return_exceptions=True)
                    raise
            raise

    try:
        await run_all(first)
        if halt:
            not_attempted(first, f"not started: {halt[0]}")
        if any(r.outcome is not Outcome.applied for r in results):
            not_attempted(deletes, halt[0] if halt else "an earlier action failed, so nothing is pruned")
        else:
            await run_all(deletes)
            if halt:
                not_attempted(deletes, f"not started: {halt[0]}")
    except asyncio.CancelledError:
        done = {id(r.action) for r in results}
        for action in plan.writes:
            if id(action) in started and id(action) not in done:
                record(ActionResult(action=action, outcome=Outcome.skipped, id=action.id,
                                    error="aborted while in flight: it may or may not have been applied; "
                                    "`reconciler plan` shows"))
        not_attempted(plan.writes, "interrupted before it started")
        raise ApplyInterrupted(_result(plan, results, dry_run=dry_run, interrupted=True)) from None
    return _result(plan, results, dry_run=dry_run)


def _result(plan: Plan, results: list[ActionResult], *, dry_run: bool, interrupted: bool = False) -> ApplyResult:
    order = {id(a): i for i, a in enumerate(plan.actions)}
    ordered = sorted(results, key=lambda r: order.get(id(r.action), 0))
    return ApplyResult(results=tuple(ordered), dry_run=dry_run, interrupted=interrupted)
