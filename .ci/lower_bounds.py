"""Print ``name==LOWER`` for every runtime dependency in pyproject.toml (the core and every extra
but ``dev``): the constraints of .ci/run's lowest-versions step, so that it installs exactly the
lower bounds the ranges claim, not merely the lowest versions a resolver happens to reach.

A runtime dependency without a ``>=`` lower bound is an error: its range could not be tested.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
TEST_ONLY = {"dev"}  # the tools: the lowest step takes their lowest versions without pinning them


def runtime_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[Requirement]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    own = canonicalize_name(project["name"])
    found = [Requirement(line) for line in project["dependencies"]]
    for extra, lines in project.get("optional-dependencies", {}).items():
        if extra not in TEST_ONLY:
            found += [Requirement(line) for line in lines]
    return [req for req in found if canonicalize_name(req.name) != own]


def lower_bound(req: Requirement) -> str:
    lows = [spec.version for spec in req.specifier if spec.operator in (">=", "==", "~=")]
    if len(lows) != 1:
        raise SystemExit(f"pyproject.toml: {req} needs exactly one lower bound (>=, == or ~=) to be tested")
    return lows[0].removesuffix(".*")


def main() -> None:
    seen: dict[str, str] = {}
    for req in runtime_requirements():
        name = canonicalize_name(req.name)
        low = lower_bound(req)
        if seen.setdefault(name, low) != low:
            raise SystemExit(f"pyproject.toml: {req.name} has two lower bounds ({seen[name]}, {low})")
    sys.stdout.write("".join(f"{name}=={low}\n" for name, low in sorted(seen.items())))


if __name__ == "__main__":
    main()
