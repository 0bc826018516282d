"""Feedback on slow work, seen as a user sees it: the line a backing-off client prints without
--verbose (a real HTTP server on loopback answering 503), and the progress bar of a long apply on
a terminal (a real pseudo-terminal) that a pipe never gets."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.service.testing import LocalServer

from .conftest import TOKEN
from .specs import manifest, write_specs


@pytest.fixture
def busy_server() -> Iterator[tuple[str, list[str]]]:
    """Answers the definitions list with 503 (Retry-After: 0.3) twice, then an empty page."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.path)
            busy = len(seen) <= 2
            data = json.dumps({"message": "busy"} if busy else
                              {"data": [], "next": None, "previous": None, "count": 0, "totalCount": 0}).encode()
            self.send_response(503 if busy else 200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if busy:
                self.send_header("Retry-After", "0.3")
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_a_client_that_backs_off_says_so_without_verbose(busy_server: tuple[str, list[str]], tmp_path: Path) -> None:
    host, seen = busy_server
    env = {"DATAROBOT_ENDPOINT": f"http://{host}/api/v2/", "DATAROBOT_API_TOKEN": TOKEN, "NO_COLOR": "1",
           "RECONCILER_LOCAL_DB_URL": f"sqlite:///{tmp_path}/unused.db"}
    result = CliRunner().invoke(app, ["list", "-o", "json"], env=env)  # type: ignore[arg-type]
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == [] and len(seen) == 3
    assert result.stderr.splitlines() == [f"503 from {host}, retrying in 0.3 s (attempt 2/6)",
                                          f"503 from {host}, retrying in 0.3 s (attempt 3/6)"]


def _run_in_terminal(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run the command with a pseudo-terminal as stdin, stdout and stderr; all it drew, as text."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(args, stdin=follower, stdout=follower, stderr=follower, env=env, cwd=cwd,
                               close_fds=True)
    os.close(follower)
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([leader], [], [], 120)
        if not ready:
            process.kill()
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return process.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")


def test_a_long_apply_draws_a_progress_bar_on_a_terminal_only(server: LocalServer, tmp_path: Path) -> None:
    root = write_specs(tmp_path / "specs", [manifest(f"demo-bar-{i:03d}") for i in range(60)])
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "NO_COLOR", "TERM")}
    env.update({"DATAROBOT_ENDPOINT": server.api_url, "DATAROBOT_API_TOKEN": TOKEN, "TERM": "xterm",
                "COLUMNS": "120", "PYTHONPATH": os.pathsep.join(sys.path)})
    command = [sys.executable, "-c", "from reconciler.cli import main; main()", "apply", str(root), "--auto-approve"]
    code, drawn = _run_in_terminal(command, env, tmp_path)
    assert code == 0, drawn
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", drawn)
    assert "Apply complete: 60 created" in plain
    assert re.search(r"Applying .*60/60", plain), plain[-2000:]  # the bar, finished
    assert len(set(re.findall(r"(demo-bar-\d{3}): created \[id ", plain))) == 60  # every result line, above it

    piped = subprocess.run([*command[:3], "plan", str(root), "--prune"], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert piped.returncode == 0
    write_specs(root, [manifest(f"demo-bar-{i:03d}", enabled=True, schedule={"cron": "5 1 * * *"})
                       for i in range(60)])
    piped = subprocess.run([*command, "--no-color"], env=env, cwd=tmp_path, capture_output=True, text=True,
                           timeout=120)
    assert piped.returncode == 0, piped.stderr
    assert "Apply complete: 0 created, 60 updated" in piped.stdout
    assert "Applying" not in piped.stdout + piped.stderr and "\x1b[" not in piped.stdout  # no bar in a pipe
    in_ci = _run_in_terminal([*command[:3], "apply", str(root), "--auto-approve"], {**env, "CI": "true"}, tmp_path)
    assert in_ci[0] == 0 and "Applying" not in in_ci[1]  # a CI log with a terminal: no bar either


def test_a_down_endpoint_is_retried_once_not_by_the_listing_worker_too(tmp_path: Path) -> None:
    """`plan` lists a remote target in a forked worker while the manifests load; the worker tries
    once, and a failure leaves the listing (its retries, their lines, the error) to the command, as
    without the worker. Retrying in both had doubled the wait and printed every line twice."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    write_specs(tmp_path / "specs", [manifest("demo-a"), manifest("demo-b")])
    env = {**os.environ, "DATAROBOT_ENDPOINT": f"http://127.0.0.1:{port}/api/v2/", "DATAROBOT_API_TOKEN": TOKEN,
           "NO_COLOR": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run([sys.executable, "-m", "reconciler", "plan", "specs", "--allow-http"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    retries = [line for line in done.stderr.splitlines() if "retrying in" in line]
    assert [line.rsplit("(", 1)[1] for line in retries] == [f"attempt {n}/6)" for n in range(2, 7)], done.stderr
    assert "cannot connect to 127.0.0.1" in done.stderr and TOKEN not in done.stderr
