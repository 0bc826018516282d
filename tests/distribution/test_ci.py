""".ci/run runs the README's test command verbatim, the checks the README's development section
promises, and the lowest-versions step with constraints that are exactly pyproject's lower bounds."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CI = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _readme_test_command() -> str:
    block = README.split("```sh\n", 1)[1].split("```", 1)[0]
    lines = block.splitlines()
    return next(lines[i + 1] for i, line in enumerate(lines) if line.startswith("# Install exactly the locked"))


def test_ci_runs_the_readmes_test_command_verbatim() -> None:
    command = _readme_test_command()
    assert command == ("pip install --require-hashes -r requirements/dev.txt && pip install --no-deps -e . && "
                       "python -m pytest -q")
    assert command in CI.splitlines()


def test_ci_runs_what_the_development_section_promises() -> None:
    checks = "ruff check reconciler tests bench .ci && mypy && lint-imports"
    assert checks in CI.splitlines() and checks in README
    assert "--resolution lowest-direct" in CI and '--constraint "$LOWEST/lower-bounds.txt"' in CI
    assert "python .ci/lower_bounds.py" in CI
    done = subprocess.run(["bash", "-n", str(ROOT / ".ci" / "run")], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


def _lower_bounds(pyproject_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run .ci/lower_bounds.py on this project, or on a copy of it beside another pyproject.toml."""
    script = ROOT / ".ci" / "lower_bounds.py"
    if pyproject_dir is not None:
        copy = pyproject_dir / "lower_bounds.py"
        copy.write_text(script.read_text(encoding="utf-8").replace(
            "ROOT = Path(__file__).resolve().parents[1]", "ROOT = Path(__file__).resolve().parent"), encoding="utf-8")
        script = copy
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)


def test_the_lowest_step_pins_every_runtime_dependency_at_its_lower_bound() -> None:
    done = _lower_bounds()
    assert done.returncode == 0, done.stderr
    pins = dict(line.split("==") for line in done.stdout.split())
    pyproject = (ROOT / "pyproject.toml").read_text()
    core = re.search(r"^dependencies = \[(.*?)^\]", pyproject, re.M | re.S)
    assert core is not None
    for name, low in re.findall(r'"([a-z0-9-]+)(?:\[[a-z,]+\])?>=([0-9.]+)"', core.group(1)):
        assert pins[name] == low, name
    for name in ("pandas", "kopf", "psycopg", "scikit-learn", "onnx"):  # the extras too
        assert name in pins
    for tool in ("pytest", "hypothesis", "ruff", "schemathesis"):  # the tools: lowest-direct, not pinned
        assert tool not in pins


@pytest.mark.parametrize(("requirement", "message"), [
    ('"cronsim"', "needs exactly one lower bound"),
    ('"cronsim<3"', "needs exactly one lower bound"),
])
def test_a_runtime_dependency_without_a_lower_bound_is_refused(tmp_path: Path, requirement: str, message: str) -> None:
    (tmp_path / "pyproject.toml").write_text(f'[project]\nname = "x"\ndependencies = [{requirement}]\n')
    done = _lower_bounds(tmp_path)
    assert done.returncode == 1 and message in done.stderr
