"""The project config, ``reconciler.yaml`` at the specs root: the ownership scope (which live
definitions this project may update as its own and prune), the prune guard, named targets.

Why a scope: the API has no labels, so ownership cannot be read off a live object; it is
declared here, by name prefix and exact names. No scope, no prune.

``parse_config`` is pure; ``find_config`` and ``load_config`` read files. Errors carry
``file:line:col`` from the schema (``schemas/project.schema.json``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from reconciler import errors
from reconciler.contract import validators
from reconciler.specs.controls import Controls, config_issues, parse_controls
from reconciler.specs.files import read_limited
from reconciler.specs.load import PROJECT_CONFIG_NAMES, load_bytes, max_file_bytes
from reconciler.specs.scope import Scope

__all__ = ["SEED_COLLECTIONS", "ConfigError", "ProjectConfig", "Scope", "TargetConfig", "find_config", "load_config", "parse_config"]

DEFAULT_MAX_DELETE_FRACTION: Final = 0.5


class ConfigError(errors.ConfigError):
    """The project config is unreadable or invalid; ``problems`` are formatted ``file:line:col: ...``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, kw_only=True)
class TargetConfig:
    name: str
    endpoint: str | None = None
    token_from: Mapping[str, str] | None = None
    scope: Scope | None = None
    variables: Mapping[str, Any] = field(default_factory=dict)
    overlays: str | None = None


# Resource kinds the embedded local service can be seeded with, and the API collection of each.
SEED_COLLECTIONS: Final = {"deployments": "deployments/", "credentials": "credentials/",
                           "dataStores": "externalDataStores/"}


@dataclass(frozen=True, kw_only=True)
class ProjectConfig:
    path: str | None = None
    scope: Scope | None = None
    max_delete_fraction: float = DEFAULT_MAX_DELETE_FRACTION
    targets: Mapping[str, TargetConfig] = field(default_factory=dict)
    local_seed: Mapping[str, tuple[Mapping[str, Any], ...]] = field(default_factory=dict)
    # ``secrets.allowedDirs``: directories outside the project where secret files may be, as
    # written (relative to this file); see reconciler.specs.secrets
    secret_dirs: tuple[str, ...] = ()
    controls: Controls = field(default_factory=Controls)  # ignore rules and sync windows (specs.controls)

    def target(self, name: str) -> TargetConfig:
        try:
            return self.targets[name]
        except KeyError:
            known = ", ".join(sorted(self.targets)) or "none"
            raise ConfigError([f"{self.path or 'config'}: no target named {name!r} (known: {known})"]) from None

    def scope_for(self, target: str | None) -> Scope | None:
        """A target's own scope wins over the project's."""
        if target is not None and self.target(target).scope is not None:
            return self.target(target).scope
        return self.scope


def _scope(raw: Any) -> Scope | None:
    if not isinstance(raw, dict):
        return None
    scope = Scope(name_prefix=raw.get("namePrefix"), names=frozenset(raw.get("names") or ()))
    return scope if scope.name_prefix or scope.names else None


def parse_config(data: Mapping[str, Any], *, path: str | None = None) -> ProjectConfig:
    """A schema-valid config document as a value. Pure."""
    prune = data.get("prune") or {}
    targets = {
        name: TargetConfig(name=name, endpoint=raw.get("endpoint"), token_from=raw.get("tokenFrom"),
                           scope=_scope(raw.get("scope")), variables=dict(raw.get("variables") or {}),
                           overlays=raw.get("overlays"))
        for name, raw in sorted((data.get("targets") or {}).items())
    }
    seed = ((data.get("localService") or {}).get("seed") or {})
    return ProjectConfig(path=path, scope=_scope(data.get("scope")),
                         max_delete_fraction=float(prune.get("maxDeleteFraction", DEFAULT_MAX_DELETE_FRACTION)),
                         targets=targets,
                         local_seed={kind: tuple(seed.get(kind) or ()) for kind in SEED_COLLECTIONS if seed.get(kind)},
                         secret_dirs=tuple((data.get("secrets") or {}).get("allowedDirs") or ()),
                         controls=parse_controls(data))


def load_config(path: str | os.PathLike[str]) -> ProjectConfig:
    """Read and validate one config file."""
    from reconciler.contract.issues import schema_issues

    file = str(path)
    try:
        raw = read_limited(path, limit=max_file_bytes(), what="project config")
    except OSError as exc:
        raise ConfigError([f"{file}: cannot read the project config: {exc.strerror}"]) from None
    docs, load_errors = load_bytes(raw, file=file)
    if load_errors:
        raise ConfigError([f"{e.file}:{e.line}:{e.col}: {e.message}" for e in load_errors])
    if len(docs) != 1:
        raise ConfigError([f"{file}: expected exactly one YAML document, found {len(docs)}"])
    doc = docs[0]
    if doc.problems:
        raise ConfigError([f"{e.file}:{e.line}:{e.col}: {e.field}: {e.message}" for e in doc.problems])
    if not validators.validator("project").is_valid(doc.data):
        raise ConfigError([i.format() for i in schema_issues(doc, schema_name="project")])
    if issues := config_issues(doc):
        raise ConfigError([i.format() for i in issues])
    return parse_config(doc.data, path=file)


def _repo_root(start: Path) -> Path | None:
    for candidate in (start, *start.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


def find_config(paths: Iterable[str | os.PathLike[str]]) -> Path | None:
    """The first ``reconciler.yaml`` found in the given paths or their parents, stopping at the
    repository root (the directory holding ``.git``), or at the filesystem root outside a repo."""
    for raw in paths:
        start = Path(raw).resolve()
        if not start.is_dir():
            start = start.parent
        root = _repo_root(start)
        for directory in (start, *start.parents):
            for name in sorted(PROJECT_CONFIG_NAMES):
                # not is_file(): a FIFO or a broken link named reconciler.yaml is an error when
                # read, never a config silently skipped for one further up (or none)
                if os.path.lexists(directory / name) and not (directory / name).is_dir():
                    return directory / name
            if root is not None and directory == root:
                break
    return None
