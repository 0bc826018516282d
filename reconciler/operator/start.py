"""Starting the operator: the flags' values checked and turned into an :class:`OperatorConfig`,
then kopf started with the handlers built from it.

Why not in the command module: the command only parses flags (``reconciler.cli.operator``); the
checks (which flags need which), the project config, the logging levels and the peering
choice are the operator's own rules, and raising :class:`reconciler.errors.UsageError` lets the
command line print them and exit 1 like every other command.

Why ``kopf.operator()`` and not ``kopf run``: the handlers are built from the parsed flags
(:func:`handlers.build_registry`), and the API credentials come only from ``--secret
NAMESPACE/NAME``, so nothing about the API is ever on a command line.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.errors import UsageError
from reconciler.notify.send import channels_from_env
from reconciler.operator.config import ApiSecret, OperatorConfig, Webhook
from reconciler.specs.config import ProjectConfig, load_config
from reconciler.specs.scope import Scope

__all__ = ["Flags", "Launch", "kubernetes_config_problem", "prepare", "project_config", "run"]

_log = logging.getLogger("reconciler.operator")


@dataclass(frozen=True, kw_only=True)
class Flags:
    """What ``reconciler operator`` was given, as given (each field is the flag of that name)."""

    secret: str
    namespace: tuple[str, ...] = ()
    all_namespaces: bool = False
    resync_interval: float = 300.0
    backoff_initial: float = 2.0
    backoff_max: float = 300.0
    liveness: str | None = None
    peering: str | None = None
    standalone: bool = False
    priority: int | None = None
    allow_http: bool = False
    log_level: str = "info"
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    live_cache: bool = True
    scope_prefix: str | None = None
    scope_name: tuple[str, ...] = ()
    webhook_port: int | None = None
    webhook_listen: str = "0.0.0.0"
    webhook_cert_dir: Path | None = None
    webhook_configuration: str | None = None
    webhook_host: str | None = None
    policy: tuple[Path, ...] = ()
    policy_target: str | None = None
    project_config: Path | None = None
    target: str | None = None


@dataclass(frozen=True, kw_only=True)
class Launch:
    """A checked start: the operator's configuration and how kopf and the process run it."""

    config: OperatorConfig
    level: int
    peering: str | None
    priority: int | None  # with peering: chosen at random when not given, so that of two replicas one acts
    liveness: str | None
    metrics: tuple[str, int] | None = field(default=None)  # (host, port)


def prepare(flags: Flags, environ: Mapping[str, str] = os.environ) -> Launch:
    """Check the flags (in the order a user fixes them) and build the configuration; raise
    :class:`UsageError` (or the project config's ``ProjectConfigError``) naming the flag at fault.
    Reads only the project config and the policy-notification environment: no cluster yet."""
    try:
        ref = ApiSecret.parse(flags.secret)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not flags.namespace and not flags.all_namespaces:
        raise UsageError("give --namespace NS (repeatable) or --all-namespaces")
    if flags.peering and flags.standalone:
        raise UsageError("--peering and --standalone exclude each other")
    level = getattr(logging, flags.log_level.upper(), None)
    if not isinstance(level, int):
        raise UsageError(f"unknown --log-level {flags.log_level!r}")
    project = project_config(flags.project_config, flags.target)
    return Launch(config=OperatorConfig(
        secret=ref, namespaces=flags.namespace, clusterwide=flags.all_namespaces,
        resync_interval=flags.resync_interval, backoff_initial=flags.backoff_initial, backoff_max=flags.backoff_max,
        allow_http=flags.allow_http, scope=_scope(flags), webhook=_webhook(flags),
        notify=channels_from_env(environ, events=frozenset({"drift.found"})),
        policy_files=tuple(str(p) for p in flags.policy), policy_target=flags.policy_target,
        project=project, target=flags.target, live_cache=flags.live_cache),
        level=level, peering=flags.peering, liveness=flags.liveness,
        priority=random.SystemRandom().randint(1, 2**31 - 1) if flags.peering and flags.priority is None
        else flags.priority,
        metrics=None if flags.metrics_port is None else (flags.metrics_host, flags.metrics_port))


