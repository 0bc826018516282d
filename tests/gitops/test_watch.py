"""The watcher: the pure step decides what to print and when to apply; the loop runs on real
files (watchfiles) against the embedded local service, in a thread and as a real process."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.session import Options, Session
from reconciler.watch import Observation, PlanView, WatchState, after_apply, step

CREATE = "+ create demo-a"
UPDATE = "~ update demo-a [id 1] (1 change)\n    ~ numConcurrent: 1 -> 2"


def _valid(*blocks: str, summary: str = "Plan: 1 to create, 0 to update, 0 to delete.",
           issues: tuple[str, ...] = ()) -> Observation:
    return Observation(issues=issues, errors=0, documents=2,
                       plan=PlanView(blocks=blocks, summary=summary, has_changes=bool(blocks)))


def test_first_run_prints_everything_and_applies_only_when_asked() -> None:
    state, lines, do_apply = step(WatchState(), _valid(CREATE), apply=False)
    assert lines == ["valid: 2 manifest(s)", CREATE, "Plan: 1 to create, 0 to update, 0 to delete."]
    assert do_apply is False and state.valid is True and state.good_documents == 2
    assert step(WatchState(), _valid(CREATE), apply=True)[2] is True


def test_only_changes_since_last_run_are_printed() -> None:
    state, _, _ = step(WatchState(), _valid(CREATE))
    same, lines, _ = step(state, _valid(CREATE))
    assert lines == ["no change since the last run"]
    _, lines, _ = step(same, _valid(UPDATE, summary="Plan: 0 to create, 1 to update, 0 to delete."))
    assert lines == [UPDATE, "no longer planned: + create demo-a", "Plan: 0 to create, 1 to update, 0 to delete."]


def test_invalid_edit_keeps_last_good_state_and_never_applies() -> None:
    good, _, _ = step(WatchState(), _valid(CREATE))
    error = "specs/a.yaml:9:20: spec.x: bad"
    bad, lines, do_apply = step(good, Observation(issues=(error,), errors=1, documents=1), apply=True)
    assert do_apply is False
    assert lines == [error, "INVALID: 1 error(s); keeping the last good state (2 manifest(s)); nothing planned or applied"]
    assert bad.plan == good.plan and bad.valid is False
    again, lines, _ = step(bad, Observation(issues=(error,), errors=1, documents=1))
    assert lines[0].startswith("INVALID")  # the same error is not printed twice
    _fixed, lines, do_apply = step(again, _valid(CREATE), apply=True)
    assert lines == ["fixed: 1 issue(s) from the last run", "valid again: 2 manifest(s)", "no change since the last run"]
    assert do_apply is True  # compared with the last good plan, which still has changes
    _first, lines, _ = step(WatchState(), Observation(issues=(error,), errors=1))
    assert lines[-1].endswith("no good state yet; nothing planned or applied")


def test_refused_plan_or_planning_failure_never_applies() -> None:
    refused = Observation(errors=0, documents=1, plan=PlanView(blocks=(CREATE, "error: too many deletes"),
                                                               summary="Plan refused.", has_changes=True, errored=True))
    assert step(WatchState(), refused, apply=True)[2] is False
    _state, lines, do_apply = step(WatchState(), Observation(errors=0, documents=1, plan_error="connection refused"),
                                  apply=True)
    assert do_apply is False and lines[-1] == "error: cannot plan: connection refused"


def test_after_apply_shows_the_next_plan_in_full() -> None:
    state, _, _ = step(WatchState(), _valid(CREATE), apply=True)
    state, lines = after_apply(state, result_lines=["created demo-a"], ok=True)
    assert lines == ["created demo-a", "applied"] and state.plan is None
    _, lines, _ = step(state, _valid(summary="No changes. Live definitions match the manifests."))
    assert lines == ["No changes. Live definitions match the manifests."]


MANIFEST = """\
apiVersion: reconciler.io/v1alpha1
kind: BatchPredictionJobDefinition
metadata:
  name: demo-watch
spec:
  enabled: true
  schedule: {{cron: "0 2 * * *"}}
  batchPredictionJob:
    deploymentId: 64b0c0ffee000000000d0001
    numConcurrent: {n}
    intakeSettings: {{type: s3, url: "s3://bucket/in.csv", credentialId: 64b0c0ffee000000000c0001}}
    outputSettings: {{type: s3, url: "s3://bucket/out.csv", credentialId: 64b0c0ffee000000000c0001}}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "specs").mkdir()
    (tmp_path / "reconciler.yaml").write_text("apiVersion: reconciler.io/v1alpha1\nkind: Project\n"
                                              "scope: {namePrefix: demo-}\n")
    (tmp_path / "specs" / "watch.yaml").write_text(MANIFEST.format(n=1))
    _seed(f"sqlite:///{tmp_path}/local.db")
    return tmp_path


