"""Admission checks and ownership on a real kube-apiserver: the operator's validating webhook (kopf
serves it on 127.0.0.1 with a self-signed certificate and registers a ValidatingWebhookConfiguration
that the API server calls), and the operator's own ownership scope next to a CLI project's."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from operator_harness import RESYNC, TOKEN, Cluster, Namespace, Service, kubernetes, manifest, wait_for

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def webhook_configurations(cluster: Cluster) -> Iterator[list[str]]:
    """Names of the webhook configurations a test's operators register (kopf makes a validating and an
    empty mutating one); deleted at teardown, so that a killed operator never leaves a failing
    webhook behind for the next test."""
    names: list[str] = []
    yield names
    api = kubernetes.client.AdmissionregistrationV1Api(cluster.api)
    for name in names:
        for delete in (api.delete_validating_webhook_configuration, api.delete_mutating_webhook_configuration):
            try:
                delete(name)
            except kubernetes.client.ApiException as exc:
                if exc.status != 404:
                    raise


def _start_with_webhook(ns: Namespace, start_operator: Any, names: list[str], *extra: str) -> tuple[Any, str]:
    config = f"admission-{ns.name}.reconciler.io"
    names.append(config)
    op = start_operator(ns, "--webhook-port", str(_free_port()), "--webhook-listen", "127.0.0.1",
                        "--webhook-configuration", config, *extra)
    return op, config


def _wait_registered(cluster: Cluster, config: str) -> dict[str, Any]:
    api = kubernetes.client.AdmissionregistrationV1Api(cluster.api)

    def registered() -> Any:
        try:
            found = api.read_validating_webhook_configuration(config)
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        hooks = found.webhooks or []
        return hooks and hooks[0].client_config.ca_bundle and found

    found = wait_for(registered, timeout=60, what=f"ValidatingWebhookConfiguration {config} with a CA bundle")
    return dict(found.to_dict())


def _kubectl(cluster: Cluster, ns: Namespace, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", "--kubeconfig", str(cluster.kubeconfig), "-n", ns.name, *args],
                          input=stdin, capture_output=True, text=True, timeout=60, check=False)


def _denied_until_ready(create: Callable[[], Any]) -> kubernetes.client.ApiException:
    """The API server picks up a new webhook configuration within a moment: until it does, a create
    may pass without the webhook (then it is removed and tried again)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            created = create()
        except kubernetes.client.ApiException as exc:
            return exc
        assert time.monotonic() < deadline, "the webhook never refused the invalid resource"
        created.cleanup()
        time.sleep(0.5)


def test_kubectl_apply_of_an_invalid_resource_is_refused_with_the_clis_messages(
        cluster: Cluster, namespace: Namespace, service: Service, start_operator: Any,
        webhook_configurations: list[str], tmp_path: Path) -> None:
    op, config = _start_with_webhook(namespace, start_operator, webhook_configurations)
    registered = _wait_registered(cluster, config)
    (hook,) = registered["webhooks"]
    assert hook["client_config"]["url"].startswith("https://127.0.0.1:") and hook["failure_policy"] == "Fail"
    assert hook["rules"][0]["resources"] == ["batchpredictionjobdefinitions"]

    name = f"{namespace.name}-bad"
    bad = manifest(name, schedule={"cron": "0 2 30 2 *"})
    bad["spec"]["batchPredictionJob"]["num_concurrent"] = 4
    del bad["spec"]["batchPredictionJob"]["numConcurrent"]

    class Created:
        def cleanup(self) -> None:
            namespace.cluster.custom.patch_namespaced_custom_object(
                "reconciler.io", "v1alpha1", namespace.name, "batchpredictionjobdefinitions", name,
                {"metadata": {"finalizers": None}})
            namespace.delete(name)
            wait_for(lambda: namespace.get(name) is None, what="the early resource gone")

    def create() -> Created:
        namespace.apply(bad)
        return Created()

    refused = _denied_until_ready(create)
    assert refused.status == 422, refused.body
    assert namespace.get(name) is None

    # What `reconciler validate` says about the same manifest, as a file.
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad, sort_keys=False), encoding="utf-8")
    cli = subprocess.run([sys.executable, "-c", "from reconciler.cli import main; main()", "validate", str(path)],
                         capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path)
    assert cli.returncode == 3
    # "FILE:LINE:COL: FIELD: MESSAGE" and "    hint: HINT" lines; kubectl shows FIELD: MESSAGE (HINT)
    cli_lines = [line.split(": ", 1)[1] for line in cli.stdout.splitlines() if line.startswith(str(path))]
    cli_lines += [line.split("hint: ", 1)[1] for line in cli.stdout.splitlines() if line.startswith("    hint: ")]
    assert len(cli_lines) == 4, cli.stdout
    # kubectl shows the webhook's refusal, with each of the CLI's messages (field, text, hint).
    shown = _kubectl(cluster, namespace, "apply", "-f", str(path))
    assert shown.returncode != 0
    assert f'admission webhook "validate.{config}" denied the request' in shown.stderr, shown.stderr
    for line in cli_lines:
        assert line in shown.stderr, (line, shown.stderr)
    assert "did you mean `numConcurrent`?" in shown.stderr
    assert "day(s) 30 never occur in Feb" in shown.stderr
    assert "[WARNING ] [" in op.text() and "Webhook 'validate' failed permanently" in op.text()
    assert not [line for line in op.text().splitlines() if "ERROR" in line and "Webhook 'validate'" in line]

    # A valid resource passes, and the operator's own writes to it (finalizer, annotations) pass too.
    good = f"{namespace.name}-good"
    namespace.apply(manifest(good))
    wait_for(lambda: (c := namespace.condition(good, "Ready")) and c["status"] == "True", what="Ready=True")
    # Editing it into an invalid spec is refused as well; the stored spec is unchanged.
    with pytest.raises(kubernetes.client.ApiException) as caught:
        namespace.patch_spec(good, {"schedule": {"cron": "*/7 * * 13 *"}})
    assert caught.value.status == 422 and "spec.schedule.cron" in caught.value.body
    assert (namespace.get(good) or {})["spec"]["schedule"] == {"cron": "0 2 * * *"}
    # Deleting goes through (the finalizer's removal is an update the webhook lets pass).
    namespace.delete(good)
    wait_for(lambda: namespace.get(good) is None, what="the valid resource deleted")
    assert service.find(good) == []

    # The operator removes its webhook on a clean exit, so nothing is refused while it is down.
    op.stop()
    api = kubernetes.client.AdmissionregistrationV1Api(cluster.api)
    assert not (api.read_validating_webhook_configuration(config).webhooks or [])
    assert TOKEN not in op.text()


