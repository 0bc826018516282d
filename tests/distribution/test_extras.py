"""A core install runs the core commands, and a command that needs a missing extra says which
``pip install`` to run.

The extras are made missing for real in a child process: a ``sitecustomize`` puts a meta-path
finder first that raises ``ModuleNotFoundError`` for their modules, exactly as an absent package
does, and logs every attempt. A core command must then succeed without even trying to import them.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from reconciler.extras import DISTRIBUTION, EXTRAS

ROOT = Path(__file__).resolve().parents[2]
ALL_EXTRA_MODULES = tuple(sorted({m for mods in EXTRAS.values() for m in mods}))
RECONCILER = ("-c", "from reconciler.cli import main; main()")

_SITECUSTOMIZE = '''
import importlib.abc, os, sys
_BLOCKED = frozenset(os.environ["BLOCK_MODULES"].split(","))
_LOG = os.environ["BLOCK_LOG"]

class _Absent(importlib.abc.MetaPathFinder):
    """These distributions are not installed: the same error an absent package gives."""
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in _BLOCKED:
            with open(_LOG, "a", encoding="utf-8") as log:
                log.write(name + "\\n")
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _Absent())
'''


@dataclass
class Without:
    """Runs reconciler in a child process in which ``modules`` are not installed."""

    modules: Sequence[str]
    workdir: Path
    sitedir: Path

    @property
    def log(self) -> Path:
        return self.sitedir / "attempts.log"

    def env(self) -> dict[str, str]:
        path = os.pathsep.join([str(self.sitedir), str(ROOT), os.environ.get("PYTHONPATH", "")])
        env = {**os.environ, "PYTHONPATH": path, "BLOCK_MODULES": ",".join(self.modules), "BLOCK_LOG": str(self.log),
               "NO_COLOR": "1", "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
        for name in ("DATAROBOT_ENDPOINT", "DATAROBOT_API_TOKEN", "RECONCILER_SERVICE_TOKEN"):
            env.pop(name, None)
        return env

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, *RECONCILER, *args], cwd=self.workdir, env=self.env(),
                              capture_output=True, text=True, timeout=timeout)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, *RECONCILER, *args], cwd=self.workdir, env=self.env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def attempts(self) -> list[str]:
        return self.log.read_text(encoding="utf-8").split() if self.log.exists() else []


def _without(tmp_path: Path, modules: Sequence[str]) -> Without:
    sitedir = tmp_path / "site"
    sitedir.mkdir()
    (sitedir / "sitecustomize.py").write_text(_SITECUSTOMIZE, encoding="utf-8")
    workdir = tmp_path / "project"
    workdir.mkdir()
    (workdir / "specs").mkdir()
    for source in (ROOT / "specs").glob("*.yaml"):  # the manifests only (a local .reconciler/ cache is not)
        (workdir / "specs" / source.name).write_bytes(source.read_bytes())
    return Without(modules, workdir, sitedir)


@pytest.fixture
def core(tmp_path: Path) -> Without:
    """A project with the example specs, in a process where no extra is installed."""
    return _without(tmp_path, ALL_EXTRA_MODULES)


def test_the_blocker_makes_a_module_absent(core: Without) -> None:
    done = subprocess.run([sys.executable, "-c", "import pandas"], env=core.env(), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1 and "ModuleNotFoundError: No module named 'pandas'" in done.stderr
    assert core.attempts() == ["pandas"]


def test_core_commands_run_without_any_extra(core: Without) -> None:
    """The README's main command and the other core commands, with every extra missing."""
    steps = [
        (("validate", "specs"), 0, "OK: 11 manifest(s)"),
        (("plan", "specs"), 0, "Plan: 11 to create"),
        (("apply", "specs", "--auto-approve"), 0, "Apply complete: 11 created"),
        (("list",), 0, "demo-churn-nightly"),
        (("apply", "specs", "--auto-approve"), 0, "No changes."),
        (("diff", "demo-churn-nightly"), 0, ""),
        (("export", "--out", "exported"), 0, "Wrote 11 manifest(s)"),
        (("plan", "exported"), 0, "No changes."),
        (("crd",), 0, "kind: CustomResourceDefinition"),
        (("schema", "--list"), 0, "manifest"),
    ]
    for args, code, expected in steps:
        done = core.run(*args)
        assert done.returncode == code, (args, done.stdout, done.stderr)
        assert expected in done.stdout + done.stderr, (args, done.stdout, done.stderr)
    assert core.attempts() == [], "a core command tried to import an extra"


def _read_until(proc: subprocess.Popen[str], text: str, timeout: float = 60.0) -> list[str]:
    assert proc.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=reader, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"{text!r} not printed within {timeout}s; the last lines: {seen[-5:]}")