def _seed(db_url: str) -> None:
    """The deployment and credential the manifest refers to, created in the local service's database."""
    import asyncio

    import httpx

    from reconciler.api.client import LOCAL_BASE_URL
    from reconciler.service.app import create_app
    from reconciler.service.settings import ServiceSettings

    async def main() -> None:
        transport = httpx.ASGITransport(app=create_app(ServiceSettings(db_url=db_url)))
        async with httpx.AsyncClient(transport=transport, base_url=LOCAL_BASE_URL) as client:
            for path, body in (("deployments/", {"id": "64b0c0ffee000000000d0001", "label": "churn"}),
                               ("credentials/", {"id": "64b0c0ffee000000000c0001", "name": "s3"})):
                response = await client.post(path, json=body)
                assert response.status_code == 201, response.text

    asyncio.run(main())


class Lines:
    """Output lines from the watcher, read with a deadline."""

    def __init__(self) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []

    def emit(self, line: str) -> None:
        self.queue.put(line)

    def until(self, text: str, *, timeout: float = 20.0) -> list[str]:
        got: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.queue.get(timeout=0.1)
            except queue.Empty:
                continue
            got.append(line)
            self.seen.append(line)
            if text in line:
                return got
        raise AssertionError(f"{text!r} not printed within {timeout}s; got {self.seen}")


def _options(project: Path) -> Options:
    """The session's options for the project: the embedded service on the project's own database."""
    environ = {k: v for k, v in os.environ.items() if k != "DATAROBOT_ENDPOINT"}
    environ["RECONCILER_LOCAL_DB_URL"] = f"sqlite:///{project}/local.db"
    return Options(paths=(project / "specs",), paths_given=True, environ=environ)


def test_loop_applies_changes_and_skips_invalid_edits(project: Path) -> None:
    from reconciler.watch import watch_loop

    options = _options(project)
    out, stop = Lines(), threading.Event()
    thread = threading.Thread(target=watch_loop, kwargs={
        "paths": [project / "specs"], "emit": out.emit, "open_session": lambda: Session.open(options), "apply": True,
        "debounce_ms": 50, "stop_event": stop}, daemon=True)
    thread.start()
    manifest = project / "specs" / "watch.yaml"
    try:
        first = out.until("watching")
        assert "+ create demo-watch" in "\n".join(first) and "applied" in first
        manifest.write_text(MANIFEST.format(n=3))
        changed = out.until("applied")
        assert any(line.startswith("~ update demo-watch") and "numConcurrent: 1 -> 3" in line for line in changed)
        assert not any(line.startswith("+ create") for line in changed), changed  # only what changed since the last run

        manifest.write_text(MANIFEST.format(n="lots"))
        invalid = out.until("INVALID")
        assert any("watch.yaml:10:20" in line and "numConcurrent" in line for line in invalid)
        assert not any(line == "applied" or line.startswith("~ update") for line in invalid), invalid

        manifest.write_text(MANIFEST.format(n=3))
        back = out.until("No changes.")  # the live state already matches: nothing to apply
        assert any("valid again" in line for line in back) and "applied" not in back, back
    finally:
        stop.set()
        thread.join(timeout=20)
    assert not thread.is_alive()


@contextlib.contextmanager
def _watch_command(project: Path, *args: str) -> Iterator[subprocess.Popen[str]]:
    """`reconciler watch specs ARGS` as a real process against the embedded service; the body drives
    it, then Ctrl-C (SIGINT) must stop it cleanly: exit 0, "stopped", no traceback."""
    env = {**os.environ, "NO_COLOR": "1", "RECONCILER_LOCAL_DB_URL": f"sqlite:///{project}/local.db",
           "PYTHONUNBUFFERED": "1"}
    env.pop("DATAROBOT_ENDPOINT", None)
    proc = subprocess.Popen([sys.executable, "-c", "from reconciler.cli import main; main()", "watch", "specs",
                             *args, "--debounce", "50"], cwd=project, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        yield proc
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)  # Ctrl-C; generous for a loaded 2-core machine
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err


def test_command_exits_0_on_ctrl_c(project: Path) -> None:
    with _watch_command(project) as proc:
        lines = _read_until(proc, "watching")
        assert "+ create demo-watch" in "\n".join(lines)  # planned against the embedded service, not applied
        (project / "specs" / "watch.yaml").write_text(MANIFEST.format(n=""))
        lines = _read_until(proc, "INVALID")


def test_command_reloads_target_variables_when_the_config_changes(project: Path) -> None:
    """`watch --target local`: an edit of reconciler.yaml's variables is planned with the new values; a
    broken config is reported and the last good state kept."""
    config = ("apiVersion: reconciler.io/v1alpha1\nkind: Project\nscope: {{namePrefix: demo-}}\n"
              "targets:\n  local:\n    variables: {{N: {n}}}\n")
    (project / "reconciler.yaml").write_text(config.format(n=1))
    (project / "specs" / "watch.yaml").write_text(MANIFEST.format(n="${N}"))
    with _watch_command(project, "--target", "local") as proc:
        first = _read_until(proc, "watching")
        assert "+ batchPredictionJob.numConcurrent = 1" in "\n".join(first)
        (project / "reconciler.yaml").write_text(config.format(n=4))
        changed = _read_until(proc, "Plan:")
        assert any("changed: reconciler.yaml" in line for line in changed)
        assert "+ batchPredictionJob.numConcurrent = 4" in "\n".join(changed), changed
        (project / "reconciler.yaml").write_text(config.format(n=4) + "  : broken\n")
        broken = _read_until(proc, "INVALID")
        assert any(line.startswith("error: ") and "reconciler.yaml:" in line for line in broken), broken


