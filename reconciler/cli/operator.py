"""``reconciler crd`` and ``reconciler operator``: flags in, generator or kopf out.

Why the operator is started through ``kopf.operator()`` and not ``kopf run``: the handlers are
built from the parsed flags (:func:`handlers.build_registry`), and the API credentials come only
from ``--secret NAMESPACE/NAME``, so nothing about the API is ever on a command line.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from reconciler.specs.controls import Controls

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("crd")
    def crd_command(
        chart: Annotated[bool, typer.Option("--chart", help="The Helm template form the chart carries.")] = False,
        peering: Annotated[bool, typer.Option("--peering", help="Add kopf's peering CRDs (for two replicas).")] = False,
        output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to a file instead of stdout.")] = None,
    ) -> None:
        """Print the BatchPredictionJobDefinition CRD, generated from the JSON Schemas.

        `reconciler crd --peering | kubectl apply -f -` installs it with kopf's peering CRDs.
        """
        from reconciler.operator import crd

        text = crd.chart_template() if chart else crd.crd_yaml(peering=peering)
        if output is None:
            sys.stdout.write(text)
            return
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            typer.echo(f"error: cannot write {output}: {exc.strerror} (check that the directory exists "
                       "and is writable)", err=True)
            raise typer.Exit(1) from None

    @app.command("operator")
    def operator_command(
        secret: Annotated[str, typer.Option("--secret", envvar="RECONCILER_SECRET",
                                            help="NAMESPACE/NAME of the Secret with keys 'endpoint' and 'token'.")],
        namespace: Annotated[list[str] | None, typer.Option("--namespace", "-n",
                                                            help="Namespace to watch (repeatable).")] = None,
        all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A", help="Watch every namespace.")] = False,
        resync_interval: Annotated[float, typer.Option(help="Seconds between drift checks of each definition.",
                                                       min=0.1)] = 300.0,
        backoff_initial: Annotated[float, typer.Option(help="First retry delay after an API error (doubles).",
                                                       min=0.0)] = 2.0,
        backoff_max: Annotated[float, typer.Option(help="Longest retry delay after API errors.", min=0.0)] = 300.0,
        liveness: Annotated[str | None, typer.Option(help="Serve kopf's health probe, e.g. "
                                                          "http://0.0.0.0:8080/healthz.")] = None,
        peering: Annotated[str | None, typer.Option(help="kopf peering object name: of several replicas, only "
                                                         "the highest priority acts (needs the peering CRDs).")] = None,
        standalone: Annotated[bool, typer.Option(help="No peering (a single replica).")] = False,
        priority: Annotated[int | None, typer.Option(help="Peering priority; random by default, so that of "
                                                          "two replicas exactly one acts.")] = None,
        allow_http: Annotated[bool, typer.Option("--allow-http", help="Accept a plain-http endpoint that is "
                                                                      "not loopback (in-cluster local service).")] = False,
        log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
        metrics_port: Annotated[int | None, typer.Option(help="Serve Prometheus metrics (reconciles, errors, drift "
                                                         "corrections, duration) on this port.", min=1,
                                                         max=65535)] = None,
        metrics_host: Annotated[str, typer.Option(help="Address for --metrics-port (0.0.0.0 in a pod).")] = "127.0.0.1",
        live_cache: Annotated[bool, typer.Option("--live-cache/--no-live-cache", help="Diff every resource against "
                                                 "one paginated list of the live definitions per resync interval "
                                                 "(default); off: one API lookup per resource per resync.")] = True,
        scope_prefix: Annotated[str | None, typer.Option(help="Ownership scope: only definitions named with this "
                                                         "prefix are created, adopted, changed or deleted; a resource "
                                                         "naming another is reported as Conflict.")] = None,
        scope_name: Annotated[list[str] | None, typer.Option(help="Ownership scope: an exact definition name "
                                                             "(repeatable; with or without --scope-prefix).")] = None,
        webhook_port: Annotated[int | None, typer.Option(help="Serve the validating admission webhook (HTTPS) on "
                                                         "this port: invalid resources are refused at kubectl apply.",
                                                         min=1, max=65535)] = None,
        webhook_listen: Annotated[str, typer.Option(help="Address for --webhook-port.")] = "0.0.0.0",
        webhook_cert_dir: Annotated[Path | None, typer.Option(help="Directory with tls.crt and tls.key (and "
                                                              "ca.crt) for the webhook; self-signed when not "
                                                              "given.")] = None,
        webhook_configuration: Annotated[str | None, typer.Option(help="Create and keep this "
                                                                  "ValidatingWebhookConfiguration pointed at "
                                                                  "this process (not with the chart, which "
                                                                  "installs its own).")] = None,
        webhook_host: Annotated[str | None, typer.Option(help="Host or address the API server dials for "
                                                         "--webhook-configuration (default: --webhook-listen, "
                                                         "0.0.0.0 meaning 127.0.0.1).")] = None,
        policy: Annotated[list[Path] | None, typer.Option("--policy", help="A policy file (kind: Policy) whose rules "
                                                          "every resource must pass; repeatable.")] = None,
        policy_target: Annotated[str | None, typer.Option(help="The target name policy rules see (rules with "
                                                          "targets: run only for theirs).")] = None,
        project_config: Annotated[Path | None, typer.Option(help="A reconciler.yaml whose ignoreChanges rules and "
                                                            "syncWindows the operator honours (see Controls).")] = None,
        target: Annotated[str | None, typer.Option(help="With --project-config: also that target's rules and "
                                                        "windows.")] = None,
    ) -> None:
        """Run the Kubernetes operator: reconcile BatchPredictionJobDefinition resources against the API."""
        from reconciler.extras import require

        require("operator", "reconciler operator")
        import kopf

        from reconciler.errors import ReconcilerError
        from reconciler.notify.send import channels_from_env
        from reconciler.operator.config import OperatorConfig, SecretRef, Webhook
        from reconciler.operator.handlers import Runtime, build_registry
        from reconciler.operator.metrics import serve
        from reconciler.operator.ownership import describe
        from reconciler.specs.scope import Scope

        try:
            ref = SecretRef.parse(secret)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        if not namespace and not all_namespaces:
            typer.echo("error: give --namespace NS (repeatable) or --all-namespaces", err=True)
            raise typer.Exit(1)
        if peering and standalone:
            typer.echo("error: --peering and --standalone exclude each other", err=True)
            raise typer.Exit(1)
        level = getattr(logging, log_level.upper(), None)
        if not isinstance(level, int):
            typer.echo(f"error: unknown --log-level {log_level!r}", err=True)
            raise typer.Exit(1)
        problem = _kubernetes_config_problem()
        if problem:
            typer.echo(f"error: {problem}", err=True)
            raise typer.Exit(1)
        controls = _controls(project_config, target)
        if webhook_port is None and (webhook_cert_dir or webhook_configuration or webhook_host):
            typer.echo("error: the --webhook-* options need --webhook-port", err=True)
            raise typer.Exit(1)
        if webhook_cert_dir is not None and not all((webhook_cert_dir / f).is_file() for f in ("tls.crt", "tls.key")):
            typer.echo(f"error: --webhook-cert-dir {webhook_cert_dir} must hold tls.crt and tls.key (a mounted "
                       "kubernetes.io/tls Secret)", err=True)
            raise typer.Exit(1)
        scope = Scope(name_prefix=scope_prefix, names=frozenset(scope_name or ())) \
            if scope_prefix or scope_name else None
        webhook = Webhook(port=webhook_port, listen=webhook_listen, host=webhook_host, cert_dir=webhook_cert_dir,
                          managed=webhook_configuration) if webhook_port is not None else None
        config = OperatorConfig(secret=ref, namespaces=tuple(namespace or ()), clusterwide=all_namespaces,
                                resync_interval=resync_interval, backoff_initial=backoff_initial,
                                backoff_max=backoff_max, allow_http=allow_http, scope=scope, webhook=webhook,
                                notify=channels_from_env(os.environ, events=frozenset({"drift.found"})),
                                policy_files=tuple(str(p) for p in policy or ()), policy_target=policy_target,
                                controls=controls, live_cache=live_cache)
        # kopf's formatter prefixes each per-object line with [namespace/name].
        kopf.configure(log_format=kopf.LogFormat.FULL, log_prefix=True)
        logging.getLogger().setLevel(level)
        # Client libraries at debug level would log request details; keep them quiet.
        for noisy in ("httpx", "httpcore", "kubernetes", "urllib3"):
            logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
        if peering and priority is None:
            priority = random.SystemRandom().randint(1, 2**31 - 1)
        logging.getLogger("reconciler.operator").info(
            "watching %s; API credentials from Secret %s; resync every %ss; %s",
            "all namespaces" if all_namespaces else ", ".join(config.namespaces), ref, resync_interval,
            f"peering {peering!r} with priority {priority}" if peering else "standalone")
        logging.getLogger("reconciler.operator").info(
            "%s; %s", describe(scope),
            f"admission webhook on {webhook_listen}:{webhook_port}" if webhook else "no admission webhook")
        try:
            runtime = Runtime(config)  # policy files are read and compiled here, once
        except ReconcilerError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        if metrics_port is not None:
            try:
                serve(runtime.metrics, port=metrics_port, host=metrics_host)
            except OSError as exc:
                typer.echo(f"error: cannot serve metrics on {metrics_host}:{metrics_port}: {exc.strerror} (is the "
                           "port taken? choose another --metrics-port)", err=True)
                raise typer.Exit(1) from None
        asyncio.run(kopf.operator(
            registry=build_registry(config, runtime),
            clusterwide=all_namespaces,
            namespaces=config.namespaces,
            standalone=not peering,
            peering_name=peering,
            priority=priority,
            liveness_endpoint=liveness,
        ))


def _controls(path: Path | None, target: str | None) -> Controls:
    """The ignore rules and sync windows of ``--project-config`` (and ``--target``); exit 1 with
    the located problems when the file is invalid."""
    from reconciler.errors import ConfigError
    from reconciler.specs.config import load_config
    from reconciler.specs.controls import Controls

    if path is None:
        if target is not None:
            typer.echo("error: --target needs --project-config FILE (the reconciler.yaml that declares it)", err=True)
            raise typer.Exit(1)
        return Controls()
    try:
        config = load_config(path)
        if target is not None:
            config.target(target)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    return config.controls.for_target(target)


def _kubernetes_config_problem() -> str | None:
    """Why neither the in-cluster service account nor a kubeconfig can be loaded, or None.

    Checked before kopf starts: kopf would otherwise log a traceback and retry every minute forever.
    """
    import os

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
