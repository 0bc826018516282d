"""``reconciler serve``: flags → the local service's app (:func:`reconciler.service.app.create_app`)
→ :func:`reconciler.service.serving.run`. Without a token it binds to loopback only."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.console import exit_codes
from reconciler.errors import ServiceError, UsageError
from reconciler.notify.send import channels_from_env
from reconciler.service.settings import DEFAULT_DB_URL, TOKEN_ENV

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        host: Annotated[str, typer.Option(help="Address to listen on; non-loopback needs a token.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
        db: Annotated[str, typer.Option(help="sqlite:///path.db or postgresql://user@host:port/db.")] = DEFAULT_DB_URL,
        token_file: Annotated[Path | None, typer.Option("--token-file", help=f"File holding the API token (else ${TOKEN_ENV}).",
                                                        exists=True, dir_okay=False, readable=True)] = None,
        access_log: Annotated[bool, typer.Option("--access-log/--no-access-log", help="One log line per request.")] = True,
        scheduler_interval: Annotated[float, typer.Option(help="Seconds between schedule checks; 0 disables.",
                                                          min=0)] = 5.0,
        run_jobs: Annotated[bool, typer.Option("--run-jobs/--no-run-jobs", help="Execute queued batch prediction "
                                               "jobs in this process.")] = True,
        max_running_jobs: Annotated[int, typer.Option(help="Jobs this process runs at once.", min=1)] = 2,
        job_lease_seconds: Annotated[float, typer.Option(help="A RUNNING job whose process has not renewed its lease "
                                                         "for this long is failed by any replica (renewed and "
                                                         "checked every third of it).", min=1)] = 30.0,
        data_dir: Annotated[Path | None, typer.Option(help="Uploads and results of jobs (default: jobs/ beside a "
                                                      "SQLite database, else .reconciler/jobs).")] = None,
        metrics_without_token: Annotated[bool, typer.Option("--metrics-without-token", help="Serve /metrics "
                                                            "without the token (for Prometheus scrapes).")] = False,
        ui: Annotated[bool, typer.Option("--ui/--no-ui", help="The web dashboard at /ui.")] = True,
        executor: Annotated[str | None, typer.Option(help="Where jobs are scored: local (this process, the default) "
                                                     "or dask (a Dask cluster; needs --dask-scheduler).")] = None,
        dask_scheduler: Annotated[str | None, typer.Option("--dask-scheduler", help="The Dask scheduler: "
                                                           "tcp://host:8786, or local-cluster:N to start N worker "
                                                           "processes here. Implies --executor dask.")] = None,
        dask_partition_bytes: Annotated[int, typer.Option(help="Bytes of CSV/Parquet input per partition on Dask; "
                                                          "a smaller input is scored in this process.",
                                                          min=1)] = 64 * 1024**2,
        dask_partition_rows: Annotated[int, typer.Option(help="Rows of a JDBC query per partition on Dask (ranges "
                                                         "of the data store's partitionColumn); fewer are scored "
                                                         "in this process.", min=1)] = 1_000_000,
    ) -> None:
        """Serve the local job-definitions API (DataRobot-compatible) on HTTP; docs at /docs."""
        with exit_codes():
            from reconciler.extras import MissingExtra, require
            from reconciler.service import serving
            from reconciler.service.app import create_app
            from reconciler.service.runner.cluster.config import ExecutorError, executor_config
            from reconciler.service.settings import ServiceSettings, read_token

            try:
                executor_setting = executor_config(executor, dask_scheduler)
            except ExecutorError as exc:
                raise UsageError(str(exc)) from None
            if run_jobs:
                require("runner", "running batch prediction jobs (reconciler serve)",
                        alternative=" (or serve the API alone with --no-run-jobs)")
                if executor_setting.is_dask:
                    require("dask", "scoring jobs on a Dask cluster (--executor dask)",
                            alternative=" (or score them in this process: drop --executor/--dask-scheduler)")

            try:
                token = read_token(token_file=token_file)
            except (OSError, ValueError) as exc:
                raise UsageError(str(exc)) from None
            refusal = serving.check_bind(host, token)
            if refusal:
                raise UsageError(refusal)
            serving.configure_logging(access_log)
            try:
                application = create_app(ServiceSettings(db_url=db, token=token, scheduler_interval=scheduler_interval,
                                                         run_jobs=run_jobs, max_running_jobs=max_running_jobs,
                                                         job_lease_seconds=job_lease_seconds,
                                                         data_dir=None if data_dir is None else str(data_dir),
                                                         metrics_public=metrics_without_token, ui=ui,
                                                         executor=executor_setting.kind,
                                                         dask_scheduler=dask_scheduler,
                                                         dask_partition_bytes=dask_partition_bytes,
                                                         dask_partition_rows=dask_partition_rows,
                                                         notify=channels_from_env(os.environ, events=frozenset({"job.failed"}))))
            except MissingExtra:
                raise
            except Exception as exc:
                raise ServiceError(f"cannot open the database {serving.redacted_url(db)}: {exc}\nhint: check the URL, "
                                   "that the server is running, and that the directory is writable") from None
            shown = f"[{host}]" if ":" in host else host
            auth = "token required" if token else "no token: loopback only"
            scoring = f"; jobs scored on {executor_setting.describe()}" if run_jobs and executor_setting.is_dask else ""
            typer.echo(f"reconciler service on http://{shown}:{port}/api/v2/ ({auth}); database {serving.redacted_url(db)}; "
                       f"docs at http://{shown}:{port}/docs{scoring}"
                       + (f"; dashboard at http://{shown}:{port}/ui/" if ui else ""), err=True)
            serving.run(application, host=host, port=port)
