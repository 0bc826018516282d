"""Files that are not files: every path the tool reads goes through one bounded read of a regular
file (:mod:`reconciler.specs.files`). Before, a manifest, token file or secret file that was a
symlink to ``/dev/zero`` or ``/dev/urandom`` grew the process without bound (the size limit read
``stat().st_size``, which is 0 there) and a FIFO hung it forever.

Each case runs the real command in a subprocess and must end, quickly, within a memory bound,
with an error that names the path. The memory is the command's own peak (``RUSAGE_CHILDREN`` of a small launcher), not a guess.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.specs.files import UnreadableFile, read_limited

DEPLOYMENT = "5dc5b1015e6e762a6241f9aa"
CREDENTIAL = "5a8ac9ab07a57a0001be501f"
TIMEOUT = 60.0  # a hang is caught here; a normal run takes a few seconds
MAX_RSS_MB = 400  # the command itself needs ~100 MB; /dev/zero read to the end needs all there is

MANIFEST = f"""\
apiVersion: reconciler.io/v1alpha1
kind: BatchPredictionJobDefinition
metadata:
  name: demo-a
spec:
  enabled: false
  batchPredictionJob:
    deploymentId: {DEPLOYMENT}
    intakeSettings: {{type: s3, url: "s3://bucket/in.csv", credentialId: {CREDENTIAL}}}
    outputSettings: {{type: s3, url: "s3://bucket/out.csv", credentialId: {CREDENTIAL}}}
"""
PROJECT = f"""\
apiVersion: reconciler.io/v1alpha1
kind: Project
scope: {{namePrefix: demo-}}
localService:
  seed:
    deployments: [{{id: {DEPLOYMENT}, label: dep}}]
    credentials: [{{id: {CREDENTIAL}, name: cred}}]
"""


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str
    seconds: float
    max_rss_mb: float


# Peak memory has to be the command's own: on Linux a child's ru_maxrss starts from the RSS of the
# process it was forked from (pytest, hundreds of MB after other tests). So a small launcher forks
# the command and reports RUSAGE_CHILDREN, which counts the command alone, from a small baseline.
LAUNCHER = """\
import resource, subprocess, sys
try:
    code = subprocess.run(sys.argv[3:], timeout=float(sys.argv[2])).returncode
except subprocess.TimeoutExpired:
    code = 124
with open(sys.argv[1], "w") as report:
    report.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)
"""


def run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Ran:
    """``python -m reconciler ARGS`` with a deadline; its exit code, output, time and peak memory."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("DATAROBOT_ENDPOINT", "DATAROBOT_API_TOKEN")}
    full_env.update({"NO_COLOR": "1", "RECONCILER_LOCAL_DB_URL": f"sqlite:///{tmp_path}/local.db", **(env or {})})
    with tempfile.TemporaryDirectory() as scratch:
        rss = Path(scratch) / "rss"
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-c", LAUNCHER, str(rss), str(TIMEOUT), sys.executable, "-m",
                               "reconciler", *args], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              cwd=tmp_path, env=full_env, timeout=TIMEOUT + 30)
        seconds = time.monotonic() - started
        assert done.returncode != 124, f"`reconciler {' '.join(args)}` still running after {TIMEOUT:.0f}s"
        return Ran(done.returncode, done.stdout, done.stderr, seconds, int(rss.read_text()) / 1024)


def _bounded(ran: Ran) -> None:
    assert ran.max_rss_mb < MAX_RSS_MB, f"peak memory {ran.max_rss_mb:.0f} MB"
    assert "Traceback" not in ran.stderr, ran.stderr


def _hostile(directory: Path) -> dict[str, str]:
    """Manifest-named things that are not regular files, and the reason each must be refused with."""
    directory.mkdir(parents=True, exist_ok=True)
    os.mkfifo(directory / "pipe.yaml")
    (directory / "zero.yaml").symlink_to("/dev/zero")
    (directory / "random.yaml").symlink_to("/dev/urandom")
    with (directory / "huge.yaml").open("wb") as handle:
        handle.truncate(20 * 1024**3)  # 20 GB, sparse: takes no disk
    return {"pipe.yaml": "not a regular file: it is a FIFO (named pipe)",
            "zero.yaml": "not a regular file: it is a character device",
            "random.yaml": "not a regular file: it is a character device",
            "huge.yaml": f"file is {20 * 1024**3} bytes, over the 1048576-byte limit for a manifest file"}


