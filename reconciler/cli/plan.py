"""``reconciler plan``: flags -> session -> the plan's view -> exit code."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from reconciler.__about__ import __version__
from reconciler.cli import options as o
from reconciler.cli.console import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
    exit_codes,
    setup_logging,
    stderr_console,
    write_lines,
)
from reconciler.engine import plan as plans
from reconciler.engine import render as rendering
from reconciler.errors import UsageError
from reconciler.notify.events import drift as drift_event
from reconciler.session import MAX_PLAN_BYTES, Options, Session, require_paths, run
from reconciler.specs.files import read_limited

__all__ = ["register"]

PruneOpt = Annotated[bool, typer.Option("--prune", help="Delete live definitions in scope with no manifest.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Allow deleting more than maxDeleteFraction; apply: write "
                                        "even while a sync window is closed (and say so).")]


def plan_exit_code(plan: plans.Plan, *, detailed_exitcode: bool) -> int:
    """1 for a refused plan; 2 for changes with --detailed-exitcode; else 0."""
    if plan.errored:
        return EXIT_ERROR
    return EXIT_CHANGES if detailed_exitcode and plan.has_changes else EXIT_OK


def _write_plan(plan: plans.Plan, out: Path) -> None:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(rendering.render_json(plan, version=__version__), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot save the plan to {out}: {exc.strerror}") from None


def _discard_saved_plan(out: Path) -> bool:
    """Before planning with ``--out``: remove a plan an earlier run saved at ``out``, so that when
    this run writes none (invalid manifests, a refused plan, an API error) no stale plan is left
    for a pipeline to upload and apply. Only a saved plan is removed (a JSON file with a
    format_version); any other file there is left alone. True when one was removed."""
    if out.is_dir():
        raise UsageError(f"--out {out} is a directory; give a file name, e.g. --out {out / 'plan.json'}")
    if not out.is_file():
        return False
    try:
        data = json.loads(read_limited(out, limit=MAX_PLAN_BYTES, what="saved plan").decode("utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(data, dict) or "format_version" not in data:
        return False
    try:
        out.unlink()
    except OSError as exc:
        raise UsageError(f"cannot remove the earlier plan {out}: {exc.strerror}") from None
    return True


def make_plan(session: Session, *, prune: bool = False, force: bool = False, destroy: bool = False) -> plans.Plan:
    """Load, then plan against the live state: what plan, ``ci comment PATHS`` and watch share."""
    listing = session.list_ahead()  # the live state is listed meanwhile, in a forked worker
    try:
        manifests = session.load()

        async def work() -> plans.Plan:
            async with session.client() as client:
                return await session.plan(client, manifests, prune=prune, force=force, destroy=destroy,
                                          listed=listing)

        return run(work())
    finally:
        if listing is not None:
            listing.close()


def register(app: typer.Typer) -> None:
    @app.command()
    @o.api_flags()
    def plan(
        paths: o.PathsArg = None, prune: PruneOpt = False, force: ForceOpt = False,
        destroy: Annotated[bool, typer.Option("--destroy", help="Plan deleting every managed definition.")] = False,
        detailed_exitcode: Annotated[bool, typer.Option("--detailed-exitcode",
                                                        help="Exit 2 when the plan has changes.")] = False,
        output: Annotated[rendering.Format, typer.Option("--output", "-o", help="text, json or markdown.")] = rendering.Format.text,
        out: Annotated[Path | None, typer.Option("--out", help="Save the plan (JSON, no secrets) for apply.")] = None,
        show_defaults: Annotated[bool, typer.Option("--show-defaults", help="List every API default a create "
                                                    "fills in (folded into one line otherwise; JSON has all).")] = False,
        selector: o.SelectorOpt = None, only: o.OnlyOpt = None, changed_since: o.ChangedSinceOpt = None,
        api: Options = Options(), no_color: o.NoColorOpt = False,
        verbose: o.VerboseOpt = False,
        cache_dir: o.CacheDirOpt = None, no_cache: o.NoCacheOpt = False,
    ) -> None:
        """Show what apply would change: live definitions against the manifests.

        Exit 0: no changes, or changes without --detailed-exitcode; 2: changes, with
        --detailed-exitcode; 3: invalid manifests (nothing planned); 1: an error.
        """
        setup_logging(verbose)
        options = o.session_options(paths, api=api, selector=selector, only=only, changed_since=changed_since,
                                    cache_dir=cache_dir, no_cache=no_cache)
        err = stderr_console()
        removed = written = False
        with exit_codes(no_color=no_color, json_report=output is rendering.Format.json):
            try:
                require_paths(options.paths, given=options.paths_given)
                # an earlier plan at --out goes first: this run leaves its own plan there, or none
                removed = out is not None and _discard_saved_plan(out)
                session = Session.open(options, check_paths=False)
                result = make_plan(session, prune=prune, force=force, destroy=destroy)
                if output is rendering.Format.text:
                    write_lines(rendering.text_lines(result, show_defaults=show_defaults), no_color=no_color)
                else:
                    sys.stdout.write(rendering.render(result, output, version=__version__,
                                                      show_defaults=show_defaults))
                if detailed_exitcode and result.has_changes and not result.errored:
                    run(session.notify(drift_event(result)))  # the drift check's finding, to the channels
                if out is not None and result.errored:
                    err.print(f"No plan was saved to {out}: the plan was refused, so there is nothing to apply.",
                              markup=False)
                elif out is not None:
                    _write_plan(result, out)
                    written = True
                    err.print(f"Saved the plan to {out}; apply it with `reconciler apply {out}`.", markup=False)
            finally:
                if removed and not written:
                    err.print(f"Removed the plan an earlier run saved to {out}, so that it is not taken for this "
                              "one.", markup=False)
        raise typer.Exit(plan_exit_code(result, detailed_exitcode=detailed_exitcode))
