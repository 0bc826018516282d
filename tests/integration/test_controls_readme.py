"""README "Controls": its shell blocks run as written (in bash, from a copy of the checkout's
examples/controls) against the embedded local service, and print what the README says."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Controls\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.S)


def test_the_controls_examples_run_as_written(tmp_path: Path) -> None:
    setup, ignore, suspend, window = _blocks()[:4]  # then other helpers' sections
    (tmp_path / "examples").mkdir()
    shutil.copytree(ROOT / "examples" / "controls", tmp_path / "examples" / "controls")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAROBOT_", "RECONCILER_"))}
    env.update({"PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", "NO_COLOR": "1",
                "HOME": str(tmp_path), "COLUMNS": "200", "PYTHONPATH": str(ROOT)})
    db = tmp_path / "controls.db"
    script = "\n".join([setup.replace("/tmp/reconciler-controls.db", str(db)), "echo '--- ignore'", ignore,
                        "echo '--- suspend'", suspend, "echo '--- window'", window])
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    out = done.stdout
    assert done.returncode == 0 and "Traceback" not in done.stderr, f"{out}\n--- stderr\n{done.stderr}"
    head, rest = out.split("--- ignore\n", 1)
    ignored, rest = rest.split("--- suspend\n", 1)
    suspended, windowed = rest.split("--- window\n", 1)
    assert "OK: 2 manifest(s)" in head
    assert "Apply complete: 1 created" in ignored and "~ enabled: true -> false" in ignored
    assert "No changes. Live definitions match the manifests. 2 differences ignored, 1 definition suspended." \
        in ignored
    assert "demo-nightly: enabled: live false, manifest true" in ignored
    assert re.search(r"demo-nightly\s+\w+\s+no\s", ignored)  # still disabled after the last apply
    assert "'name': 'demo-backfill'" in suspended and "'pending': 'create'" in suspended
    assert "Sync window: closed (deny window change freeze is open and does not close within 400 days)." in windowed
    assert "exit 1" in windowed
    assert "apply refused: deny window change freeze is open" in done.stderr
    assert "warning: sync window overridden by --force: deny window change freeze" in windowed
    assert "Apply complete: 1 created, 0 updated, 0 deleted." in windowed.split("exit 1", 1)[1]