def test_validate_refuses_fifos_devices_and_huge_files_quickly_in_bounded_memory(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    expected = _hostile(specs)
    (specs / "good.yaml").write_text(MANIFEST)
    fifo = tmp_path / "alone.fifo"
    os.mkfifo(fifo)
    ran = run(tmp_path, "validate", "specs", str(fifo))
    _bounded(ran)
    assert ran.code == 3, ran.stdout + ran.stderr
    for name, reason in expected.items():
        assert f"specs/{name}:1:1: {reason}" in ran.stdout, (name, ran.stdout)
    assert f"{fifo}:1:1: not a regular file: it is a FIFO (named pipe)" in ran.stdout
    assert "INVALID: 1 manifest(s) in 6 file(s): 5 error(s)" in ran.stdout


def test_a_fifo_as_project_config_or_overlay_is_an_error_not_a_hang(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "a.yaml").write_text(MANIFEST)
    os.mkfifo(specs / "reconciler.yaml")
    ran = run(tmp_path, "validate", "specs")
    _bounded(ran)
    assert ran.code == 3 and "cannot read the project config: not a regular file: it is a FIFO" in ran.stdout
    planned = run(tmp_path, "plan", "specs")
    _bounded(planned)
    assert planned.code == 1 and "cannot read the project config: not a regular file: it is a FIFO" in planned.stderr
    (specs / "reconciler.yaml").unlink()
    (specs / "reconciler.yaml").write_text(PROJECT + "targets:\n  dev: {variables: {}}\n")
    (tmp_path / "specs" / "overlays" / "dev").mkdir(parents=True)
    os.mkfifo(specs / "overlays" / "dev" / "demo-a.yaml")
    (specs / "overlays" / "dev" / "demo-a.yml").symlink_to("/dev/zero")  # .yaml is looked up first
    checked = run(tmp_path, "validate", "specs/a.yaml", "--target", "dev")
    _bounded(checked)
    assert checked.code == 3 and "demo-a.yaml:1:1: cannot read overlay: not a regular file: it is a FIFO" in checked.stdout


def test_token_files_that_never_end_are_refused(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "a.yaml").write_text(MANIFEST)
    os.mkfifo(tmp_path / "token.fifo")
    for token_file, kind in (("/dev/zero", "a character device"), ("/dev/urandom", "a character device"),
                             (str(tmp_path / "token.fifo"), "a FIFO (named pipe)")):
        ran = run(tmp_path, "plan", "specs", "--token-file", token_file,
                  env={"DATAROBOT_ENDPOINT": "https://dr.example.com/api/v2"})
        _bounded(ran)
        assert ran.code == 1, ran.stderr
        assert f"cannot read the --token-file: {token_file}: not a regular file: it is {kind}" in ran.stderr


def test_secret_files_that_never_end_stop_the_apply_before_any_write(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    os.mkfifo(specs / "key.fifo")
    instance = "    predictionInstance: {hostName: pred.example.com, apiKeyFrom: {file: %s}}\n"
    (specs / "a.yaml").write_text(MANIFEST + instance % "key.fifo")
    (specs / "b.yaml").write_text(MANIFEST.replace("demo-a", "demo-b") + instance % "/dev/zero")
    (specs / "reconciler.yaml").write_text(PROJECT + "secrets:\n  allowedDirs: [/dev]\n")  # /dev/zero passes validate
    ran = run(tmp_path, "apply", "specs", "--auto-approve")
    _bounded(ran)
    assert ran.code == 1, ran.stdout + ran.stderr
    assert "nothing was applied: secret references do not resolve" in ran.stderr
    assert "demo-a" in ran.stderr and "key.fifo: not a regular file: it is a FIFO (named pipe)" in ran.stderr
    assert "demo-b" in ran.stderr and "/dev/zero: not a regular file: it is a character device" in ran.stderr
    listed = run(tmp_path, "list", "-o", "json")
    assert listed.code == 0 and listed.stdout.strip() == "[]"


def test_a_saved_plan_or_a_comment_file_that_is_a_fifo_is_an_error(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "plan.json")
    ran = run(tmp_path, "apply", "plan.json")
    _bounded(ran)
    assert ran.code == 1 and "cannot read the plan plan.json: not a regular file: it is a FIFO" in ran.stderr
    posted = run(tmp_path, "ci", "comment", "--pr", "1", "--file", "plan.json")
    _bounded(posted)
    assert posted.code == 1 and "cannot read the plan plan.json: not a regular file: it is a FIFO" in posted.stderr
    (tmp_path / "zero.md").symlink_to("/dev/zero")
    posted = run(tmp_path, "ci", "comment", "--pr", "1", "--file", "zero.md")
    _bounded(posted)
    assert posted.code == 1 and "zero.md: not a regular file: it is a character device" in posted.stderr


def test_read_limited_reads_regular_files_only_and_never_more_than_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert read_limited(path, limit=100) == b"x" * 100
    with pytest.raises(UnreadableFile) as too_big:
        read_limited(path, limit=99, what="secret file", hint="smaller")
    assert too_big.value.strerror == "file is 100 bytes, over the 99-byte limit for a secret file"
    assert too_big.value.filename == str(path) and too_big.value.hint == "smaller"
    os.mkfifo(tmp_path / "fifo")
    started = time.monotonic()
    with pytest.raises(UnreadableFile, match="FIFO"):
        read_limited(tmp_path / "fifo", limit=10)  # no writer: a blocking open would never return
    assert time.monotonic() - started < 1
    with pytest.raises(FileNotFoundError):
        read_limited(tmp_path / "missing", limit=10)