def _read_until(proc: subprocess.Popen[str], text: str, timeout: float = 40.0) -> list[str]:
    assert proc.stdout is not None
    lines: list[str] = []
    result: queue.Queue[str | None] = queue.Queue()

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            result.put(line.rstrip("\n"))
            if text in line:
                return
        result.put(None)

    threading.Thread(target=reader, daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = result.get(timeout=0.2)
        except queue.Empty:
            continue
        if line is None:
            break
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"{text!r} not printed; got {lines}")


@pytest.fixture(autouse=True)
def _no_remote(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("DATAROBOT_ENDPOINT", raising=False)
    yield


# --- issue #12: identity, debounce, the shared flags, seeding -----------------------------------

def test_a_still_planned_action_whose_text_changed_is_shown_once_as_changed() -> None:
    """A create whose body changed is still planned: printed once as changed, never as "no longer planned"."""
    from reconciler.engine.plan import build_plan
    from reconciler.engine.types import Desired
    from reconciler.watch import plan_view

    def view(n: int) -> Observation:
        desired = Desired(name="demo-a", body={"name": "demo-a"},
                          comparable={"name": "demo-a", "batchPredictionJob": {"numConcurrent": n}})
        return Observation(errors=0, documents=1, plan=plan_view(build_plan(desired=[desired], live=[], scope=None)))

    state, _, _ = step(WatchState(), view(1))
    _, lines, _ = step(state, view(3))
    assert not any(line.startswith("no longer planned") for line in lines), lines
    changed = [line for line in lines if line.startswith("changed: ")]
    assert len(changed) == 1 and changed[0].startswith("changed: + create demo-a")
    assert "batchPredictionJob.numConcurrent = 3" in changed[0]
    assert sum("create demo-a" in line for line in lines) == 1


def test_edits_within_the_debounce_window_make_one_run(project: Path) -> None:
    """An editor's save writes the file more than once: every write within the window is one run."""
    from reconciler.watch import watch_loop

    options = _options(project)
    out, stop = Lines(), threading.Event()
    thread = threading.Thread(target=watch_loop, kwargs={
        "paths": [project / "specs"], "emit": out.emit, "open_session": lambda: Session.open(options),
        "debounce_ms": 600, "stop_event": stop}, daemon=True)
    thread.start()
    manifest = project / "specs" / "watch.yaml"
    try:
        out.until("watching")
        for n in (2, 3, 4):  # three writes 150 ms apart, as one save
            manifest.write_text(MANIFEST.format(n=n))
            time.sleep(0.15)
        out.until("Plan:")
        time.sleep(2.0)  # a second run, if any, would have started by now
        while not out.queue.empty():
            out.seen.append(out.queue.get())
    finally:
        stop.set()
        thread.join(timeout=20)
    runs = [line for line in out.seen if line.startswith("--- ") and "changed:" in line]
    assert len(runs) == 1, out.seen
    assert any("numConcurrent = 4" in line for line in out.seen), out.seen


def test_command_takes_every_flag_plan_takes(project: Path, tmp_path: Path) -> None:
    """`watch --target T --endpoint URL --token-file F --allow-http --no-color --selector --only
    --concurrency` is accepted and the token from the file reaches the API."""
    from reconciler.service.testing import LocalServer

    token = tmp_path / "token"
    token.write_text("watch-token-1\n")
    (project / "reconciler.yaml").write_text("apiVersion: reconciler.io/v1alpha1\nkind: Project\n"
                                             "scope: {namePrefix: demo-}\ntargets:\n  prod: {}\n")
    with LocalServer(token="watch-token-1") as server, _watch_command(
            project, "--target", "prod", "--endpoint", server.api_url, "--token-file", str(token), "--allow-http",
            "--no-color", "--selector", "team!=none", "--only", "demo-watch", "--concurrency", "2") as proc:
        lines = _read_until(proc, "watching")
        text = "\n".join(lines)
        assert "+ create demo-watch" in text and "cannot plan" not in text, text


def test_command_apply_seeds_the_embedded_service(tmp_path: Path) -> None:
    """`watch --apply` seeds the embedded service from localService.seed, like `apply` does."""
    (tmp_path / "specs").mkdir()
    (tmp_path / "reconciler.yaml").write_text(
        "apiVersion: reconciler.io/v1alpha1\nkind: Project\nscope: {namePrefix: demo-}\nlocalService:\n  seed:\n"
        "    deployments: [{id: 64b0c0ffee000000000d0001, label: churn}]\n"
        "    credentials: [{id: 64b0c0ffee000000000c0001, name: s3}]\n")
    (tmp_path / "specs" / "watch.yaml").write_text(MANIFEST.format(n=1))
    with _watch_command(tmp_path, "--apply") as proc:
        lines = _read_until(proc, "watching")
        assert "Apply complete: 1 created, 0 updated, 0 deleted." in lines and "applied" in lines, lines
