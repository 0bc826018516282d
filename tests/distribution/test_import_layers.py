"""The import contracts in pyproject.toml (``[tool.importlinter]``, run by .ci/run as
``lint-imports``) hold today, and each one really fails when the import it forbids is added."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = [c["name"] for c in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]]

# one import that breaks each contract, in a module the contract covers
BREAKS = {
    "Layers: cli > watch | operator | gitops > session > api > engine > specs > contract":
        ("reconciler/engine/plan.py", "import reconciler.session"),
    "The engine imports no I/O library": ("reconciler/engine/diff.py", "import subprocess"),
    "The API client never builds the local service (the session injects its transport)":
        ("reconciler/api/live.py", "import reconciler.service.app"),
    "The contract imports nothing of reconciler but the error root and display helpers":
        ("reconciler/contract/cron.py", "import yaml"),
    "Manifests, plans and the CRD import no extra": ("reconciler/engine/plan.py", "import pandas"),
    "The local service imports of reconciler only the contract, errors, __about__ and extras":
        ("reconciler/service/ids.py", "import reconciler.session"),
    "The local service reaches display helpers only through the contract":
        ("reconciler/service/ids.py", "import reconciler.display"),
    "Extras, __about__ and cores are leaves: they import nothing of reconciler":
        ("reconciler/extras.py", "import reconciler.errors"),
    "The operator's decision is pure: no API client, no kopf, no HTTP":
        ("reconciler/operator/decide.py", "import httpx"),
    "The operator acts only through the session":
        ("reconciler/operator/act.py", "import reconciler.engine.apply"),
}


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    lint = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(lint), "--config", str(tree / "pyproject.toml"), "--no-cache"], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=300)


def _copy(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "reconciler", tree / "reconciler", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def test_every_contract_is_tested_here() -> None:
    assert sorted(BREAKS) == sorted(CONTRACTS)


def test_the_contracts_hold_and_each_fails_when_broken(tmp_path: Path) -> None:
    tree = _copy(tmp_path)
    kept = _lint_imports(tree)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in kept.stdout
    for name, (module, line) in BREAKS.items():
        path = tree / module
        original = path.read_text(encoding="utf-8")
        path.write_text(original + f"\n{line}  # noqa\n", encoding="utf-8")
        broken = _lint_imports(tree)
        path.write_text(original, encoding="utf-8")
        assert broken.returncode == 1, (name, broken.stdout + broken.stderr)
        report = broken.stdout.split("Broken contracts", 1)[-1]
        assert f"{name} BROKEN" in " ".join(broken.stdout.split()), (name, broken.stdout[-2000:])
        importer = module.removesuffix(".py").replace("/", ".")
        assert f"{importer} -> {line.split()[1]}" in report, (name, report[-2000:])  # the added line is the culprit
