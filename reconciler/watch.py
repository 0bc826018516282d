"""``reconciler watch``: validate and plan (and, with ``--apply``, apply) on every saved change.

Why two parts: what to print and whether to apply is a pure decision, :func:`step`
``(previous state, observation) -> (new state, lines, apply?)``, tested without files or a
server; :func:`watch_loop` only does the I/O around it (watchfiles, the session, the clock): each run
goes through :class:`reconciler.session.Session` like ``reconciler plan``.

Rules the step keeps:

* Only what changed since the last run is printed: new issues, how many were fixed, plan
  entries that appeared (whole), changed (whole, once, marked ``changed:``) or went away (one
  line), and the summary when it changed. Entries are compared by identity (kind, name, id).
* An invalid edit prints its errors and keeps the last good state: nothing is planned, nothing
  applied, never a partial set. The next valid run is compared with the last good plan.
* With ``--apply``, a valid plan with changes and no errors is applied; after an apply the next
  plan is compared with an empty one, so what is still outstanding is shown in full.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from reconciler.session import Manifests, Session, run

__all__ = ["Observation", "PlanView", "WatchState", "after_apply", "identity", "observe", "plan_view", "step",
           "watch_loop"]

DEFAULT_DEBOUNCE_MS = 300


@dataclass(frozen=True, kw_only=True)
class PlanView:
    """A plan as the watcher compares it: one text block per action, then the summary line.
    ``keys`` name each block's identity (an action's kind, name and id), so that an action whose
    text changed is shown once as changed, not as gone and appeared; without keys a block's first
    line is its identity."""

    blocks: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    summary: str = ""
    has_changes: bool = False
    errored: bool = False

    def entries(self) -> dict[str, str]:
        keys = self.keys if len(self.keys) == len(self.blocks) else tuple(_first_line(b) for b in self.blocks)
        return dict(zip(keys, self.blocks, strict=True))


@dataclass(frozen=True, kw_only=True)
class Observation:
    """One run's findings. ``plan`` is None when the manifests are invalid or planning failed."""

    issues: tuple[str, ...] = ()  # formatted issues, errors and warnings
    errors: int = 0
    documents: int = 0
    plan: PlanView | None = None
    plan_error: str | None = None

    @property
    def valid(self) -> bool:
        return self.errors == 0


@dataclass(frozen=True, kw_only=True)
class WatchState:
    """What the last run showed; ``plan`` is the last good plan (None: none yet, or just applied)."""

    runs: int = 0
    issues: frozenset[str] = frozenset()
    valid: bool | None = None
    good_documents: int | None = None
    plan: PlanView | None = None
    summary: str = ""
    seen: tuple[tuple[str, str], ...] = ()  # (identity, block) of the last plan shown


def _first_line(block: str) -> str:
    return block.split("\n", 1)[0]


def step(previous: WatchState, observation: Observation, *,
         apply: bool = False) -> tuple[WatchState, list[str], bool]:
    """What to print after one run, the state to remember, and whether to apply now. Pure."""
    lines: list[str] = []
    current = frozenset(observation.issues)
    lines.extend(issue for issue in observation.issues if issue not in previous.issues)
    fixed = len(previous.issues - current)
    if fixed:
        lines.append(f"fixed: {fixed} issue(s) from the last run")
    if not observation.valid:
        kept = (f"keeping the last good state ({previous.good_documents} manifest(s))"
                if previous.good_documents is not None else "no good state yet")
        lines.append(f"INVALID: {observation.errors} error(s); {kept}; nothing planned or applied")
        return replace(previous, runs=previous.runs + 1, issues=current, valid=False), lines, False
    if previous.valid is False:
        lines.append(f"valid again: {observation.documents} manifest(s)")
    elif previous.valid is None:
        lines.append(f"valid: {observation.documents} manifest(s)")
    state = replace(previous, runs=previous.runs + 1, issues=current, valid=True,
                    good_documents=observation.documents)
    if observation.plan is None:
        if observation.plan_error:
            lines.append(f"error: cannot plan: {observation.plan_error}")
        return state, lines, False
    plan = observation.plan
    before, now = dict(previous.seen), plan.entries()
    appeared = [block for key, block in now.items() if key not in before]
    changed = [block for key, block in now.items() if key in before and before[key] != block]
    gone = [block for key, block in before.items() if key not in now]
    lines.extend(appeared)
    lines.extend(f"changed: {block}" for block in changed)
    lines.extend(f"no longer planned: {_first_line(b).strip()}" for b in gone)
    moved = bool(appeared or changed or gone)
    if plan.summary != previous.summary or moved:
        lines.append(plan.summary)
    if not moved and plan.summary == previous.summary:
        lines.append("no change since the last run")
    state = replace(state, plan=plan, summary=plan.summary, seen=tuple(now.items()))
    return state, lines, apply and plan.has_changes and not plan.errored


def after_apply(state: WatchState, *, result_lines: Sequence[str], ok: bool) -> tuple[WatchState, list[str]]:
    """After an apply: print its results and forget the plan, so the next one is shown in full. Pure."""
    lines = [*result_lines, "applied" if ok else "apply failed; the next change plans again"]
    return replace(state, plan=None, summary="", seen=()), lines


