"""``reconciler serve``: the local service over HTTP with uvicorn.

Without a token the service accepts anyone who can reach it, so it then binds to loopback only
and refuses any other host, saying why. The token itself is never printed.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from reconciler.service.settings import (
    DEFAULT_DB_URL,
    KEEP_ALIVE_SECONDS,
    LOOPBACK_HOSTS,
    TOKEN_ENV,
    ServiceSettings,
    read_token,
)


def redacted_url(url: str) -> str:
    import sqlalchemy as sa

    from reconciler.service.store import normalize_url

    try:
        return sa.make_url(normalize_url(url)).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is reported by the store; never echo it raw
        return "<unparsable database URL>"


def check_bind(host: str, token: str | None) -> str | None:
    """Why serving on ``host`` is refused, or None."""
    if token is None and host not in LOOPBACK_HOSTS:
        return (f"refusing to listen on {host} without a token: anyone on the network could change job "
                f"definitions. Use --host 127.0.0.1, or set a token with --token-file FILE or ${TOKEN_ENV}")
    return None


def _configure_logging(access_log: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    service_log = logging.getLogger("reconciler.service")
    service_log.addHandler(handler)
    service_log.setLevel(logging.INFO)
    service_log.propagate = False
    # a level, not ``disabled``: uvicorn's dictConfig (in uvicorn.Config) re-enables existing loggers
    logging.getLogger("reconciler.service.access").setLevel(logging.INFO if access_log else logging.CRITICAL + 1)


def register(app: typer.Typer) -> None:
    _register_models(app)
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
        import uvicorn

        from reconciler.extras import MissingExtra, require
        from reconciler.service.app import create_app
        from reconciler.service.runner.cluster.config import ExecutorError, executor_config

        try:
            executor_setting = executor_config(executor, dask_scheduler)
        except ExecutorError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        if run_jobs:
            require("runner", "running batch prediction jobs (reconciler serve)",
                    alternative=" (or serve the API alone with --no-run-jobs)")
            if executor_setting.is_dask:
                require("dask", "scoring jobs on a Dask cluster (--executor dask)",
                        alternative=" (or score them in this process: drop --executor/--dask-scheduler)")

        try:
            token = read_token(token_file=token_file)
        except (OSError, ValueError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        refusal = check_bind(host, token)
        if refusal:
            typer.echo(f"error: {refusal}", err=True)
            raise typer.Exit(1)
        _configure_logging(access_log)
        try:
            application = create_app(ServiceSettings(db_url=db, token=token, scheduler_interval=scheduler_interval,
                                                     run_jobs=run_jobs, max_running_jobs=max_running_jobs,
                                                     job_lease_seconds=job_lease_seconds,
                                                     data_dir=None if data_dir is None else str(data_dir),
                                                     metrics_public=metrics_without_token, ui=ui,
                                                     executor=executor_setting.kind,
                                                     dask_scheduler=dask_scheduler,
                                                     dask_partition_bytes=dask_partition_bytes,
                                                     dask_partition_rows=dask_partition_rows))
        except MissingExtra:
            raise
        except Exception as exc:
            typer.echo(f"error: cannot open the database {redacted_url(db)}: {exc}\n"
                       "hint: check the URL, that the server is running, and that the directory is writable", err=True)
            raise typer.Exit(1) from None
        shown = f"[{host}]" if ":" in host else host
        auth = "token required" if token else "no token: loopback only"
        scoring = f"; jobs scored on {executor_setting.describe()}" if run_jobs and executor_setting.is_dask else ""
        typer.echo(f"reconciler service on http://{shown}:{port}/api/v2/ ({auth}); database {redacted_url(db)}; "
                   f"docs at http://{shown}:{port}/docs{scoring}"
                   + (f"; dashboard at http://{shown}:{port}/ui/" if ui else ""), err=True)
        config = uvicorn.Config(application, host=host, port=port, access_log=False, log_level="info",
                                lifespan="on", timeout_graceful_shutdown=10,  # lifespan runs the scheduler
                                timeout_keep_alive=KEEP_ALIVE_SECONDS)
        uvicorn.Server(config).run()
        application.state.store.close()


_TRUST_NOTE = ("SECURITY: a joblib artifact is a pickle, i.e. code that runs when it is loaded (here and in the "
               "service). Register only artifacts from a trusted source.")


def _register_models(app: typer.Typer) -> None:
    """``reconciler models register``: admin registration of a deployment's model, straight into the
    database (the service's ``PUT deployments/{id}/model`` does the same over HTTP)."""
    models = typer.Typer(help="Models behind the local service's deployments (admin).", no_args_is_help=True)
    app.add_typer(models, name="models")

    @models.command("register", help="Register (or replace) the model a deployment scores with: a scikit-learn "
                                     "estimator saved with joblib, or an ONNX file. The deployment is created with "
                                     "--label if it does not exist. " + _TRUST_NOTE)
    def register_model(
        deployment_id: Annotated[str, typer.Option("--deployment-id", help="Deployment id (24 hex digits).")],
        artifact: Annotated[Path, typer.Option(help="The model file.", exists=True, dir_okay=False, readable=True)],
        db: Annotated[str, typer.Option(help="sqlite:///path.db or postgresql://user@host:port/db.")] = DEFAULT_DB_URL,
        label: Annotated[str | None, typer.Option(help="Deployment label (creates the deployment if missing).")] = None,
        target_name: Annotated[str | None, typer.Option("--target-name", help="Target column name; default: from "
                                                        "the model, else 'target'.")] = None,
        kind: Annotated[str | None, typer.Option(help="joblib or onnx; guessed from the file when omitted.")] = None,
        feature_names: Annotated[str | None, typer.Option("--feature-names", help="Comma-separated input columns, "
                                                          "for artifacts that name none.")] = None,
        class_names: Annotated[str | None, typer.Option("--class-names", help="Comma-separated class names, for "
                                                        "ONNX classifiers without labels.")] = None,
    ) -> None:
        import hashlib
        import re

        from reconciler.extras import MODEL_MODULES, MissingExtra, require

        require("models", "reconciler models register", modules=MODEL_MODULES)
        from reconciler.service.routes.models import register as store_model
        from reconciler.service.runner import artifacts
        from reconciler.service.store import Store

        if not re.fullmatch(r"[0-9a-fA-F]{24}", deployment_id):
            typer.echo("error: --deployment-id must be 24 hex digits", err=True)
            raise typer.Exit(1)
        if kind is not None and kind not in artifacts.KINDS:
            typer.echo(f"error: --kind must be one of {', '.join(artifacts.KINDS)}", err=True)
            raise typer.Exit(1)

        def names(text: str | None) -> list[str] | None:
            found = [p.strip() for p in (text or "").split(",") if p.strip()]
            return found or None

        data = artifact.read_bytes()
        try:
            description = artifacts.describe(data, kind=kind, target_name=target_name,
                                             feature_names=names(feature_names), class_names=names(class_names))
        except artifacts.ArtifactError as exc:
            typer.echo(f"error: cannot use {artifact}: {exc}", err=True)
            raise typer.Exit(1) from None
        user = {"username": "admin", "userId": hashlib.sha256(b"admin").hexdigest()[:24], "fullName": None}
        try:
            store = Store(db)
        except MissingExtra:
            raise
        except Exception as exc:
            typer.echo(f"error: cannot open the database {redacted_url(db)}: {exc}", err=True)
            raise typer.Exit(1) from None
        try:
            record = store_model(store, deployment_id, description, data, label=label, user=user)
        except Exception as exc:
            message = getattr(exc, "message", str(exc))
            hints = "; ".join(getattr(exc, "errors", {}).values())
            typer.echo(f"error: {message}" + (f" ({hints})" if hints else ""), err=True)
            raise typer.Exit(1) from None
        finally:
            store.close()
        classes = f", classes {', '.join(record.class_names)}" if record.class_names else ""
        typer.echo(f"deployment {deployment_id}: {record.kind} {record.task} model, target {record.target_name!r}"
                   f"{classes}, {len(record.feature_names)} feature(s)", err=True)
