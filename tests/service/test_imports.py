"""The local service is its own part: of reconciler it imports only the contract, the error root,
``__about__`` and ``extras`` (issue #12). ``lint-imports`` enforces this with a forbidden list
(pyproject.toml); this test is the allow-list behind it, read from the import graph, so a new
top-level part of reconciler that the forbidden list does not name yet is caught too."""

from __future__ import annotations

import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
# reconciler.notify: its send module (httpx, apprise) for job.failed; what of it reaches further (the
# session side, notify.config and notify.events) is refused by the forbidden contract's indirect check
ALLOWED = ("reconciler.contract", "reconciler.errors", "reconciler.__about__", "reconciler.extras",
           "reconciler.notify")
CONTRACT = "The local service imports of reconciler only the contract, errors, __about__ and extras"


def _allowed(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in ALLOWED)


def test_the_service_imports_only_the_contract_errors_about_and_extras() -> None:
    graph = grimp.build_graph("reconciler", cache_dir=None)
    service = graph.find_descendants("reconciler.service") | {"reconciler.service"}
    outside = sorted(
        (importer, imported)
        for importer in service
        for imported in graph.find_modules_directly_imported_by(importer)
        if imported.split(".")[0] == "reconciler" and imported not in service and not _allowed(imported))
    assert outside == []


def test_the_forbidden_list_names_every_other_part_of_reconciler() -> None:
    graph = grimp.build_graph("reconciler", cache_dir=None)
    parts = {module for module in graph.modules if module.count(".") == 1} - {"reconciler.service"}
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    forbidden = set(next(c for c in contracts if c["name"] == CONTRACT)["forbidden_modules"])
    # display is the contract's own helper, forbidden to the service directly by its own contract
    assert parts - forbidden - set(ALLOWED) == {"reconciler.display"}