def identity(action: Any) -> str:
    """An action's identity for the watcher: kind, name and live id."""
    return f"{action.kind.value} {action.name} [id {action.id or '-'}]"


def plan_view(plan: Any) -> PlanView:
    """The engine's :class:`~reconciler.engine.plan.Plan` as blocks, using its own text renderer."""
    from reconciler.display import printable
    from reconciler.engine import plan as plans
    from reconciler.engine import render, render_controls

    shown = [action for action in plan.actions if action.kind is not plans.ActionKind.noop]
    blocks = ["\n".join(("  " + line) if i else line for i, line in enumerate(render.render_action(action)))
              for action in shown]
    notes = [printable(f"warning: {w}") for w in plan.warnings] + [printable(f"error: {e}") for e in plan.errors]
    notes += [line for line in render_controls.text_lines(plan) if not line.startswith("Sync window: open")]
    summary = plan.summary.text if not plan.errors else f"Plan refused. {plan.summary.text}"
    return PlanView(blocks=(*blocks, *notes), keys=(*(identity(a) for a in shown), *notes), summary=summary,
                    has_changes=plan.has_changes, errored=plan.errored)


def observe(open_session: Callable[[], Session]) -> tuple[Observation, Session | None, Any]:
    """One run through the session: read the config again, validate (as the target sees the
    manifests) and, when valid, plan. Returns the session and the engine's plan too, for apply.
    A broken config or target is reported like an invalid manifest: the last good state stays."""
    from reconciler.errors import ReconcilerError
    from reconciler.session import InvalidManifests

    try:
        session = open_session()
        manifests = session.load(settle=False)  # loads for hours: nothing frozen (Session.load)
    except InvalidManifests as exc:
        invalid = exc.report
        return (Observation(issues=tuple(issue.format() for issue in invalid.issues), errors=len(invalid.errors),
                            documents=len(invalid.documents)), None, None)
    except ReconcilerError as exc:
        return Observation(issues=tuple(f"error: {exc}".splitlines()), errors=1), None, None
    report = manifests.report
    base = Observation(issues=tuple(issue.format() for issue in report.issues) if report else (),
                       errors=0, documents=len(manifests.documents))
    try:
        plan = run(_plan(session, manifests))
    except Exception as exc:  # an API or config failure is reported and the watcher keeps going
        return replace(base, plan_error=str(exc) or type(exc).__name__), session, None
    return replace(base, plan=plan_view(plan)), session, plan


async def _plan(session: Session, manifests: Manifests) -> Any:
    async with session.client() as client:
        return await session.plan(client, manifests, settle=False)  # plans for hours: nothing frozen


async def _apply(session: Session, plan: Any) -> tuple[list[str], bool]:
    async with session.client() as client:
        outcome = await session.apply(client, plan)
    return [r.line() for r in outcome.results] + [outcome.summary], bool(outcome.ok)


def _yaml_change(_change: Any, path: str) -> bool:
    return path.endswith((".yaml", ".yml")) and "/." not in path.replace(os.sep, "/")


def watch_loop(*, paths: Sequence[Path], emit: Callable[[str], None], open_session: Callable[[], Session],
               apply: bool = False, debounce_ms: int = DEFAULT_DEBOUNCE_MS, stop_event: threading.Event | None = None,
               extra_watch: Iterable[Path] = ()) -> WatchState:
    """Run once, then after every change to a YAML file under ``paths`` (or ``extra_watch``: the
    project config, the target's overlays), until stopped.

    Every change within ``debounce_ms`` of the last one is part of the same run: a save that
    writes a file twice (an editor's temporary file, then the rename) is one run, not two.
    ``open_session`` is called for every run, so that an edit of the project config (variables,
    overlays, scope) is seen.
    """
    import watchfiles

    state = WatchState()

    def run_once(reason: str) -> None:
        nonlocal state
        emit(f"--- {time.strftime('%H:%M:%S')} {reason}")
        observation, session, plan = observe(open_session)
        state, lines, do_apply = step(state, observation, apply=apply)
        for line in lines:
            emit(line)
        if do_apply and session is not None:
            try:
                result_lines, ok = run(_apply(session, plan))
            except Exception as exc:  # keep watching; the next change plans again
                result_lines, ok = [f"error: {exc or type(exc).__name__}"], False
            state, lines = after_apply(state, result_lines=result_lines, ok=ok)
            for line in lines:
                emit(line)

    # The watcher is started first and the initial run made on its first (timeout) yield, so that
    # an edit saved during the initial run is seen, and "watching" is printed only once it is true.
    watched = sorted({str(p) for p in (*paths, *extra_watch) if p.exists()})
    started = False
    # step: the quiet time that ends a batch of changes; debounce: the longest a batch is held
    for changes in watchfiles.watch(*watched, watch_filter=_yaml_change, step=debounce_ms,
                                    debounce=max(1600, 4 * debounce_ms), stop_event=stop_event,
                                    raise_interrupt=False, yield_on_timeout=True, rust_timeout=200):
        if not started:
            started = True
            run_once("initial run")
            emit(f"watching {', '.join(watched)} (Ctrl-C to stop)")
        if changes:
            names = sorted({Path(p).name for _, p in changes})
            run_once(f"changed: {', '.join(names)}")
    return state
