"""`reconciler apply` under real interruptions, with real processes: the server killed with -9 in
the middle of an apply and restarted, Ctrl-C (SIGINT) to the apply, the API going away under an
apply, a name taken by someone else between plan and apply, a rename onto a name that is live.
Every time: no duplicate, an exact summary, the token nowhere, and a second run converges."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.api.client import Client, RetryPolicy
from reconciler.api.live import fetch_live
from reconciler.api.secrets import resolver
from reconciler.engine import apply as applying
from reconciler.engine.normalize import desired_from_manifest
from reconciler.engine.plan import build_plan
from reconciler.engine.types import Scope
from reconciler.service.testing import LocalServer, free_port, wait_until_healthy
from reconciler.specs.model import Manifest
from reconciler.specs.validate import validate_paths

from .conftest import TOKEN, seed
from .faults import FaultProxy
from .specs import manifest, write_specs

SCOPE = Scope(name_prefix="demo-")


def _desired(root: Path) -> list[Any]:
    report = validate_paths([root])
    assert report.ok, [i.format() for i in report.errors]
    return [desired_from_manifest(Manifest.from_document(doc)) for doc in report.documents]


def _names(api_url: str) -> list[str]:
    with httpx.Client(headers={"Authorization": f"Token {TOKEN}"}) as h:
        return [d["name"] for d in h.get(api_url + "batchPredictionJobDefinitions/", params={"limit": 1000}).json()["data"]]


def _token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_bytes(TOKEN.encode() + b"\r\n")  # as saved by an editor on Windows
    return path


def _apply_process(tmp_path: Path, api_url: str, root: Path, out: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATAROBOT_ENDPOINT": api_url, "NO_COLOR": "1",
           "RECONCILER_LOCAL_DB_URL": f"sqlite:///{tmp_path}/unused.db"}
    env.pop("DATAROBOT_API_TOKEN", None)
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler", "apply", str(root), "--auto-approve", "--token-file",
         str(_token_file(tmp_path)), "-v"],
        stdout=out.open("wb"), stderr=(out.with_suffix(".err")).open("wb"), env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for_lines(path: Path, word: str, count: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if path.read_text().count(word) >= count:
            return
        assert process.poll() is None, f"apply ended before {count} {word!r} lines: {path.read_text()[-500:]}"
        time.sleep(0.01)
    raise AssertionError(f"no {count} {word!r} lines within 60s")


class Served:
    """`reconciler serve` as its own process on a loopback port, with its database in a temp dir."""

    def __init__(self, tmp_path: Path) -> None:
        self.db = f"sqlite:///{tmp_path}/served.db"
        self.port = free_port()
        self.token_file = tmp_path / "serve-token"
        self.token_file.write_text(TOKEN)
        self.log = tmp_path / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v2/"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "RECONCILER_SERVICE_TOKEN"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "serve", "--port", str(self.port), "--db", self.db,
             "--token-file", str(self.token_file), "--scheduler-interval", "0", "--no-run-jobs"],
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT, env=env)
        wait_until_healthy(f"http://127.0.0.1:{self.port}", process=self.process)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no shutdown, no flush of anything in flight
        self.process.wait(10)
        self.process = None


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    s = Served(tmp_path)
    s.start()
    try:
        yield s
    finally:
        if s.process is not None:
            s.process.terminate()
            s.process.wait(20)


def test_server_killed_mid_apply_then_restarted_converges_without_duplicates(served: Served, tmp_path: Path) -> None:
    seed(served.api_url, TOKEN)
    total = 300
    root = write_specs(tmp_path / "specs", [manifest(f"demo-{i:04d}") for i in range(total)])
    out = tmp_path / "apply.out"
    started = time.monotonic()
    apply = _apply_process(tmp_path, served.api_url, root, out)
    _wait_for_lines(out, ": created [id", 20, apply)
    served.kill()
    rc = apply.wait(120)
    took = time.monotonic() - started
    text, err = out.read_text(), out.with_suffix(".err").read_text()
    assert rc == 1 and "Traceback" not in err, err[-2000:]
    created = text.count(": created [id")
    failed = text.count(": create FAILED: ")
    skipped = text.count(": create not attempted (not started: the API is unreachable")
    summary = text.rstrip().splitlines()[-1]
    # the API went away: what was in flight fails, nothing more is started (no retry loop per manifest)
    assert summary == f"Apply failed: {created} created, 0 updated, 0 deleted; {failed} failed, {skipped} not attempted."
    assert created + failed + skipped == total and failed <= 8 and skipped >= total - created - 8
    assert took < 60, f"an unreachable API took {took:.0f}s to give up on"
    served.start()  # same database
    live = _names(served.api_url)
    assert len(live) == len(set(live)) and created <= len(live) <= created + failed
    again = _apply_process(tmp_path, served.api_url, root, tmp_path / "again.out")
    assert again.wait(120) == 0, (tmp_path / "again.err").read_text()[-2000:]
    assert (tmp_path / "again.out").read_text().rstrip().splitlines()[-1] == (
        f"Apply complete: {total - len(live)} created, 0 updated, 0 deleted.")
    after = _names(served.api_url)
    assert sorted(after) == [f"demo-{i:04d}" for i in range(total)]
    outputs = b"".join(p.read_bytes() for p in tmp_path.glob("*.out")) + b"".join(
        p.read_bytes() for p in tmp_path.glob("*.err"))
    assert TOKEN.encode() not in outputs and b"GET /api/v2/" in outputs  # -v logged the requests, not the token


def test_ctrl_c_mid_apply_stops_cleanly_and_says_what_was_applied(server: LocalServer, tmp_path: Path) -> None:
    total = 300
    root = write_specs(tmp_path / "specs", [manifest(f"demo-{i:04d}") for i in range(total)])
    out = tmp_path / "apply.out"
    apply = _apply_process(tmp_path, server.api_url, root, out)
    _wait_for_lines(out, ": created [id", 20, apply)
    apply.send_signal(signal.SIGINT)
    rc = apply.wait(60)
    text, err = out.read_text(), out.with_suffix(".err").read_text()
    assert rc == 130 and "Traceback" not in err and "KeyboardInterrupt" not in err, err[-2000:]
    created = text.count(": created [id")
    skipped = text.count(": create not attempted (interrupted before it started)")
    assert text.rstrip().splitlines()[-1] == (
        f"Apply interrupted: {created} created, 0 updated, 0 deleted; 0 failed, {skipped} not attempted.")
    assert created + skipped == total and skipped > 0
    # what was in flight was waited for, so the report is exact: every created line is live, nothing else is
    live = _names(server.api_url)
    assert len(live) == created == len(set(live))
    again = _apply_process(tmp_path, server.api_url, root, tmp_path / "again.out")
    assert again.wait(120) == 0
    assert (tmp_path / "again.out").read_text().rstrip().splitlines()[-1] == (
        f"Apply complete: {skipped} created, 0 updated, 0 deleted.")
    assert sorted(_names(server.api_url)) == [f"demo-{i:04d}" for i in range(total)]
    for path in tmp_path.glob("*.*"):
        if path.suffix in (".out", ".err"):
            assert TOKEN not in path.read_text()


def _client(api_url: str) -> Client:
    return Client(endpoint=api_url, token=TOKEN, retry=RetryPolicy(attempts=4, initial=0.01, maximum=0.05),
                  timeout=5.0, concurrency=4)


def test_the_api_going_away_stops_the_apply_instead_of_failing_each_action(server: LocalServer,
                                                                          tmp_path: Path) -> None:
    root = write_specs(tmp_path / "specs", [manifest(f"demo-{i:03d}") for i in range(60)])
    with FaultProxy(upstream=server.url) as proxy:
        api = proxy.url + "/api/v2/"
        lines: list[str] = []

        async def go() -> applying.ApplyResult:
            async with _client(api) as c:
                plan = build_plan(live=await fetch_live(c), desired=_desired(root), scope=SCOPE)

                def landed(result: applying.ActionResult) -> None:
                    lines.append(result.line())
                    if len(lines) == 10:
                        proxy.__exit__()  # the port closes: every later connection is refused

                return await applying.apply_plan(plan, client=c, resolve=resolver(), on_result=landed)

        result = asyncio.run(go())
    applied = result.of(applying.Outcome.applied)
    skipped = result.of(applying.Outcome.skipped)
    assert not result.ok and len(result.results) == 60
    assert len(skipped) >= 60 - len(applied) - 4  # at most the 4 in flight failed; the rest never started
    assert all("not started: the API is unreachable" in (r.error or "") for r in skipped)
    live = _names(server.api_url)
    assert {r.action.name for r in applied} <= set(live) and len(live) == len(set(live))
    assert result.summary.startswith(f"Apply failed: {len(applied)} created")


def test_a_name_taken_between_plan_and_apply_is_a_clear_failure(server: LocalServer, tmp_path: Path) -> None:
    root = write_specs(tmp_path / "specs", [manifest("demo-a"), manifest("demo-b")])

    async def go() -> applying.ApplyResult:
        async with _client(server.api_url) as c:
            plan = build_plan(live=await fetch_live(c), desired=_desired(root), scope=SCOPE)
            # another apply (or a person) creates demo-b now
            await c.create_definition({**dict(plan.writes[1].body or {}), "name": "demo-b"})
            return await applying.apply_plan(plan, client=c, resolve=resolver())

    result = asyncio.run(go())
    (failed,) = result.of(applying.Outcome.failed)
    assert failed.action.name == "demo-b"
    assert failed.error is not None and "the name 'demo-b' is taken by a live definition that was not there when " \
        "the plan was made" in failed.error and "run `reconciler plan` again" in failed.error
    assert sorted(_names(server.api_url)) == ["demo-a", "demo-b"]


def test_a_rename_onto_a_live_name_is_refused_by_the_plan(server: LocalServer, tmp_path: Path) -> None:
    root = write_specs(tmp_path / "specs", [manifest("demo-old"), manifest("demo-new")])

    async def live() -> list[Any]:
        async with _client(server.api_url) as c:
            plan = build_plan(live=await fetch_live(c), desired=_desired(root), scope=SCOPE)
            assert (await applying.apply_plan(plan, client=c, resolve=resolver())).ok
            return await fetch_live(c)

    items = asyncio.run(live())
    renamed = manifest("demo-new", previousNames=["demo-old"])
    write_specs(root, [renamed])
    plan = build_plan(desired=_desired(root), live=items, scope=SCOPE, prune=True)
    assert not plan.applyable
    (error,) = plan.errors
    assert "demo-new: previousNames says it was renamed from 'demo-old', but both are live" in error
    assert "delete the one you do not want" in error
    # before, this was silently an update of demo-new and, under --prune, a delete of demo-old
    assert sorted(_names(server.api_url)) == ["demo-new", "demo-old"]
