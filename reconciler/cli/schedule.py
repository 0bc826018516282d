"""``reconciler schedule``: when the definitions fire, as a week's heatmap, the busiest minutes, a
suggested spread and each one's next firings (issue #14 item 2).

A thin shell over :mod:`reconciler.engine.schedule` (pure: the week, the spread, the views) and
:mod:`reconciler.contract.firings` (the firing computation the local service's dashboard uses
too). The schedules come from manifests (validated like ``plan`` does: an invalid one exits 3) or,
with ``--live``, from the API through the same client and target options as ``list``.
Only what runs counts: enabled definitions with a schedule.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer

# the shared target options and helpers (cli.py imports the module anyway)
from reconciler.cli import options as o
from reconciler.cli.console import EXIT_OK, exit_codes, setup_logging, stdout_console
from reconciler.cli.listing import where_config_is
from reconciler.errors import UsageError
from reconciler.session import Options, Session, run

__all__ = ["live_schedules", "manifest_schedules", "register"]


class ScheduleFormat(StrEnum):
    text = "text"
    json = "json"


def _unique(pairs: Iterable[tuple[str, str, Mapping[str, Any]]]) -> dict[str, Mapping[str, Any]]:
    """name -> schedule; a name used twice gets its id (or source) appended, so none is lost."""
    found: dict[str, Mapping[str, Any]] = {}
    for name, where, schedule in pairs:
        found[name if name not in found else f"{name} [{where}]"] = schedule
    return found


def live_schedules(items: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """The schedules of the live definitions that fire (enabled, with a schedule)."""
    return _unique((str(item.get("name")), str(item.get("id")), item["schedule"]) for item in items
                   if item.get("enabled") and isinstance(item.get("schedule"), Mapping))


def manifest_schedules(bodies: Iterable[tuple[Mapping[str, Any], str | None]]) -> dict[str, Mapping[str, Any]]:
    """The schedules of the manifests that would fire: (create body, source) pairs."""
    return _unique((str(body["name"]), source or "?", body["schedule"]) for body, source in bodies
                   if body.get("enabled") and isinstance(body.get("schedule"), Mapping))


def register(app: typer.Typer) -> None:
    @app.command("schedule")
    @o.api_flags(without=("concurrency",))
    def schedule_command(
        paths: o.PathsArg = None,
        live: Annotated[bool, typer.Option("--live", help="The live definitions (of --target/--endpoint) instead "
                                           "of manifests.")] = False,
        tz: Annotated[str, typer.Option("--tz", help="Draw the week in this IANA time zone, e.g. "
                                        "Europe/Berlin (schedules themselves are UTC).")] = "UTC",
        first_day: Annotated[str | None, typer.Option("--from", metavar="YYYY-MM-DD", help="The week's first day "
                                                      "(default: today in --tz).")] = None,
        next_count: Annotated[int, typer.Option("--next", min=0, max=100, help="Next firings listed per "
                                                "definition.")] = 3,
        busiest: Annotated[int, typer.Option("--busiest", min=0, max=1000, help="Busiest minutes listed.")] = 5,
        limit: Annotated[int | None, typer.Option("--limit", min=1, help="Spread: at most this many definitions "
                                                  "per minute (default: the busiest hour spread evenly).")] = None,
        output: Annotated[ScheduleFormat, typer.Option("--output", "-o", help="text or json.")] = ScheduleFormat.text,
        api: Options = Options(), no_color: o.NoColorOpt = False,
        selector: o.SelectorOpt = None, only: o.OnlyOpt = None, verbose: o.VerboseOpt = False,
    ) -> None:
        """When definitions fire: a week's heatmap, the busiest minutes, a spread, the next firings.

        The spread suggests which definitions to move by a few minutes (within their hour) so that
        no minute has more than --limit of them. Exit 0 on success, 1 on an error, 3 on invalid
        manifests.
        """
        from reconciler.contract import firings
        from reconciler.engine import schedule as view

        setup_logging(verbose)
        with exit_codes(no_color=no_color):
            try:
                zone = firings.time_zone(tz)
            except ValueError as exc:
                raise UsageError(f"--tz: {exc}") from None
            now = datetime.now(UTC)
            try:
                start = date.fromisoformat(first_day) if first_day else now.astimezone(zone).date()
            except ValueError:
                raise UsageError(f"--from {first_day!r}: expected a date as YYYY-MM-DD, e.g. 2026-03-02") from None
            if live:
                if paths:
                    raise UsageError("--live reads the live definitions: give no manifest paths with it")
                session = Session.open(o.session_options(None, default=where_config_is(), api=api), check_paths=False)

                async def work() -> list[dict[str, Any]]:
                    async with session.client() as client:
                        items: list[dict[str, Any]] = await client.list_definitions()
                        return items

                schedules = live_schedules(run(work()))
            else:
                session = Session.open(o.session_options(paths, api=api,
                                                         selector=selector, only=only))
                manifests = session.load()
                chosen = [d for doc, d in zip(manifests.documents, manifests.desired, strict=True)
                          if manifests.selection.matches(doc, d)]
                schedules = manifest_schedules((d.body, d.source) for d in chosen)
            report = view.build_report(schedules, first_day=start, tz=tz, now=now, next_count=next_count,
                                       busiest_count=busiest, limit=limit)
        if output is ScheduleFormat.json:
            sys.stdout.write(json.dumps(view.to_json(report), indent=2) + "\n")
            raise typer.Exit(EXIT_OK)
        console = stdout_console(no_color)
        if not console.is_terminal:  # a pipe or a CI log has no width: the heatmap's full width
            from rich.console import Console

            console = Console(width=max(console.width, 130), no_color=no_color, highlight=False, soft_wrap=True)
        for renderable in view.render(report):
            console.print(renderable)
        raise typer.Exit(EXIT_OK)
