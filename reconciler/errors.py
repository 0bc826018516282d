"""The one root of every error a user may see, and the exit code each kind means.

Why one tree: the command line maps errors to exit codes in one place (the CI contract: 1 error,
3 invalid manifests), the operator maps them to conditions, and a caller of the Python API can
catch ``ReconcilerError`` for "reconciler refused or failed" without knowing each module's classes.
Each part keeps its own classes (``api.errors`` for the client, ``specs`` for manifests and the
project config, the engine for plans) and derives them from these::

    ReconcilerError                  exit 1 unless a subclass says otherwise
    ├── UsageError                   a flag, path or argument the command cannot use
    ├── ConfigError                  reconciler.yaml unreadable or invalid
    ├── InvalidInput                 manifests (or a resource) fail validation: exit 3
    ├── SecretError                  a secret reference does not resolve
    ├── PlanError                    a plan cannot be applied: refused, stale, not a saved plan
    └── ServiceError                 the API or the service failed (api.errors.APIError, ...)
        ├── Unreachable              no usable answer (connection, timeout): stop starting writes
        ├── Unauthorized             the token was refused: stop starting writes
        └── NameTaken                the name is used by another definition (409)

``str()`` of every one is safe to print: no token or secret value is ever part of a message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

__all__ = ["ConfigError", "ConfigProblems", "InvalidInput", "NameTaken", "PlanError", "ReconcilerError", "SecretError", "ServiceError",
           "Unauthorized", "Unreachable", "UsageError"]


class ReconcilerError(Exception):
    """Root of reconciler's errors; ``exit_code`` is what the command line exits with."""

    exit_code: ClassVar[int] = 1


class UsageError(ReconcilerError):
    """A flag, path or argument the command cannot use."""


class ConfigError(ReconcilerError):
    """A configuration file (the project config reconciler.yaml, a policy file) is unreadable or invalid."""


class ConfigProblems(ConfigError):
    """A configuration error made of located problems: ``problems`` are ``file:line:col: ...``
    lines, one per problem, and the message is those lines."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


class InvalidInput(ReconcilerError):
    """Manifests or a resource fail validation: nothing was planned or applied."""

    exit_code: ClassVar[int] = 3


class SecretError(ReconcilerError):
    """A secret reference (apiKeyFrom, tokenFrom, ...) does not resolve."""


class PlanError(ReconcilerError):
    """A plan cannot be applied: refused by a guard, stale, or not a valid saved plan."""


class ServiceError(ReconcilerError):
    """The API (or the local service) could not do what was asked."""


class Unreachable(ServiceError):
    """No usable answer arrived (refused, unreachable, timed out): further requests would fail alike."""


class Unauthorized(ServiceError):
    """The service refused the credentials: further requests would fail alike."""


class NameTaken(ServiceError):
    """The name is already used by another definition."""
