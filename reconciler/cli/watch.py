"""``reconciler watch``: validate and plan (and with --apply, apply) on every saved change.

Every run goes through the session with the same flags ``plan`` takes (the shared options), so
``watch --target prod --endpoint URL --token-file F`` works as ``plan`` does.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli import options as o
from reconciler.cli.console import EXIT_OK, exit_codes, setup_logging, stdout_console
from reconciler.session import Options, Session

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("watch")
    @o.api_flags()
    def watch(
        paths: o.PathsArg = None,
        apply: Annotated[bool, typer.Option("--apply", help="Apply each valid plan that has changes "
                                            "(never prunes).")] = False,
        debounce: Annotated[int, typer.Option("--debounce", min=10, max=60_000,
                                              help="Edits this many ms apart or closer make one run.")] = 300,
        selector: o.SelectorOpt = None, only: o.OnlyOpt = None,
        api: Options = Options(), no_color: o.NoColorOpt = False,
        verbose: o.VerboseOpt = False,
    ) -> None:
        """Validate and plan on every change, printing only what changed; --apply applies too.

        An invalid edit prints its errors and keeps the last good state. Ctrl-C stops (exit 0).
        """
        from reconciler.watch import watch_loop

        setup_logging(verbose)
        options = o.session_options(paths, api=api, selector=selector, only=only)
        with exit_codes(no_color=no_color):  # flags and config are checked once before watching
            first = Session.open(options)
            environment = first.environment()
        out = stdout_console(no_color)

        def emit(line: str) -> None:
            out.print(line, markup=False)
            sys.stdout.flush()

        extra: list[Path] = [first.config_file] if first.config_file else []
        if environment is not None and first.config_dir is not None:
            extra.append(environment.overlays_dir(root=first.config_dir))
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C while planning: a clean stop too
            watch_loop(paths=list(options.paths), emit=emit, open_session=lambda: Session.open(options),
                       apply=apply, debounce_ms=debounce, extra_watch=extra)
        emit("stopped")
        raise typer.Exit(EXIT_OK)
