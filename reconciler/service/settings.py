"""Service configuration: one frozen value built by the CLI or a test, handed to ``create_app``.

Routes read it through the ``get_settings`` dependency, so a test can swap it with
``app.dependency_overrides[get_settings]`` instead of patching globals.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconciler.notify.send import Channel

DEFAULT_DB_URL = "sqlite:///.reconciler/local.db"
TOKEN_ENV = "RECONCILER_SERVICE_TOKEN"
MAX_BODY_BYTES = 1024 * 1024
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
# Seconds an idle keep-alive connection stays open (uvicorn closes it after 5 by default). The
# DataRobot SDK polls a job every 5 s on one pooled connection and does not retry one the server
# closed in between ("Connection reset by peer"), so idle connections must outlive its poll well.
KEEP_ALIVE_SECONDS = 75


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """``token=None`` means no authentication, which is only allowed on loopback (see ``cli``)."""

    db_url: str = DEFAULT_DB_URL
    token: str | None = field(default=None, repr=False)  # never in a repr, so never in a log line
    max_body_bytes: int = MAX_BODY_BYTES
    username: str = "local"
    full_name: str | None = "Local Service User"
    # The API picks the deployment's core count when numConcurrent is omitted; the local service has
    # no prediction servers, so it records this fixed value instead.
    default_num_concurrent: int = 1
    default_page_size: int = 100
    max_page_size: int = 1000
    # Seconds between scheduler passes in ``reconciler serve``; 0 disables the scheduler.
    scheduler_interval: float = 5.0
    # Where AI Catalog dataset files live; None = ``datasets/`` beside a SQLite file, else
    # ``.reconciler/datasets`` (see ``dataset_dir``).
    dataset_dir: str | None = None
    # Job execution (issue #8). ``run_jobs``: start the runner in the app lifespan (``reconciler
    # serve``); ``max_running_jobs``: jobs scored at once by this process; ``scoring_threads``:
    # threads scoring chunks, shared by all jobs (0 = one per CPU); a job's numConcurrent bounds
    # its own chunks in flight. ``data_dir``: uploads and results; None = ``jobs/`` beside a
    # SQLite file, else ``.reconciler/jobs`` (see ``job_data_dir``). A RUNNING job whose runner
    # has not renewed its lease for ``job_lease_seconds`` is failed (the process died).
    run_jobs: bool = True
    max_running_jobs: int = 2
    scoring_threads: int = 0
    data_dir: str | None = None
    job_lease_seconds: float = 30.0
    runner_poll_seconds: float = 0.25
    max_upload_bytes: int = 50 * 1024**3
    max_model_bytes: int = 512 * 1024**2
    # Observability (issue #14): /metrics without the token (Prometheus scrapes usually carry none;
    # off by default, see service/metrics.py); the dashboard at /ui and its login's lifetime.
    metrics_public: bool = False
    ui: bool = True
    ui_session_seconds: int = 8 * 3600
    # Where jobs are scored (issue #15): ``local`` (this process's pool) or ``dask`` with
    # ``dask_scheduler`` (``tcp://host:8786``, or ``local-cluster:N`` to start N worker processes
    # here). A dask job is split into partitions of ``dask_partition_bytes`` of its CSV/Parquet
    # input (``dask_partition_rows`` rows of a JDBC query); a job smaller than one partition is
    # scored here, as with the local executor. ``dask_worker_wait_seconds``: how long a job waits
    # for the cluster's first worker before it fails.
    executor: str = "local"
    dask_scheduler: str | None = None
    dask_partition_bytes: int = 64 * 1024**2
    dask_partition_rows: int = 1_000_000
    dask_worker_wait_seconds: float = 60.0
    # job.failed notifications (issue #13): resolved channels (URLs and secrets: never in a repr)
    notify: tuple[Channel, ...] = field(default=(), repr=False)


def read_token(*, token_file: Path | None = None, environ: dict[str, str] | None = None) -> str | None:
    """The token from ``--token-file`` (first line, stripped), else ``$RECONCILER_SERVICE_TOKEN``, else None."""
    env = os.environ if environ is None else environ
    if token_file is not None:
        text = token_file.read_text(encoding="utf-8").strip()
        if not text:
            raise ValueError(f"token file {token_file} is empty; write the token on its first line")
        return text.splitlines()[0].strip()
    value = env.get(TOKEN_ENV, "").strip()
    return value or None


def dataset_dir(settings: ServiceSettings) -> Path:
    """The directory dataset uploads are stored in: explicit, else next to the SQLite database so
    a test's temporary database keeps its files in the same temporary directory."""
    if settings.dataset_dir:
        return Path(settings.dataset_dir)
    if settings.db_url.startswith("sqlite:///") and ":memory:" not in settings.db_url:
        return Path(settings.db_url[len("sqlite:///"):]).expanduser().parent / "datasets"
    return Path(".reconciler/datasets")


def job_data_dir(settings: ServiceSettings) -> Path:
    """Where job uploads and results live: explicit, else next to the SQLite database (like
    ``dataset_dir``), else ``.reconciler/jobs``."""
    if settings.data_dir:
        return Path(settings.data_dir)
    if settings.db_url.startswith("sqlite:///") and ":memory:" not in settings.db_url:
        return Path(settings.db_url[len("sqlite:///"):]).expanduser().parent / "jobs"
    return Path(".reconciler/jobs")