def test_operator_scope_reports_a_cli_projects_definition_as_conflict(
        cluster: Cluster, namespace: Namespace, service: Service, start_operator: Any,
        webhook_configurations: list[str], tmp_path: Path) -> None:
    # A CLI project owns <ns>-cli-*; it applies one definition.
    project = tmp_path / "project"
    (project / "specs").mkdir(parents=True)
    cli_prefix, k8s_prefix = f"{namespace.name}-cli-", f"{namespace.name}-k8s-"
    (project / "reconciler.yaml").write_text(yaml.safe_dump({
        "apiVersion": "reconciler.io/v1alpha1", "kind": "Project", "scope": {"namePrefix": cli_prefix}}),
        encoding="utf-8")
    shared = f"{cli_prefix}nightly"
    (project / "specs" / "nightly.yaml").write_text(yaml.safe_dump(manifest(shared), sort_keys=False),
                                                    encoding="utf-8")
    (project / "token").write_text(TOKEN, encoding="utf-8")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DATAROBOT_")}
        return subprocess.run([sys.executable, "-c", "from reconciler.cli import main; main()", *args,
                               "--endpoint", service.api_url, "--token-file", "token"],
                              capture_output=True, text=True, timeout=120, check=False, cwd=project, env=env)

    applied = cli("apply", "--path", "specs", "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    (live,) = service.find(shared)

    # The operator owns <ns>-k8s-*: a resource naming the CLI's definition is a Conflict, not adopted.
    op, config = _start_with_webhook(namespace, start_operator, webhook_configurations, "--scope-prefix", k8s_prefix)
    _wait_registered(cluster, config)
    stolen = manifest(shared)
    stolen["spec"]["batchPredictionJob"]["numConcurrent"] = 2
    # kubectl warns at once (admission) ...
    warned = wait_for(lambda: (r := _kubectl(cluster, namespace, "apply", "-f", "-", stdin=yaml.safe_dump(stolen)))
                      and "Warning:" in r.stderr and r, timeout=30, what="kubectl's admission warning")
    assert warned.returncode == 0 and "outside this operator's ownership scope" in warned.stderr
    # ... and status says Conflict: a Conflict condition, Ready=False, a Warning Event, no definition id.
    conflict = wait_for(lambda: namespace.condition(shared, "Conflict"), what="a Conflict condition")
    assert conflict["status"] == "True" and conflict["reason"] == "Conflict"
    assert repr(shared) in conflict["message"] and repr(k8s_prefix) in conflict["message"]
    ready = namespace.condition(shared, "Ready") or {}
    assert ready["status"] == "False" and ready["reason"] == "Conflict"
    assert "definitionId" not in ((namespace.get(shared) or {}).get("status") or {})
    wait_for(lambda: any(e.reason == "Conflict" and e.type == "Warning" for e in namespace.events(shared)),
             what="a Conflict event")
    # Several resync intervals later the CLI's definition is untouched and the CLI plans no change.
    time.sleep(RESYNC * 2)
    assert service.get(live["id"])["batchPredictionJob"]["numConcurrent"] == 4  # type: ignore[index]
    assert service.get(live["id"])["updated"] == live["updated"]  # type: ignore[index]

    # A resource in the operator's scope is created as usual; the CLI lists it as unmanaged and
    # never deletes it, even with --prune.
    own = f"{k8s_prefix}hourly"
    namespace.apply(manifest(own))
    wait_for(lambda: (c := namespace.condition(own, "Ready")) and c["status"] == "True", what="Ready=True")
    assert namespace.condition(own, "Conflict") is None
    planned = cli("plan", "specs", "--prune", "--detailed-exitcode")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert len(service.find(own)) == 1

    # Deleting the conflicting resource leaves the CLI's definition in place.
    namespace.delete(shared)
    wait_for(lambda: namespace.get(shared) is None, what="the conflicting resource gone")
    assert service.get(live["id"]) is not None
    op.stop()
    assert TOKEN not in op.text()

