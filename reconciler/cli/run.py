"""``reconciler run NAME``: start one job from a live definition now."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from reconciler.cli import options as o
from reconciler.cli.console import EXIT_OK, exit_codes, setup_logging, stderr_console
from reconciler.cli.listing import where_config_is
from reconciler.errors import ServiceError, UsageError
from reconciler.session import Options, Session, run

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("run")
    @o.api_flags(without=("concurrency",))
    def run_command(
        name: Annotated[str, typer.Argument(help="Definition name.")],
        wait: Annotated[bool, typer.Option("--wait", help="Wait until the job finishes; exit 1 unless it "
                                           "COMPLETED.")] = False,
        timeout: Annotated[float, typer.Option("--timeout", min=1, help="With --wait: give up after this many "
                                               "seconds (exit 1; the job keeps running).")] = 3600.0,
        api: Options = Options(), verbose: o.VerboseOpt = False,
    ) -> None:
        """Start one job from a definition now; print its id and status (stdout: `JOB_ID STATUS`).

        Exit 0 when the job started (with --wait: when it COMPLETED); 1 otherwise.
        """
        setup_logging(verbose)
        options = o.session_options(None, default=where_config_is(), api=api)
        err = stderr_console()

        def progress(job: dict[str, Any]) -> None:
            done = job.get("percentageCompleted")
            err.print(f"job {job.get('id')}: {job.get('status')}"
                      + (f" ({done:.0f}%)" if isinstance(done, (int, float)) else ""), markup=False)

        async def work(session: Session) -> dict[str, Any]:
            async with session.client() as client:
                found = await client.find_by_name(name)
                if found is None:
                    raise UsageError(f"no live definition named {name!r}; `reconciler list` shows the live ones")
                async with session.embedded_runner(client, enabled=wait):
                    job = await client.run_definition(str(found["id"]))
                    sys.stdout.write(f"{job.get('id')} {job.get('status')}\n")
                    sys.stdout.flush()
                    if wait:
                        job = await client.wait_for_job(str(job["id"]), timeout=timeout, poll=0.5,
                                                        on_status=progress)
                        sys.stdout.write(f"{job.get('id')} {job.get('status')}\n")
                    elif client.local_app is not None and job.get("status") not in ("FAILED", "ABORTED"):
                        err.print("note: the embedded service runs jobs only while a command waits: pass --wait, "
                                  "or run `reconciler serve` (it picks up queued jobs)", markup=False)
                return job

        with exit_codes():
            job = run(work(Session.open(options, check_paths=False)))
            status = job.get("status")
            if status in ("FAILED", "ABORTED"):
                raise ServiceError(f"job {job.get('id')} {status}: {job.get('statusDetails') or 'no details given'}")
            if wait and status != "COMPLETED":
                raise ServiceError(f"job {job.get('id')} is still {status} after {timeout:g}s; it keeps running "
                                   "(`reconciler run` again would start another)")
        raise typer.Exit(EXIT_OK)
