"""``reconciler list``: the live definitions as a table (or JSON)."""

from __future__ import annotations

import json
import shlex
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from reconciler.cli import options as o
from reconciler.cli.console import EXIT_OK, exit_codes, setup_logging, stderr_console, stdout_console
from reconciler.display import printable
from reconciler.engine import render as rendering
from reconciler.session import Options, Session, run

__all__ = ["register", "where_config_is"]


class ListFormat(StrEnum):
    table = "table"
    json = "json"


def where_config_is() -> Path:
    """Commands that read no manifests look for the project config from specs/ (else here)."""
    return Path("specs") if Path("specs").is_dir() else Path(".")


def _print_table(items: list[dict[str, Any]], rows: list[tuple[str, ...]], title: str, no_color: bool) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    # ids, names and times never wrap; only the schedule may (at its spaces)
    for column in ("name", "id", "enabled", "schedule (UTC)", "next run (UTC)", "last job", "owned"):
        table.add_column(column, no_wrap=column != "schedule (UTC)", overflow="fold")
    for row in rows:
        table.add_row(*row)
    console = stdout_console(no_color)
    needed = Console(width=100_000).measure(table).maximum
    if not console.is_terminal:  # a pipe or a CI log has no width: as wide as the rows, nothing folded
        console = Console(width=max(needed, 80), no_color=no_color, highlight=False, soft_wrap=True)
    elif needed > console.width:  # a narrow terminal: one short block per definition, nothing cut
        console.print(table.title, style="italic", markup=False)
        for name, id_, enabled, schedule, next_run, last_job, owned in rows:
            console.print(f"{name}\n  id {id_}   enabled {enabled}   owned {owned}\n"
                          f"  schedule {schedule}   next run {next_run}{' UTC' if next_run != '-' else ''}"
                          f"   last job {last_job}", markup=False, soft_wrap=False)
        return
    console.print(table)


def register(app: typer.Typer) -> None:
    @app.command("list")
    @o.api_flags(without=("concurrency",))
    def list_command(
        search: Annotated[str | None, typer.Option("--search", help="Only definitions whose name contains this.")] = None,
        output: Annotated[ListFormat, typer.Option("--output", "-o", help="table or json.")] = ListFormat.table,
        api: Options = Options(), no_color: o.NoColorOpt = False,
        verbose: o.VerboseOpt = False,
    ) -> None:
        """List the live definitions: id, enabled, schedule, next run, last job status, ownership.

        Exit 0 on success, 1 on an error.
        """
        setup_logging(verbose)
        options = o.session_options(None, default=where_config_is(), api=api)
        with exit_codes(no_color=no_color):
            session = Session.open(options, check_paths=False)

            async def work() -> list[dict[str, Any]]:
                async with session.client() as client:
                    return await client.list_definitions(search_name=search)

            items = sorted(run(work()), key=lambda i: str(i.get("name")))
        if output is ListFormat.json:
            sys.stdout.write(json.dumps([{k: i.get(k) for k in rendering.LIST_KEYS} for i in items], indent=2) + "\n")
            raise typer.Exit(EXIT_OK)
        scope = session.scope

        def owned(name: str) -> str:
            return "-" if scope is None else ("yes" if scope.contains(name) else "no")

        _print_table(items, rendering.list_rows(items, owned=owned),
                     f"{len(items)} live definition(s) on {session.connection.describe()}", no_color)
        failed = [str(i.get("name")) for i in items if i.get("lastStartedJobStatus") == "FAILED"]
        if failed:
            stderr_console(no_color).print(printable(
                f"hint: {len(failed)} definition(s) whose last job FAILED; `reconciler jobs {shlex.quote(failed[0])}` "
                "shows why"), markup=False)
        raise typer.Exit(EXIT_OK)
