"""The corpus of broken manifests: what ``reconciler validate`` tells the user, line for line.

Each case in ``tests/cases/invalid/`` is ``NAME.yaml`` (or a directory ``NAME/`` of manifests)
with ``NAME.expected`` beside it: the exact lines the validator prints, with paths relative to
the cases directory. The sidecars are reviewed text: what a user SHOULD see.

Regenerate them after a deliberate change of wording with ``REGEN=1 pytest tests/specs`` and
review the diff line by line before keeping it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.specs.validate import validate_paths

CASES = Path(__file__).resolve().parent.parent / "cases" / "invalid"
REGEN = os.environ.get("REGEN") == "1"

# Cases that need an environment: the size limit is lowered instead of committing a 1 MiB file.
ENVIRONMENT: dict[str, dict[str, str]] = {
    "loader-file-too-large": {"RECONCILER_MAX_FILE_BYTES": "200"},
}


def _cases() -> list[str]:
    """Every input: ``NAME.yaml`` files and ``NAME/`` directories (sidecars are checked separately)."""
    return sorted({p.stem for p in CASES.glob("*.yaml")} | {p.name for p in CASES.iterdir() if p.is_dir() and not p.name.startswith(".")})


def _target(name: str) -> str:
    if (CASES / f"{name}.yaml").is_file():
        return f"{name}.yaml"
    if (CASES / name).is_dir():
        return name
    raise AssertionError(f"case {name}: neither {name}.yaml nor {name}/ exists beside {name}.expected")


def test_corpus_is_complete() -> None:
    """Every manifest has a sidecar and the corpus keeps its breadth."""
    inputs = set(_cases())
    sidecars = {p.name[: -len(".expected")] for p in CASES.glob("*.expected")}
    assert inputs == sidecars, f"without sidecar: {sorted(inputs - sidecars)}; without input: {sorted(sidecars - inputs)}"
    assert len(inputs) >= 60


@pytest.mark.parametrize("name", _cases())
def test_invalid_case(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in ENVIRONMENT.get(name, {}).items():
        monkeypatch.setenv(key, value)
    report = validate_paths([CASES / _target(name)])
    prefix = f"{CASES}{os.sep}"  # paths are shown relative to the cases directory
    lines = [line.replace(prefix, "") for issue in report.issues for line in issue.format().splitlines()]
    sidecar = CASES / f"{name}.expected"
    if not REGEN:
        assert sidecar.exists(), f"{sidecar.name} is missing; write it with REGEN=1 and review it"
    else:
        sidecar.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    expected = sidecar.read_text(encoding="utf-8").splitlines()
    assert lines == expected
    assert not report.ok, "every case in the corpus must be reported invalid"
