"""Real servers for tests and benchmarks: the service under uvicorn, and a throwaway PostgreSQL.

Reused by other areas' tests (plan/apply integration, operator), so both are plain context
managers with no pytest dependency:

    with PostgresServer() as pg, LocalServer(db_url=pg.create_database("t1")) as server:
        httpx.get(server.api_url + "version/")

``LocalServer`` runs uvicorn in a background thread on a socket it bound itself (no port race),
or, with ``separate_process=True``, runs ``reconciler serve`` in a child process (for benchmarks, so
that client and server do not share one GIL). ``PostgresServer`` runs ``initdb`` + ``pg_ctl`` in a
temporary directory on a free loopback port; PostgreSQL refuses to run as root, so as root it
uses (and creates if missing) the system user ``reconciler-pg``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import uvicorn

from reconciler.service.settings import KEEP_ALIVE_SECONDS, TOKEN_ENV, ServiceSettings

PG_BIN_DIRS = ("/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin")
PG_USER = "reconciler-pg"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def metric_samples(url: str, headers: dict[str, str] | None = None, *, timeout: float = 30.0) -> Samples:
    """Every sample a Prometheus endpoint serves: (name, sorted labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(url, headers=headers or {}, timeout=timeout).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def requests_by_route(service_url: str, headers: dict[str, str] | None = None) -> dict[tuple[str, str], int]:
    """(method, route template) -> requests the service at ``service_url`` answered so far (its /metrics)."""
    found: dict[tuple[str, str], int] = {}
    for (name, labels), value in metric_samples(f"{service_url}/metrics", headers).items():
        if name == "reconciler_http_requests_total":
            key = (dict(labels)["method"], dict(labels)["route"])
            found[key] = found.get(key, 0) + int(value)
    return found


def counter_sum(url: str, name: str, *, label: tuple[str, str]) -> int:
    """The sum of counter ``name``'s samples that carry ``label`` (e.g. the operator's resync reconciles)."""
    return int(sum(value for (found, labels), value in metric_samples(url).items()
                   if found == name and label in labels))


def stop_process(process: subprocess.Popen[Any], *, timeout: float) -> None:
    """SIGTERM (a graceful stop: uvicorn, kopf and the emulators clean up on it), then SIGKILL if
    ``process`` is still running after ``timeout`` seconds; reaped either way."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_until_healthy(url: str, *, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None) -> None:
    """Poll ``{url}/healthz`` until it answers 200; fail early if ``process`` died."""
    deadline = time.monotonic() + timeout
    last: str = "no answer"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the service exited with code {process.returncode} before answering")
        try:
            response = httpx.get(f"{url}/healthz", timeout=2.0)
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.05)
    raise TimeoutError(f"the service at {url} did not become healthy in {timeout:.0f}s (last: {last})")


class LocalServer:
    """The service on ``127.0.0.1:<free port>``; ``url`` is the root, ``api_url`` ends in ``/api/v2/``."""

    def __init__(self, *, db_url: str | None = None, token: str | None = None, separate_process: bool = False,
                 access_log: bool = False, run_jobs: bool = False, settings: dict[str, Any] | None = None,
                 serve_args: tuple[str, ...] = ()) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if db_url is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="reconciler-service-")
            db_url = f"sqlite:///{self._tmp.name}/local.db"
        self.db_url = db_url
        self.token = token
        self.use_subprocess = separate_process
        self.access_log = access_log
        # run_jobs: start the job runner (app lifespan), as ``reconciler serve`` does; off by
        # default so tests of queued jobs see them stay INITIALIZING. ``settings``: extra
        # ServiceSettings fields (thread mode only).
        self.run_jobs = run_jobs
        self.extra_settings = dict(settings or {})
        self.serve_args = serve_args  # more `reconciler serve` options (process mode only)
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v2/"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"} if self.token else {}

    def __enter__(self) -> Self:
        try:
            if self.use_subprocess:
                self._start_process()
            else:
                self._start_thread()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_thread(self) -> None:
        from reconciler.service.app import create_app

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = int(sock.getsockname()[1])
        app = create_app(ServiceSettings(db_url=self.db_url, token=self.token,
                                         **{"run_jobs": self.run_jobs, **self.extra_settings}))
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                                timeout_graceful_shutdown=5, timeout_keep_alive=KEEP_ALIVE_SECONDS)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name=f"reconciler-service-{self.port}", daemon=True)
        self._thread.start()
        wait_until_healthy(self.url)
        self._app_store = app.state.store

    def _start_process(self) -> None:
        self.port = free_port()
        env = dict(os.environ)
        env.pop(TOKEN_ENV, None)
        if self.token:
            env[TOKEN_ENV] = self.token
        command = [sys.executable, "-c", "from reconciler.cli import main; main()", "serve",
                   "--host", "127.0.0.1", "--port", str(self.port), "--db", self.db_url,
                   "--access-log" if self.access_log else "--no-access-log",
                   "--run-jobs" if self.run_jobs else "--no-run-jobs", *self.serve_args]
        self._process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                         stderr=None if self.access_log else subprocess.DEVNULL)
        wait_until_healthy(self.url, process=self._process)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=15)
            store = getattr(self, "_app_store", None)
            if store is not None:
                store.close()
        if self._process is not None and self._process.poll() is None:
            stop_process(self._process, timeout=15)
        self._server, self._thread, self._process = None, None, None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def pg_bin_dir() -> Path | None:
    for candidate in (os.environ.get("RECONCILER_PG_BIN"), *PG_BIN_DIRS):
        if candidate and (Path(candidate) / "initdb").is_file():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class PostgresError(RuntimeError):
    """PostgreSQL could not be started; the message says what was tried and why it failed."""


class PostgresServer:
    """A private PostgreSQL (trust auth, fsync off) on 127.0.0.1; ``url`` is its ``postgres`` database."""

    def __init__(self) -> None:
        self.port = 0
        self._dir: Path | None = None
        self._bin: Path | None = None
        self._run_as: str | None = None
        self._started = False

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _cmd(self, *args: str) -> list[str]:
        assert self._bin is not None
        command = [str(self._bin / args[0]), *args[1:]]
        return ["runuser", "-u", self._run_as, "--", *command] if self._run_as else command

    def _run(self, *args: str) -> None:
        result = subprocess.run(self._cmd(*args), capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            raise PostgresError(f"{args[0]} failed (exit {result.returncode}): {result.stderr.strip()[-2000:]}")

    def __enter__(self) -> Self:
        self._bin = pg_bin_dir()
        if self._bin is None:
            raise PostgresError("PostgreSQL binaries (initdb, pg_ctl) not found; install Debian's postgresql "
                                "package or set RECONCILER_PG_BIN to their directory")
        self._dir = Path(tempfile.mkdtemp(prefix="reconciler-pg-"))
        try:
            if os.geteuid() == 0:
                self._run_as = _ensure_system_user(PG_USER)
                shutil.chown(self._dir, user=PG_USER)
            data = self._dir / "data"
            self._run("initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
            self.port = free_port()
            options = (f"-p {self.port} -k {self._dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                       "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
            self._run("pg_ctl", "-D", str(data), "-o", options, "-l", str(self._dir / "server.log"),
                      "-w", "-t", "60", "start")
            self._started = True
        except BaseException:
            self.stop()
            raise
        return self

    def create_database(self, name: str | None = None) -> str:
        """A fresh, empty database; returns its URL."""
        import psycopg

        name = name or f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # name is ours: hex or a test's literal
        return self.url_for(name)

    def stop(self) -> None:
        if self._started and self._dir is not None:
            with contextlib.suppress(PostgresError, subprocess.TimeoutExpired):
                self._run("pg_ctl", "-D", str(self._dir / "data"), "-m", "fast", "-w", "stop")
            self._started = False
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _ensure_system_user(name: str) -> str:
    probe = subprocess.run(["id", "-u", name], capture_output=True, check=False)
    if probe.returncode != 0:
        made = subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                              capture_output=True, text=True, check=False)
        if made.returncode != 0 and "already exists" not in made.stderr:
            raise PostgresError(f"cannot create system user {name!r} to run PostgreSQL as non-root: "
                                f"{made.stderr.strip()}")
    return name


TERMINAL_JOB_STATUSES = ("COMPLETED", "FAILED", "ABORTED")


def wait_for_job(client: httpx.Client, job_id: str, *, timeout: float = 60, poll: float = 0.05) -> dict[str, Any]:
    """The job's body once it is COMPLETED, FAILED or ABORTED; AssertionError after ``timeout``.
    ``client`` has the API root as its base URL."""
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = client.get(f"batchPredictions/{job_id}/").json()
        if job["status"] in TERMINAL_JOB_STATUSES:
            return job
        time.sleep(poll)
    raise AssertionError(f"job {job_id} did not finish within {timeout:g}s: {job}")
