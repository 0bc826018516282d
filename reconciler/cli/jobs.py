"""``reconciler jobs [NAME]`` and ``reconciler job ID``: what ran, how long, how many rows, and why
a job failed, against any target, without curl."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Annotated, Any

import typer

from reconciler.cli import options as o
from reconciler.cli.console import EXIT_OK, exit_codes, setup_logging, stderr_console, stdout_console
from reconciler.cli.listing import where_config_is
from reconciler.errors import ServiceError, UsageError
from reconciler.session import Options, Session, run

__all__ = ["register"]

_STATUS_STYLE = {"COMPLETED": "green", "FAILED": "red", "ABORTED": "yellow", "RUNNING": "cyan"}


class JobsFormat(StrEnum):
    table = "table"
    json = "json"


class JobStatus(StrEnum):
    INITIALIZING = "INITIALIZING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    ABORTED = "ABORTED"
    FAILED = "FAILED"


def _print_jobs(jobs: list[dict[str, Any]], title: str, no_color: bool) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from reconciler.engine.jobs import JOB_COLUMNS, job_rows

    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in JOB_COLUMNS:
        table.add_column(column, no_wrap=column != "details", overflow="fold",
                         justify="right" if column in ("elapsed", "scored", "failed") else "left")
    for row in job_rows(jobs):
        table.add_row(*row, style=_STATUS_STYLE.get(row[2]) if not no_color else None)
    console = stdout_console(no_color)
    if not console.is_terminal:  # a pipe or a CI log: as wide as the rows, nothing folded
        console = Console(width=max(Console(width=100_000).measure(table).maximum, 80), no_color=no_color,
                          highlight=False, soft_wrap=True)
    console.print(table)


def register(app: typer.Typer) -> None:
    @app.command("jobs")
    @o.api_flags(without=("concurrency",))
    def jobs_command(
        name: Annotated[str | None, typer.Argument(help="Only the jobs of this definition (default: all).")] = None,
        status: Annotated[list[JobStatus] | None, typer.Option("--status", help="Only jobs in this state "
                                                               "(repeatable).")] = None,
        limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000, help="At most this many, newest "
                                           "first.")] = 20,
        output: Annotated[JobsFormat, typer.Option("--output", "-o", help="table or json.")] = JobsFormat.table,
        api: Options = Options(), no_color: o.NoColorOpt = False,
        verbose: o.VerboseOpt = False,
    ) -> None:
        """List recent jobs, newest first: id, status, started, elapsed, scored and failed rows, details.

        Exit 0 on success (whatever the jobs' states), 1 on an error.
        """
        from reconciler.api.jobs import recent_jobs
        from reconciler.engine.jobs import JOB_KEYS

        setup_logging(verbose)
        options = o.session_options(None, api, default=where_config_is())
        with exit_codes(no_color=no_color):
            session = Session.open(options, check_paths=False)

            async def work() -> list[dict[str, Any]]:
                async with session.client() as client:
                    definition_id = None
                    if name is not None:
                        found = await client.find_by_name(name)
                        if found is None:
                            raise UsageError(f"no live definition named {name!r}; `reconciler list` shows the live "
                                             "ones")
                        definition_id = str(found["id"])
                    return await recent_jobs(client, definition_id=definition_id,
                                             statuses=[str(s) for s in status or []], limit=limit)

            found_jobs = run(work())
        if output is JobsFormat.json:
            sys.stdout.write(json.dumps([{k: j.get(k) for k in JOB_KEYS if k in j} for j in found_jobs],
                                        indent=2) + "\n")
            raise typer.Exit(EXIT_OK)
        whose = f"of {name}" if name is not None else "of all definitions and ad-hoc jobs"
        _print_jobs(found_jobs, f"{len(found_jobs)} most recent job(s) {whose} on {session.connection.describe()}",
                    no_color)
        raise typer.Exit(EXIT_OK)

    @app.command("job")
    @o.api_flags(without=("concurrency",))
    def job_command(
        job_id: Annotated[str, typer.Argument(metavar="ID", help="The job's id (from `reconciler jobs`).")],
        wait: Annotated[bool, typer.Option("--wait", help="Wait until the job finishes; exit 1 unless it "
                                           "COMPLETED.")] = False,
        timeout: Annotated[float, typer.Option("--timeout", min=1, help="With --wait: give up after this many "
                                               "seconds (exit 1; the job keeps running).")] = 3600.0,
        output: Annotated[JobsFormat, typer.Option("--output", "-o", help="table or json.")] = JobsFormat.table,
        api: Options = Options(), no_color: o.NoColorOpt = False,
        verbose: o.VerboseOpt = False,
    ) -> None:
        """Show one job: status, details, started, elapsed, rows; --wait follows it to the end.

        Exit 0 when read (with --wait: when it COMPLETED); 1 on an error, or with --wait when it
        FAILED, was ABORTED or is still running at --timeout.
        """
        from reconciler.api.jobs import check_job_id
        from reconciler.engine.jobs import FINISHED, job_lines, job_summary

        setup_logging(verbose)
        options = o.session_options(None, api, default=where_config_is())
        err = stderr_console(no_color)

        async def work(session: Session) -> dict[str, Any]:
            async with session.client() as client:
                job = await client.get_job(check_job_id(job_id))
                if not wait:
                    return job
                def progress(seen: dict[str, Any]) -> None:  # the final state is printed once, below
                    if seen.get("status") not in FINISHED:
                        err.print(job_summary(seen), markup=False)

                async with session.embedded_runner(client):
                    return await client.wait_for_job(str(job["id"]), timeout=timeout, poll=0.5, on_status=progress)

        with exit_codes(no_color=no_color):
            job = run(work(Session.open(options, check_paths=False)))
            if output is JobsFormat.json:
                sys.stdout.write(json.dumps(job, indent=2) + "\n")
            else:
                style = _STATUS_STYLE.get(str(job.get("status")))
                stdout_console(no_color).print("\n".join(job_lines(job)), markup=False, style=style)
            status = job.get("status")
            if wait and status in ("FAILED", "ABORTED"):
                raise ServiceError(job_summary(job))
            if wait and status != "COMPLETED":
                raise ServiceError(f"job {job.get('id')} is still {status} after {timeout:g}s; it keeps running")
        raise typer.Exit(EXIT_OK)
