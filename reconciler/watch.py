"""``reconciler watch``: validate and plan (and, with ``--apply``, apply) on every saved change.

Why two parts: what to print and whether to apply is a pure decision, :func:`step`
``(previous state, observation) -> (new state, lines, apply?)``, tested without files or a
server; :func:`watch_loop` only does the I/O around it (watchfiles, the engine, the clock).

Rules the step keeps:

* Only what changed since the last run is printed: new issues, how many were fixed, plan
  entries that appeared (whole) or went away (one line), and the summary when it changed.
* An invalid edit prints its errors and keeps the last good state: nothing is planned, nothing
  applied, never a partial set. The next valid run is compared with the last good plan.
* With ``--apply``, a valid plan with changes and no errors is applied; after an apply the next
  plan is compared with an empty one, so what is still outstanding is shown in full.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from reconciler.specs.environments import Target, validate_for_target
from reconciler.specs.load import LoadedDocument
from reconciler.specs.validate import ValidationReport, validate_paths

__all__ = ["EnginePlanner", "Observation", "PlanView", "Planner", "WatchState", "after_apply", "observe",
           "plan_view", "step", "watch_loop"]

DEFAULT_DEBOUNCE_MS = 300


@dataclass(frozen=True, kw_only=True)
class PlanView:
    """A plan as the watcher compares it: one text block per action, then the summary line."""

    blocks: tuple[str, ...] = ()
    summary: str = ""
    has_changes: bool = False
    errored: bool = False


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
    seen_blocks: tuple[str, ...] = field(default=())


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
    before = previous.seen_blocks
    appeared = [b for b in plan.blocks if b not in before]
    gone = [b for b in before if b not in plan.blocks]
    lines.extend(appeared)
    lines.extend(f"no longer planned: {_first_line(b).strip()}" for b in gone)
    if plan.summary != previous.summary or appeared or gone:
        lines.append(plan.summary)
    if not appeared and not gone and plan.summary == previous.summary:
        lines.append("no change since the last run")
    state = replace(state, plan=plan, summary=plan.summary, seen_blocks=plan.blocks)
    return state, lines, apply and plan.has_changes and not plan.errored


def after_apply(state: WatchState, *, result_lines: Sequence[str], ok: bool) -> tuple[WatchState, list[str]]:
    """After an apply: print its results and forget the plan, so the next one is shown in full. Pure."""
    lines = [*result_lines, "applied" if ok else "apply failed; the next change plans again"]
    return replace(state, plan=None, summary="", seen_blocks=()), lines


class Planner(Protocol):
    """The engine seen from the watcher: a plan for the valid documents, and applying it."""

    def plan(self, documents: Sequence[LoadedDocument]) -> tuple[PlanView, Any]: ...

    def apply(self, plan: Any) -> tuple[list[str], bool]: ...


def plan_view(plan: Any) -> PlanView:
    """The engine's :class:`~reconciler.engine.plan.Plan` as blocks, using its own text renderer."""
    from reconciler.display import printable
    from reconciler.engine import plan as plans
    from reconciler.engine import render

    blocks = ["\n".join(("  " + line) if i else line for i, line in enumerate(render.render_action(action)))
              for action in plan.actions if action.kind is not plans.ActionKind.noop]
    blocks += [printable(f"warning: {w}") for w in plan.warnings] + [printable(f"error: {e}") for e in plan.errors]
    summary = plan.summary.text if not plan.errors else f"Plan refused. {plan.summary.text}"
    return PlanView(blocks=tuple(blocks), summary=summary, has_changes=plan.has_changes, errored=plan.errored)


@dataclass(kw_only=True)
class EnginePlanner:
    """Plans through the engine against one API target (the embedded local service by default)."""

    target: Any  # reconciler.api.client.Target
    scope: Any = None  # reconciler.specs.config.Scope
    max_delete_fraction: float = 0.5
    secret_roots: tuple[str, ...] = ()  # where secret files may resolve (reconciler.specs.secrets)

    def _run(self, work: Callable[[Any], Any]) -> Any:
        from reconciler.api.client import open_client

        async def main() -> Any:
            async with open_client(self.target) as client:
                return await work(client)

        return asyncio.run(main())

    def plan(self, documents: Sequence[LoadedDocument]) -> tuple[PlanView, Any]:
        from reconciler.api.payload import desired_from_manifest
        from reconciler.engine import apply as applying
        from reconciler.specs.model import Manifest

        desired = [desired_from_manifest(Manifest.from_document(doc), secret_roots=self.secret_roots)
                   for doc in documents]

        async def work(client: Any) -> Any:
            return await applying.plan_against(client, desired=desired, scope=self.scope,
                                               max_delete_fraction=self.max_delete_fraction)

        result = self._run(work)
        return plan_view(result), result

    def apply(self, plan: Any) -> tuple[list[str], bool]:
        from reconciler.engine import apply as applying

        async def work(client: Any) -> Any:
            return await applying.apply_plan(plan, client=client)

        outcome = self._run(work)
        return [r.line() for r in outcome.results] + [outcome.summary], bool(outcome.ok)


