"""``reconciler diff``: live against desired, field by field."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli import options as o
from reconciler.cli.console import EXIT_ERROR, EXIT_OK, exit_codes, setup_logging, write_lines
from reconciler.engine import plan as plans
from reconciler.engine import render as rendering
from reconciler.engine.select import Selection
from reconciler.errors import UsageError
from reconciler.session import Manifests, Options, Session, run

__all__ = ["register"]


def _only(manifests: Manifests, name: str, where: str) -> Manifests:
    """The manifests narrowed to the one declaring ``name``; a clear error with a suggestion if none."""
    kept = [(doc, want) for doc, want in zip(manifests.documents, manifests.desired, strict=True) if want.name == name]
    if not kept:
        declared = sorted(d.name for d in manifests.desired)
        close = difflib.get_close_matches(name, declared, n=3, cutoff=0.6)
        hint = (f"did you mean {' or '.join(repr(c) for c in close)}?" if close else
                f"{len(declared)} are declared there; `reconciler diff` with no name shows every "
                "difference, --path reads other manifests")
        raise UsageError(f"no manifest in {where} declares a definition named {name!r}; {hint}")
    return Manifests(documents=tuple(d for d, _ in kept), desired=tuple(w for _, w in kept), selection=Selection())


def register(app: typer.Typer) -> None:
    @app.command()
    @o.api_flags(without=("concurrency",))
    def diff(
        name: Annotated[str | None, typer.Argument(help="Definition name (default: every changed one).")] = None,
        paths: Annotated[list[Path] | None, typer.Option("--path", "-p", help="Manifest files or directories.")] = None,
        api: Options = Options(),
        exit_code: Annotated[bool, typer.Option("--exit-code", help="Exit 1 when there are differences (as `git "
                                                "diff --exit-code` and `kubectl diff`).")] = False,
        no_color: o.NoColorOpt = False,
        verbose: o.VerboseOpt = False,
        cache_dir: o.CacheDirOpt = None, no_cache: o.NoCacheOpt = False,
    ) -> None:
        """Live against desired, field by field.

        Exit 0 (with or without differences: `plan --detailed-exitcode` tells them apart); with
        --exit-code, 1 when there are differences; 3: invalid manifests; 1: an error.
        """
        setup_logging(verbose)
        options = o.session_options(paths, api=api, cache_dir=cache_dir, no_cache=no_cache)
        with exit_codes(no_color=no_color):
            session = Session.open(options)
            manifests = session.load()
            if name is not None:
                manifests = _only(manifests, name, ", ".join(str(p) for p in options.paths))

            async def work() -> plans.Plan:
                async with session.client() as client:
                    return await session.plan(client, manifests)

            result = run(work())
        write_lines(rendering.diff_lines(result, name=name), no_color=no_color)
        raise typer.Exit(EXIT_ERROR if exit_code and result.has_changes else EXIT_OK)
