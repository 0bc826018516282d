"""What the GitHub and GitLab comment tests share: a JSON HTTP handler base, a loopback server
for it, and running ``reconciler ci comment`` in-process or as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

RECONCILER = [sys.executable, "-c", "from reconciler.cli import main; main()"]


class JsonHandler(BaseHTTPRequestHandler):
    """A quiet handler that reads and answers JSON."""

    def log_message(self, *_: Any) -> None:
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _json_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw else None


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """``handler`` on a free loopback port; yields its base URL, stops the server after."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def run_comment(args: tuple[str, ...], *, stdin: str, env: Mapping[str, str | None]) -> Ran:
    """``reconciler ci comment ARGS`` in-process (typer's runner); ``None`` in ``env`` unsets."""
    from typer.testing import CliRunner

    from reconciler.cli import app

    result = CliRunner().invoke(app, ["ci", "comment", *args], input=stdin, env=dict(env))
    return Ran(result.exit_code, result.stdout, result.stderr)


def run_comment_process(args: tuple[str, ...], *, stdin: str, env: Mapping[str, str | None]) -> Ran:
    """The installed command line in a real process, as CI runs it."""
    merged = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    done = subprocess.run([*RECONCILER, "ci", "comment", *args], input=stdin, capture_output=True, text=True,
                          env=merged, timeout=60)
    return Ran(done.returncode, done.stdout, done.stderr)
