"""The project config, ``reconciler.yaml`` at the specs root: the ownership scope (which live
definitions this project may update as its own and prune), the prune guard, named targets.

Why a scope: the API has no labels, so ownership cannot be read off a live object; it is
declared here, by name prefix and exact names. No scope, no prune.

``parse_config`` is pure; ``find_config`` and ``load_config`` read files. Errors carry
``file:line:col`` from the schema (``schemas/project.schema.json``).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from reconciler import errors
from reconciler.specs.controls import Controls, config_issues, parse_controls
from reconciler.specs.load import PROJECT_CONFIG_NAMES, read_one_document
from reconciler.specs.notifications import notification_file_issues
from reconciler.specs.policies import PolicySet, rules_from_config
from reconciler.specs.scope import Scope

__all__ = ["DEFAULT_TARGET", "SEED_COLLECTIONS", "ProjectConfig", "ProjectConfigError", "Scalar", "Scope", "TargetConfig",
           "TargetError", "find_config", "load_config", "parse_config", "parse_target"]

DEFAULT_MAX_DELETE_FRACTION: Final = 0.5
DEFAULT_TARGET: Final = "default"
OVERLAYS_DIR: Final = "overlays"
VARIABLE_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
Scalar = str | int | float | bool


class ProjectConfigError(errors.ConfigError):
    """The project config is unreadable or invalid; ``problems`` are formatted ``file:line:col: ...``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class TargetError(errors.ConfigError, ValueError):
    """The ``targets`` section cannot give the target asked for; the message says why and what to do."""


@dataclass(frozen=True, kw_only=True)
class TargetConfig:
    """One ``targets:`` entry (an environment): where requests go, its scope, variables and
    overlays. The one model of a target: the session connects with it and
    :mod:`reconciler.specs.environments` applies it. ``token_from`` says where the token is read
    from, never the token itself."""

    name: str
    endpoint: str | None = None
    token_from: Mapping[str, str] | None = None
    scope: Scope | None = None
    variables: Mapping[str, Scalar] = field(default_factory=dict)
    overlays: str | None = None
    unknown_hint: str | None = None  # replaces the hint of an unknown-variable error (the default target)
    use_overlays: bool = True

    def overlays_dir(self, *, root: Path | None) -> Path:
        """Where this target's overlays live: ``overlays`` (default ``overlays/<name>``) resolved
        against ``root`` (the config's directory) or the working directory."""
        path = Path(self.overlays) if self.overlays is not None else Path(OVERLAYS_DIR) / self.name
        return path if path.is_absolute() or root is None else root / path


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
    # ``notifications:`` as written (schemas/notification-channel.schema.json); reconciler.notify.config
    notifications: tuple[Mapping[str, Any], ...] = ()
    # ``policies``: rules and test cases (reconciler.specs.policies), read with the config
    policies: PolicySet = field(default_factory=PolicySet)
    controls: Controls = field(default_factory=Controls)  # ignore rules and sync windows (specs.controls)

    def target(self, name: str) -> TargetConfig:
        try:
            return self.targets[name]
        except KeyError:
            known = ", ".join(sorted(self.targets)) or "none"
            raise ProjectConfigError([f"{self.path or 'config'}: no target named {name!r} (known: {known})"]) from None

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


def parse_target(name: str, raw: Any) -> TargetConfig:
    """One ``targets.NAME`` mapping as a :class:`TargetConfig`. Pure.

    Checks what the schema cannot say (variable names) and, for a document that skipped the
    schema, refuses a token written into the config instead of where to read it.
    """
    where = f"targets.{name}"
    if not isinstance(raw, Mapping):
        raise TargetError(f"{where}: a target must be a mapping, got {type(raw).__name__}")
    if "token" in raw or "apiToken" in raw:
        raise TargetError(f"{where}: a token never belongs in the config; "
                          "write `tokenFrom: {env: NAME}` or `tokenFrom: {file: PATH}`")
    token_from = raw.get("tokenFrom")
    if token_from is not None and (not isinstance(token_from, Mapping) or len(token_from) != 1
                                   or not set(token_from) <= {"env", "file"}
                                   or not all(isinstance(v, str) and v for v in token_from.values())):
        raise TargetError(f"{where}.tokenFrom: expected exactly one of {{env: NAME}} or {{file: PATH}}")
    endpoint = raw.get("endpoint")
    if endpoint is not None and not isinstance(endpoint, str):
        raise TargetError(f"{where}.endpoint: expected a URL string")
    overlays = raw.get("overlays")
    if overlays is not None and not isinstance(overlays, str):
        raise TargetError(f"{where}.overlays: expected a directory path")
    scope = raw.get("scope")
    if scope is not None and not isinstance(scope, Mapping):
        raise TargetError(f"{where}.scope: expected a mapping such as {{namePrefix: dev-}}")
    raw_vars = raw.get("variables") or {}
    if not isinstance(raw_vars, Mapping):
        raise TargetError(f"{where}.variables: expected a mapping of NAME: value")
    variables: dict[str, Scalar] = {}
    for key, value in raw_vars.items():
        if not isinstance(key, str) or not VARIABLE_NAME.match(key):
            raise TargetError(f"{where}.variables: {key!r} is not a variable name (letters, digits, _)")
        if not isinstance(value, (str, int, float, bool)):
            raise TargetError(f"{where}.variables.{key}: expected a string, number or boolean")
        variables[key] = value
    return TargetConfig(name=name, endpoint=endpoint, token_from=dict(token_from) if token_from else None,
                        scope=_scope(scope), variables=variables, overlays=overlays)


def parse_config(data: Mapping[str, Any], *, path: str | None = None) -> ProjectConfig:
    """A schema-valid config document as a value, parsed once: every command, the session and
    the environments read this value. Pure; :class:`TargetError` for a target the schema cannot
    fully check (a variable name)."""
    prune = data.get("prune") or {}
    targets = {name: parse_target(name, raw) for name, raw in sorted((data.get("targets") or {}).items())}
    seed = ((data.get("localService") or {}).get("seed") or {})
    return ProjectConfig(path=path, scope=_scope(data.get("scope")),
                         max_delete_fraction=float(prune.get("maxDeleteFraction", DEFAULT_MAX_DELETE_FRACTION)),
                         targets=targets,
                         local_seed={kind: tuple(seed.get(kind) or ()) for kind in SEED_COLLECTIONS if seed.get(kind)},
                         secret_dirs=tuple((data.get("secrets") or {}).get("allowedDirs") or ()),
                         notifications=tuple(data.get("notifications") or ()),
                         controls=parse_controls(data))


def load_config(path: str | os.PathLike[str]) -> ProjectConfig:
    """Read and validate one config file."""
    file = str(path)
    doc = read_one_document(path, what="project config", schema_name="project", error=ProjectConfigError)
    found = [*config_issues(doc), *notification_file_issues(doc)]
    if issues := [i for i in found if i.severity == "error"]:  # warnings: validate's
        raise ProjectConfigError([i.format() for i in issues])
    try:
        parsed = parse_config(doc.data, path=file)
    except TargetError as exc:
        raise ProjectConfigError([f"{file}: {exc}"]) from None
    if doc.data.get("policies"):
        parsed = dataclasses.replace(parsed, policies=rules_from_config(doc, config_file=file))
    return parsed


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
