"""examples/gitops-repo/README.md, "Try it locally", run as written: its shell blocks in bash from a
clean copy of the directory (git init included), against the embedded local service."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from reconciler.service.testing import wait_until_healthy

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "gitops-repo"


def _blocks() -> list[str]:
    text = (EXAMPLE / "README.md").read_text()
    section = text.split("## Try it locally", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.S)


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAROBOT_", "RECONCILER_", "GIT_"))}
    env.update({"PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", "NO_COLOR": "1",
                "HOME": str(tmp_path), "GIT_AUTHOR_NAME": "user", "GIT_AUTHOR_EMAIL": "user@example.com",
                "GIT_COMMITTER_NAME": "user", "GIT_COMMITTER_EMAIL": "user@example.com",
                "GIT_CONFIG_NOSYSTEM": "1"})
    return env


def _bash(script: str, *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The lines as a user types them (no `set -e`: `plan --detailed-exitcode; echo "exit $?"` goes on
    after exit 2); no line may print an error."""
    done = subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "error" not in done.stderr.lower() and "Traceback" not in done.stderr, (
        f"{script}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}")
    return done


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_try_it_locally_runs_as_written(tmp_path: Path) -> None:
    setup, drift, selective = _blocks()
    env = _env(tmp_path)
    copy = tmp_path / "gitops-repo"

    # 1. copy, git init, validate per target, markdown plan, apply, drift check (exit 0)
    first = _bash(setup.replace("/tmp/gitops-repo", str(copy)), cwd=ROOT, env=env)
    assert first.stdout.count("OK: 2 manifest(s)") == 3
    assert "Apply complete: 2 created" in first.stdout and first.stdout.rstrip().endswith("exit 0")
    plan_md = (copy / "plan.md").read_text()
    assert "**Plan: 2 to create, 0 to update, 0 to delete.**" in plan_md and "<details>" in plan_md
    status = subprocess.run(["git", "status", "--porcelain"], cwd=copy, env=env, capture_output=True, text=True)
    assert status.stdout == ""  # .gitignore keeps the local database and plan.md out of git

    # 2. a live change made outside git, through `reconciler serve`: the drift check exits 2
    lines = [line for line in drift.replace("\\\n", " ").splitlines() if line.strip()]
    serve = next(line for line in lines if line.startswith("reconciler serve"))
    port = _free_port()
    server = subprocess.Popen([*serve.split("#")[0].replace("8080", str(port)).split(), "--scheduler-interval", "0"],
                              cwd=copy, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # a loaded 2-core machine took over 30 s to start it once; fail at once if it exits instead
        wait_until_healthy(f"http://127.0.0.1:{port}", timeout=120, process=server)
        listed = _bash("reconciler list --target local --output json", cwd=copy, env=env)
        ident = next(d["id"] for d in json.loads(listed.stdout) if d["name"] == "acme-fraud-hourly")
        rest = "\n".join(line for line in lines if line is not serve).replace("8080", str(port)).replace("/ID/", f"/{ident}/")
        if shutil.which("curl") is None:  # the same PATCH, for a machine without curl
            patch = next(line for line in rest.splitlines() if line.startswith("curl"))
            httpx.patch(f"http://127.0.0.1:{port}/api/v2/batchPredictionJobDefinitions/{ident}/",
                        json={"numConcurrent": 3}).raise_for_status()
            rest = rest.replace(patch, "")
        second = _bash(rest, cwd=copy, env=env)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert "~ batchPredictionJob.numConcurrent: 3 -> 1" in second.stdout and "exit 2" in second.stdout
    assert "Apply complete: 0 created, 1 updated" in second.stdout

    # 3. selective runs (the watcher runs until Ctrl-C; it is tested in test_watch.py)
    script = "\n".join(line for line in selective.splitlines() if not line.startswith("reconciler watch"))
    third = _bash(script, cwd=copy, env=env)
    assert "partial plan (--selector team=risk): 1 of 2 manifest(s)" in third.stdout + third.stderr
    assert "In scope without a manifest (pass --prune to delete) (1): acme-fraud-hourly" in third.stdout
    assert "- delete acme-fraud-hourly" in third.stdout
    assert (copy / "specs" / "fraud-hourly.yaml").is_file()
