"""The operator's session (:mod:`reconciler.session`), opened from the operator's own
configuration as the CLI opens one from its flags: the project config of ``--project-config``
and ``--target`` (ignore rules, sync windows), the ``--policy`` files and ``--policy-target``, the
notification channels of its environment, and the endpoint of the API Secret.

Why two steps: the policy files are read and their CEL compiled once, at start (a rule that is
wrong stops the start, with its place), never per event; a session is opened per set of
credentials (the Secret's endpoint may change when it is rotated), next to the one API client
made for them (:class:`reconciler.operator.handlers.Runtime`); per event nothing is built (the
moment of a reconcile is passed to :meth:`~reconciler.session.Session.window` and
:meth:`~reconciler.session.Session.apply`, so that both judge the windows at the same one).

The session's ``environ`` is empty: the operator never reads its own process environment for a
secret reference of a resource (``decide._secret_references`` refuses them before that).
"""

from __future__ import annotations

from pathlib import Path

from reconciler.api.client import Connection
from reconciler.operator.config import OperatorConfig
from reconciler.session import Options, Session
from reconciler.session_steps import Rules
from reconciler.specs.policies import load_policy_files

__all__ = ["compile_rules", "open_session"]


def compile_rules(config: OperatorConfig) -> Rules:
    """The ``--policy`` files read and compiled, seen under ``--policy-target``; no files: no
    rules, and the CEL runtime is never imported."""
    rules = load_policy_files(config.policy_files).rules if config.policy_files else ()
    return Rules.compile(rules, target=config.policy_target)


def open_session(config: OperatorConfig, rules: Rules, *, endpoint: str) -> Session:
    """The session reconciles go through for the API at ``endpoint`` (from the Secret; the
    token stays in the client)."""
    project = config.project
    options = Options(paths=(), config=Path(project.path) if project.path else None, target=config.target,
                      allow_http=config.allow_http, environ={}, source="operator", no_cache=True)
    connection = Connection(endpoint=endpoint, source=f"Secret {config.secret}", allow_http=config.allow_http)
    return Session.assemble(options, config=project, connection=connection, rules=rules, channels=config.notify)