def test_watch_plans_without_any_extra(core: Without) -> None:
    proc = core.popen("watch", "specs", "--debounce", "50")
    try:
        _read_until(proc, "Plan: 11 to create")
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert core.attempts() == []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _serving(env: Without, *args: str) -> Iterator[str]:
    """`reconciler serve ARGS` as a real process; yields the API root once it answers."""
    port = _free_port()
    proc = env.popen("serve", "--port", str(port), "--db", "sqlite:///served.db", *args)
    root = f"http://127.0.0.1:{port}/api/v2/"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()
            try:
                httpx.get(f"{root}version/", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "serve did not answer within 60 s"
                time.sleep(0.2)
        yield root
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def test_serve_without_the_job_runner_serves_the_api_and_names_the_extra_for_the_rest(core: Without) -> None:
    with _serving(core, "--no-run-jobs") as root:
        assert httpx.get(f"{root}batchPredictionJobDefinitions/", timeout=10).status_code == 200
        core_attempts = core.attempts()
        model = httpx.put(f"{root}deployments/0123456789abcdef01234567/model", content=b"artifact", timeout=10)
        dataset = httpx.post(f"{root}datasets/fromFile/", files={"file": ("a.csv", b"a\n1\n")}, timeout=10)
    assert core_attempts == [], "serving the API tried to import an extra"
    assert model.status_code == 501 and f"pip install '{DISTRIBUTION}[models]'" in model.json()["message"]
    assert dataset.status_code == 501 and f"pip install '{DISTRIBUTION}[runner]'" in dataset.json()["message"]


@pytest.mark.parametrize(("args", "extra", "feature"), [
    (("serve", "--port", "0"), "runner", "running batch prediction jobs (reconciler serve)"),
    (("serve", "--port", "0", "--dask-scheduler", "tcp://127.0.0.1:9"), "dask",
     "scoring jobs on a Dask cluster (--executor dask)"),
    (("serve", "--no-run-jobs", "--db", "postgresql://nobody@127.0.0.1:9/none"), "postgres",
     "a PostgreSQL database URL"),
    (("operator", "--namespace", "jobs", "--secret", "jobs/api", "--standalone"), "operator", "reconciler operator"),
    (("models", "register", "--deployment-id", "0123456789abcdef01234567", "--artifact", "specs/churn-nightly.yaml"),
     "models", "reconciler models register"),
])
def test_a_command_whose_extra_is_missing_says_which_pip_install(tmp_path: Path, args: tuple[str, ...], extra: str,
                                                                  feature: str) -> None:
    env = _without(tmp_path, EXTRAS[extra])
    done = env.run(*args, timeout=60)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {feature} needs the optional dependencies of the "
                                                   f"[{extra}] extra"), done.stderr
    assert lines[0].endswith(f"Install them with: pip install '{DISTRIBUTION}[{extra}]'") or \
        f"pip install '{DISTRIBUTION}[{extra}]' (or " in lines[0]


def test_policies_without_their_extra_say_which_pip_install_and_a_project_without_never_loads_it(
        tmp_path: Path) -> None:
    env = _without(tmp_path, EXTRAS["policy"])
    assert env.run("validate", "specs").returncode == 0 and "cel_expr_python" not in env.attempts()
    config = env.workdir / "specs" / "reconciler.yaml"
    config.write_text(config.read_text() + "policies:\n  rules:\n    - {name: r, expression: 'true', message: m}\n")
    (env.workdir / "p.yaml").write_text("apiVersion: reconciler.io/v1alpha1\nkind: Policy\nrules:\n"
                                        "  - {name: r, expression: 'true', message: m}\ntests:\n"
                                        "  - {name: t, manifest: {}, expect: {}}\n")
    for args in (("validate", "specs"), ("plan", "specs"), ("policy", "test", "p.yaml")):
        done = env.run(*args, timeout=60)
        assert done.returncode == 1 and "Traceback" not in done.stderr, (args, done.stdout, done.stderr)
        assert done.stderr.startswith("error: policies (the policies: section of reconciler.yaml) needs the optional "
                                      "dependencies of the [policy] extra"), done.stderr
        assert f"pip install '{DISTRIBUTION}[policy]'" in done.stderr, done.stderr


def test_run_wait_on_the_embedded_service_names_the_runner_extra(core: Without) -> None:
    assert core.run("apply", "specs", "--auto-approve").returncode == 0
    waited = core.run("run", "demo-churn-nightly", "--wait", "--timeout", "30")
    assert waited.returncode == 1 and "Traceback" not in waited.stderr
    assert waited.stdout == ""  # nothing was started
    assert ("error: running a job in the embedded service (run --wait) needs the optional dependencies of the "
            "[runner] extra") in waited.stderr and f"pip install '{DISTRIBUTION}[runner]'" in waited.stderr
    queued = core.run("run", "demo-churn-nightly")  # a job this install cannot run fails at creation, saying why
    assert queued.returncode == 1 and queued.stdout.split()[1:2] == ["FAILED"], (queued.stdout, queued.stderr)
    assert "running batch prediction jobs needs the optional dependencies of the [runner] extra" in queued.stderr
