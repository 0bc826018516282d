"""Project config: schema, parsing, discovery."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.engine.types import Scope
from reconciler.specs.config import ProjectConfigError, find_config, load_config

GOOD = """\
apiVersion: reconciler.io/v1alpha1
kind: Project
scope:
  namePrefix: "demo-"
  names: [legacy-one]
prune:
  maxDeleteFraction: 0.25
targets:
  prod:
    endpoint: https://app.example.com/api/v2
    tokenFrom: {env: PROD_TOKEN}
    scope: {namePrefix: "prod-"}
"""


def test_load_and_scope(tmp_path: Path) -> None:
    (tmp_path / "reconciler.yaml").write_text(GOOD)
    config = load_config(tmp_path / "reconciler.yaml")
    assert config.scope == Scope(name_prefix="demo-", names=frozenset({"legacy-one"}))
    assert config.scope.contains("demo-x") and config.scope.contains("legacy-one") and not config.scope.contains("x")
    assert config.max_delete_fraction == 0.25
    prod = config.target("prod")
    assert prod.endpoint == "https://app.example.com/api/v2" and prod.token_from == {"env": "PROD_TOKEN"}
    assert config.scope_for("prod") == Scope(name_prefix="prod-")
    with pytest.raises(ProjectConfigError, match="no target named 'dev'"):
        config.target("dev")


def test_defaults_and_no_scope(tmp_path: Path) -> None:
    (tmp_path / "reconciler.yaml").write_text("apiVersion: reconciler.io/v1alpha1\nkind: Project\n")
    config = load_config(tmp_path / "reconciler.yaml")
    assert config.scope is None and config.max_delete_fraction == 0.5


def test_invalid_config_is_located(tmp_path: Path) -> None:
    (tmp_path / "reconciler.yaml").write_text(
        "apiVersion: reconciler.io/v1alpha1\nkind: Project\nprune:\n  maxDeleteFraction: 2\n")
    with pytest.raises(ProjectConfigError) as info:
        load_config(tmp_path / "reconciler.yaml")
    assert "reconciler.yaml:4:" in str(info.value) and "maxDeleteFraction" in str(info.value)


def test_find_searches_parents_up_to_the_repo_root(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "specs" / "team").mkdir(parents=True)
    (repo / "specs" / "reconciler.yaml").write_text(GOOD)
    assert find_config([repo / "specs" / "team"]) == repo / "specs" / "reconciler.yaml"
    (tmp_path / "reconciler.yaml").write_text(GOOD)  # above the repo root: never used
    assert find_config([repo]) is None