def observe(paths: Sequence[Path], *, planner: Planner | None, target: Target | None = None,
            overlays_root: Path | None = None,
            secret_roots: Sequence[str] | None = None) -> tuple[Observation, Any]:
    """Validate (per target when given) and, when valid, plan. Returns the engine's plan too, for apply.
    ``secret_roots``: where secret files may resolve (default: the manifest roots)."""
    report: ValidationReport = (
        validate_for_target(paths, target, overlays_root=overlays_root, secret_roots=secret_roots)
        if target is not None else validate_paths(paths, secret_roots=secret_roots))
    issues = tuple(issue.format() for issue in report.issues)
    base = Observation(issues=issues, errors=len(report.errors), documents=len(report.documents))
    if not report.ok or planner is None:
        return base, None
    try:
        view, plan = planner.plan(report.documents)
    except Exception as exc:  # an API or config failure is reported and the watcher keeps going
        return replace(base, plan_error=str(exc) or type(exc).__name__), None
    return replace(base, plan=view), plan


def _yaml_change(_change: Any, path: str) -> bool:
    return path.endswith((".yaml", ".yml")) and "/." not in path.replace(os.sep, "/")


def watch_loop(*, paths: Sequence[Path], emit: Callable[[str], None], planner: Planner | None,
               apply: bool = False, debounce_ms: int = DEFAULT_DEBOUNCE_MS, target: Target | None = None,
               overlays_root: Path | None = None, stop_event: threading.Event | None = None,
               extra_watch: Iterable[Path] = (),
               reload_target: Callable[[], Target | None] | None = None,
               secret_roots: Sequence[str] | None = None) -> WatchState:
    """Run once, then after every (debounced) change to a YAML file under ``paths``, until stopped.

    ``reload_target``, when given, is called before each run to read the target again from the
    project config (its variables and overlays may have changed); a ``ValueError`` it raises (a
    broken config, a target gone) is reported like an invalid manifest: the last good state stays.
    """
    import watchfiles

    state = WatchState()
    current_target = target

    def run(reason: str) -> None:
        nonlocal state, current_target
        emit(f"--- {time.strftime('%H:%M:%S')} {reason}")
        if reload_target is not None:
            try:
                current_target = reload_target()
            except ValueError as exc:
                state, lines, _ = step(state, Observation(issues=tuple(f"error: {exc}".splitlines()), errors=1))
                for line in lines:
                    emit(line)
                return
        observation, plan = observe(paths, planner=planner, target=current_target, overlays_root=overlays_root,
                                    secret_roots=secret_roots)
        state, lines, do_apply = step(state, observation, apply=apply)
        for line in lines:
            emit(line)
        if do_apply and planner is not None:
            try:
                result_lines, ok = planner.apply(plan)
            except Exception as exc:  # keep watching; the next change plans again
                result_lines, ok = [f"error: {exc or type(exc).__name__}"], False
            state, lines = after_apply(state, result_lines=result_lines, ok=ok)
            for line in lines:
                emit(line)

    # The watcher is started first and the initial run made on its first (timeout) yield, so that
    # an edit saved during the initial run is seen, and "watching" is printed only once it is true.
    watched = sorted({str(p) for p in (*paths, *extra_watch) if p.exists()})
    started = False
    for changes in watchfiles.watch(*watched, watch_filter=_yaml_change, debounce=debounce_ms,
                                    stop_event=stop_event, raise_interrupt=False, yield_on_timeout=True,
                                    rust_timeout=200):
        if not started:
            started = True
            run("initial run")
            emit(f"watching {', '.join(watched)} (Ctrl-C to stop)")
        if changes:
            names = sorted({Path(p).name for _, p in changes})
            run(f"changed: {', '.join(names)}")
    return state