def _scope(flags: Flags) -> Scope | None:
    if not flags.scope_prefix and not flags.scope_name:
        return None
    return Scope(name_prefix=flags.scope_prefix, names=frozenset(flags.scope_name))


def _webhook(flags: Flags) -> Webhook | None:
    if flags.webhook_port is None:
        if flags.webhook_cert_dir or flags.webhook_configuration or flags.webhook_host:
            raise UsageError("the --webhook-* options need --webhook-port")
        return None
    cert_dir = flags.webhook_cert_dir
    if cert_dir is not None and not all((cert_dir / f).is_file() for f in ("tls.crt", "tls.key")):
        raise UsageError(f"--webhook-cert-dir {cert_dir} must hold tls.crt and tls.key (a mounted "
                         "kubernetes.io/tls Secret)")
    return Webhook(port=flags.webhook_port, listen=flags.webhook_listen, host=flags.webhook_host, cert_dir=cert_dir,
                   managed=flags.webhook_configuration)


def project_config(path: Path | None, target: str | None) -> ProjectConfig:
    """``--project-config`` parsed, with ``--target`` one of its targets (whose ignore rules and
    sync windows the operator adds to the project's); the config's located problems are raised as
    its ``ProjectConfigError``."""
    if path is None:
        if target is not None:
            raise UsageError("--target needs --project-config FILE (the reconciler.yaml that declares it)")
        return ProjectConfig()
    config = load_config(path)
    if target is not None:
        config.target(target)
    return config


def kubernetes_config_problem() -> str | None:
    """Why neither the in-cluster service account nor a kubeconfig can be loaded, or None.

    Checked before kopf starts: kopf would otherwise log a traceback and retry every minute forever.
    """
    import kubernetes

    try:
        kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
        return None
    except kubernetes.config.ConfigException:
        pass
    try:
        kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]
        return None
    except (kubernetes.config.ConfigException, OSError, ValueError) as exc:
        where = os.environ.get("KUBECONFIG") or "~/.kube/config"
        return (f"no Kubernetes cluster to talk to: not in a pod (no service account) and the kubeconfig "
                f"{where} cannot be used ({exc}); set KUBECONFIG to a valid kubeconfig file")


def run(launch: Launch) -> None:
    """Check that a cluster is reachable, configure logging, compile the policies, serve the
    metrics and run kopf until stopped."""
    import asyncio

    import kopf

    from reconciler.operator.handlers import Runtime, build_registry
    from reconciler.operator.metrics import serve
    from reconciler.operator.ownership import describe

    problem = kubernetes_config_problem()
    if problem:
        raise UsageError(problem)
    config, webhook = launch.config, launch.config.webhook
    # kopf's formatter prefixes each per-object line with [namespace/name].
    kopf.configure(log_format=kopf.LogFormat.FULL, log_prefix=True)
    logging.getLogger().setLevel(launch.level)
    # Client libraries at debug level would log request details; keep them quiet.
    for noisy in ("httpx", "httpcore", "kubernetes", "urllib3"):
        logging.getLogger(noisy).setLevel(max(launch.level, logging.WARNING))
    _log.info("watching %s; API credentials from Secret %s; resync every %ss; %s",
              "all namespaces" if config.clusterwide else ", ".join(config.namespaces), config.secret,
              config.resync_interval,
              f"peering {launch.peering!r} with priority {launch.priority}" if launch.peering else "standalone")
    _log.info("%s; %s", describe(config.scope),
              f"admission webhook on {webhook.listen}:{webhook.port}" if webhook else "no admission webhook")
    runtime = Runtime(config)  # its session: policy files are read and compiled here, once
    if launch.metrics is not None:
        host, port = launch.metrics
        try:
            serve(runtime.metrics, port=port, host=host)
        except OSError as exc:
            raise UsageError(f"cannot serve metrics on {host}:{port}: {exc.strerror} (is the port taken? choose "
                             "another --metrics-port)") from None
    asyncio.run(kopf.operator(
        registry=build_registry(config, runtime),
        clusterwide=config.clusterwide,
        namespaces=config.namespaces,
        standalone=not launch.peering,
        peering_name=launch.peering,
        priority=launch.priority,
        liveness_endpoint=launch.liveness,
    ))
