"""``reconciler crd`` and ``reconciler operator``: flags in, generator or kopf out.

The operator's checks of its flags, its configuration and how kopf is started live in
:mod:`reconciler.operator.start`; this module only parses the flags.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.console import exit_codes
from reconciler.errors import UsageError

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
        with exit_codes():
            try:
                output.write_text(text, encoding="utf-8")
            except OSError as exc:
                raise UsageError(f"cannot write {output}: {exc.strerror} (check that the directory exists and is "
                                 "writable)") from None

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
        from reconciler.operator import start

        flags = start.Flags(
            secret=secret, namespace=tuple(namespace or ()), all_namespaces=all_namespaces,
            resync_interval=resync_interval, backoff_initial=backoff_initial, backoff_max=backoff_max,
            liveness=liveness, peering=peering, standalone=standalone, priority=priority, allow_http=allow_http,
            log_level=log_level, metrics_port=metrics_port, metrics_host=metrics_host, live_cache=live_cache,
            scope_prefix=scope_prefix, scope_name=tuple(scope_name or ()), webhook_port=webhook_port,
            webhook_listen=webhook_listen, webhook_cert_dir=webhook_cert_dir,
            webhook_configuration=webhook_configuration, webhook_host=webhook_host, policy=tuple(policy or ()),
            policy_target=policy_target, project_config=project_config, target=target)
        with exit_codes():
            start.run(start.prepare(flags))
