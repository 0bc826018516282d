"""README, "Controls": the shell examples of "References by name" and "Notifications" run as
written (in bash, from a copy of specs/, against the embedded local service); the notification
example's port is swapped for a free one."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _block(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split(f"### {title}\n", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.S)[0]


def _run(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAROBOT_", "RECONCILER_"))}
    env.update({"PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", "NO_COLOR": "1",
                "PYTHONPATH": str(ROOT)})
    return subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_references_by_name_example(tmp_path: Path) -> None:
    done = _run(_block("References by name"), tmp_path)
    assert done.returncode == 0, done.stderr
    assert '= batchPredictionJob.deploymentRef "Churn classifier" is deployment 64b0c0ffee000000000d0001' in done.stdout
    assert 'dataStoreRef "Warehouse (PostgreSQL)" is dataStore 64b0c0ffee000000000e0001' in done.stdout


def test_notifications_example(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = _run(_block("Notifications").replace("8765", str(port)), tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("drift.found b'{\"specVersion\":\"1\"")
