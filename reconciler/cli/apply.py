"""``reconciler apply``: manifests or a saved plan -> session -> results -> exit code."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli import options as o
from reconciler.cli import prompt
from reconciler.cli.console import (
    EXIT_ERROR,
    EXIT_OK,
    exit_codes,
    setup_logging,
    stderr_console,
    stdout_console,
    write_lines,
)
from reconciler.cli.plan import ForceOpt, PruneOpt
from reconciler.engine import apply as applying
from reconciler.engine import plan as plans
from reconciler.engine import render as rendering
from reconciler.errors import UsageError
from reconciler.session import Manifests, Options, Session, require_paths, run

__all__ = ["register"]

def _approved(question: str) -> bool:
    """Ask on the terminal; only `yes` approves. Ctrl-C or Ctrl-D at the prompt is a no.

    The prompt blocks inside ``asyncio.run``, whose SIGINT handler only cancels the main task, which
    cannot run while the prompt blocks; ``prompt.ask`` takes SIGINT for itself while it waits."""
    return prompt.ask(question + ":") == "yes"


def _split_apply_args(args: Sequence[Path]) -> tuple[Path | None, list[Path]]:
    """`apply PLANFILE` or `apply PATHS...`: a single path that is not a directory and not YAML is
    a saved plan (a FIFO or a device too: reading it is then refused, never attempted as a manifest)."""
    if len(args) == 1 and os.path.lexists(args[0]) and not args[0].is_dir() and args[0].suffix.lower() not in (
            ".yaml", ".yml"):
        return args[0], []
    return None, list(args)


def _apply(session: Session, *, saved: plans.Plan | None, manifests: Manifests, prune: bool, force: bool,
           auto_approve: bool, dry_run: bool, no_color: bool) -> int:
    out, err = stdout_console(no_color), stderr_console(no_color)

    async def work() -> int:
        async with session.client() as client:
            if saved is not None:
                await session.check_fresh(client, saved)
                current = saved
            else:
                current = await session.plan(client, manifests, prune=prune, force=force)
            write_lines(rendering.text_lines(current), no_color=no_color)
            sys.stdout.flush()
            if current.errored:
                return EXIT_ERROR
            if not current.has_changes:
                return EXIT_OK
            # a closed sync window refuses before any prompt (a dry run writes nothing: not refused)
            note = None if dry_run else session.check_window(current, force=force)
            if note:
                out.print(f"warning: {note}", markup=False, style="yellow")
            if not auto_approve and saved is None:
                if not sys.stdin.isatty():
                    raise UsageError("no terminal to ask for approval; pass --auto-approve (or apply a saved plan)")
                if not _approved("Apply these changes? Only 'yes' is accepted"):
                    err.print("Apply cancelled; nothing was changed.", markup=False)
                    return EXIT_ERROR

            from reconciler.cli.progress import apply_progress

            try:
                with apply_progress(out, len(current.writes)) as advance:
                    def report(result: applying.ActionResult) -> None:
                        style = {"applied": "green", "failed": "red", "skipped": "yellow"}[result.outcome.value]
                        out.print(result.line(), markup=False, style=style)
                        advance()

                    outcome = await session.apply(client, current, on_result=report, dry_run=dry_run,
                                                  force=force)
            except applying.ApplyInterrupted as exc:  # Ctrl-C: say what was and was not applied, then exit 130
                out.print(exc.result.summary, markup=False, style="bold red")
                raise
            out.print(outcome.summary, markup=False, style="bold" if outcome.ok else "bold red")
            return EXIT_OK if outcome.ok else EXIT_ERROR

    return run(work())


def register(app: typer.Typer) -> None:
    @app.command()
    @o.api_flags()
    def apply(
        args: Annotated[list[Path] | None, typer.Argument(
            metavar="[PLANFILE | PATHS...]",
            help="A plan saved by `reconciler plan --out`, or manifest files/directories (default: specs/).")] = None,
        paths: Annotated[list[Path] | None, typer.Option("--path", "-p", help="Manifest files or directories "
                                                         "(default: specs/).")] = None,
        auto_approve: Annotated[bool, typer.Option("--auto-approve", help="Apply without asking.")] = False,
        prune: PruneOpt = False, force: ForceOpt = False,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Walk the plan without writing.")] = False,
        selector: o.SelectorOpt = None, only: o.OnlyOpt = None,
        api: Options = Options(), no_color: o.NoColorOpt = False,
        verbose: o.VerboseOpt = False,
        cache_dir: o.CacheDirOpt = None, no_cache: o.NoCacheOpt = False,
    ) -> None:
        """Make the live definitions match the manifests (or carry out a saved plan).

        Asks for `yes` on a terminal unless --auto-approve; without a terminal, --auto-approve or a
        saved plan is needed. Exit 0: applied, or no changes; 3: invalid manifests (nothing
        written); 1: an error, a refused or stale plan, a closed sync window (--force overrides), a
        cancelled prompt, or a failed action.
        """
        setup_logging(verbose)
        planfile, given = _split_apply_args(args or [])
        manifest_paths = [*given, *(paths or [])]
        options = o.session_options([planfile.parent] if planfile else manifest_paths, api=api, selector=selector,
                                    only=only, cache_dir=cache_dir, no_cache=no_cache)
        with exit_codes(no_color=no_color):
            if planfile is None:
                require_paths(options.paths, given=options.paths_given)
            session = Session.open(options, check_paths=False)
            saved: plans.Plan | None = None
            manifests = Manifests()
            if planfile is not None and (selector or only):
                raise UsageError("--selector/--only choose manifests; a saved plan is applied as it is (select "
                                 "when planning)")
            if planfile is not None:
                saved = session.read_saved(planfile)
            else:
                manifests = session.load()
            code = _apply(session, saved=saved, manifests=manifests, prune=prune, force=force,
                          auto_approve=auto_approve, dry_run=dry_run, no_color=no_color)
        raise typer.Exit(code)
