"""The operator end to end: a real kube-apiserver, the local service over HTTP, and
``reconciler operator`` as a child process. Each test has its own namespace and operator(s)."""

from __future__ import annotations

import base64
import copy
import itertools
from pathlib import Path
from typing import Any

import pytest
from operator_harness import (
    RESYNC,
    TOKEN,
    Cluster,
    Namespace,
    Service,
    kubernetes,
    load_yaml,
    manifest,
    wait_for,
)

from reconciler.operator import crd

REPO = Path(__file__).resolve().parents[2]


def ready(ns: Namespace, name: str) -> dict[str, Any] | None:
    cond = ns.condition(name, "Ready")
    return cond if cond and cond["status"] == "True" else None


def reasons(ns: Namespace, name: str) -> list[str]:
    return [e.reason for e in ns.events(name)]


def assert_no_token(ns: Namespace, *logs: str) -> None:
    """The token is in the Secret only: never in a resource, its status, an Event or a log line."""
    for obj in ns.cluster.custom.list_namespaced_custom_object(crd.GROUP, crd.VERSION, ns.name, crd.PLURAL)["items"]:
        assert TOKEN not in repr(obj)
    for event in ns.events():
        assert TOKEN not in f"{event.reason} {event.message}"
    encoded = base64.b64encode(TOKEN.encode()).decode()  # as the Secret's data holds it
    for text in logs:
        assert TOKEN not in text and encoded not in text


def test_example_manifests_are_accepted_as_custom_resources(cluster: Cluster, namespace: Namespace) -> None:
    """The generated schema is structural and admits every example in specs/ (no operator running)."""
    examples = sorted((REPO / "specs").glob("*.yaml"))
    count = 0
    for path in examples:
        for doc in load_yaml(path):
            if doc.get("kind") != crd.KIND:
                continue
            created = namespace.apply(doc)
            assert created["spec"] == doc["spec"], f"{path.name}: the API server pruned or changed the spec"
            count += 1
    assert count >= 5
    wrong = manifest("wrong-type")
    wrong["spec"]["batchPredictionJob"]["numConcurrent"] = "four"
    with pytest.raises(kubernetes.client.ApiException) as caught:
        namespace.apply(wrong)
    assert caught.value.status == 422 and "numConcurrent" in caught.value.body


def test_create_update_drift_and_delete(namespace: Namespace, service: Service, start_operator: Any) -> None:
    op = start_operator(namespace)
    name = f"{namespace.name}-a"
    namespace.apply(manifest(name))

    status = wait_for(lambda: ready(namespace, name), timeout=30, what="Ready=True after create")
    (live,) = wait_for(lambda: service.find(name), what="the definition in the service")
    obj = namespace.get(name)
    assert obj is not None
    assert obj["status"]["definitionId"] == live["id"]
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    assert obj["status"]["lastSyncTime"] and obj["status"]["nextScheduledRunTime"]
    assert status["reason"] == "Reconciled"
    assert live["batchPredictionJob"]["numConcurrent"] == 4 and live["enabled"] is True
    assert "reconciler.io/finalizer" in obj["metadata"]["finalizers"]
    wait_for(lambda: "Created" in reasons(namespace, name), what="a Created event")

    # Edit the spec: a PATCH of the same definition follows.
    spec = copy.deepcopy(obj["spec"])
    spec["batchPredictionJob"]["numConcurrent"] = 2
    namespace.patch_spec(name, spec)
    wait_for(lambda: (service.get(live["id"]) or {}).get("batchPredictionJob", {}).get("numConcurrent") == 2,
             what="numConcurrent 2 in the live definition")
    wait_for(lambda: "Updated" in reasons(namespace, name), what="an Updated event")
    assert len(service.find(name)) == 1

    # Drift behind the operator's back is corrected within the resync interval.
    service.patch(live["id"], {"numConcurrent": 7, "enabled": False})
    wait_for(lambda: (service.get(live["id"]) or {}).get("enabled") is True
             and service.get(live["id"])["batchPredictionJob"]["numConcurrent"] == 2,  # type: ignore[index]
             timeout=RESYNC * 4 + 5, what="drift corrected")
    wait_for(lambda: "DriftCorrected" in reasons(namespace, name), what="a DriftCorrected event")

    # Delete (deletionPolicy defaults to Delete): the finalizer deletes the live definition.
    namespace.delete(name)
    wait_for(lambda: namespace.get(name) is None, what="the resource gone (finalizer released)")
    assert service.get(live["id"]) is None
    assert "Deleted" in reasons(namespace, name)
    op.stop()
    assert_no_token(namespace, op.text())


def test_orphan_and_report_only_drift(namespace: Namespace, service: Service, start_operator: Any) -> None:
    op = start_operator(namespace)
    name = f"{namespace.name}-keep"
    namespace.apply(manifest(name, deletionPolicy="Orphan", driftPolicy="Report"))
    wait_for(lambda: ready(namespace, name), what="Ready=True")
    (live,) = service.find(name)

    service.patch(live["id"], {"numConcurrent": 9})
    synced = wait_for(lambda: (c := namespace.condition(name, "Synced")) and c["status"] == "False" and c,
                      timeout=RESYNC * 4 + 5, what="Synced=False reporting the drift")
    assert synced["reason"] == "Drifted"
    assert "batchPredictionJob.numConcurrent" in synced["message"]
    assert (namespace.get(name) or {})["status"]["drift"] == ["batchPredictionJob.numConcurrent"]
    assert "Drifted" in reasons(namespace, name)
    # Reported, not corrected, across several resync intervals.
    import time

    time.sleep(RESYNC * 2)
    assert service.get(live["id"])["batchPredictionJob"]["numConcurrent"] == 9  # type: ignore[index]

    namespace.delete(name)
    wait_for(lambda: namespace.get(name) is None, what="the resource gone")
    assert service.get(live["id"]) is not None, "deletionPolicy: Orphan must leave the definition in place"
    assert "Orphaned" in reasons(namespace, name)
    op.stop()
    assert_no_token(namespace, op.text())


def test_invalid_spec_is_reported_and_the_loop_goes_on(namespace: Namespace, service: Service,
                                                       start_operator: Any) -> None:
    op = start_operator(namespace)
    bad = f"{namespace.name}-bad"
    # Passes the CRD (types are right; unknown keys are kept) but not the JSON Schemas.
    body = manifest(bad, schedule=None)
    body["spec"]["batchPredictionJob"]["numConcurent"] = 3
    namespace.apply(body)
    cond = wait_for(lambda: (c := namespace.condition(bad, "Ready")) and c["reason"] == "Invalid" and c,
                    what="Ready=False reason Invalid")
    assert cond["status"] == "False"
    assert "enabled: true needs a schedule" in cond["message"]
    assert "numConcurent" in cond["message"] and "numConcurrent" in cond["message"]  # the did-you-mean hint
    assert service.find(bad) == []
    assert "Invalid" in reasons(namespace, bad)

    # The operator keeps serving other resources, and the fixed spec converges.
    good = f"{namespace.name}-good"
    namespace.apply(manifest(good))
    wait_for(lambda: ready(namespace, good), what="another resource Ready")
    fixed = manifest(bad)["spec"]
    namespace.patch_spec(bad, {"schedule": fixed["schedule"], "batchPredictionJob": {"numConcurent": None}})
    wait_for(lambda: ready(namespace, bad), what="the fixed resource Ready")
    assert len(service.find(bad)) == 1
    op.stop()
    assert_no_token(namespace, op.text())


def test_adoption_restart_and_api_errors(namespace: Namespace, service: Service, start_operator: Any) -> None:
    name = f"{namespace.name}-adopt"
    existing = service.create({"name": name, "enabled": False, "deploymentId": "64b0c0ffee000000000d0001",
                               "intakeSettings": {"type": "s3", "url": "s3://bucket/old.csv"}})
    # A wrong token first: Ready=False with the API's error, retried with backoff; the token never shows.
    namespace.set_secret(endpoint=service.api_url, token="wrong-" + TOKEN[::-1])
    op = start_operator(namespace)
    namespace.apply(manifest(name))
    cond = wait_for(lambda: (c := namespace.condition(name, "Ready")) and c["reason"] == "ApiError" and c,
                    what="Ready=False reason ApiError")
    assert "401" in cond["message"]
    assert "ApiError" in reasons(namespace, name)
    # Exponential backoff (--backoff-initial 0.5, --backoff-max 2): the announced delays double up to the
    # cap, and kopf really waits that long between attempts.
    attempts = wait_for(lambda: (found := _retries(op.text(), name)) and len(found) >= 4 and found,
                        timeout=30, what="four failed attempts in the log")
    assert [delay for _, delay in attempts[:4]] == [0.5, 1.0, 2.0, 2.0]
    for (before, delay), (after, _) in itertools.pairwise(attempts[:4]):
        assert after - before >= delay - 0.05, (before, delay, after)

    namespace.set_secret(endpoint=service.api_url, token=TOKEN)
    wait_for(lambda: ready(namespace, name), timeout=30, what="Ready once the Secret is fixed")
    obj = namespace.get(name) or {}
    assert obj["status"]["definitionId"] == existing["id"], "the existing definition must be adopted"
    assert "Adopted" in reasons(namespace, name)
    (live,) = service.find(name)
    assert live["batchPredictionJob"]["intakeSettings"]["url"] == "s3://bucket/in.csv"

    # A restart resumes the resource: no second definition, no write needed.
    op.stop()
    op2 = start_operator(namespace)
    wait_for(lambda: "Resuming is processed: 1 succeeded" in op2.text(),
             timeout=30, what="the restarted operator resuming the resource")
    wait_for(lambda: ready(namespace, name), what="still Ready after restart")
    assert [d["id"] for d in service.find(name)] == [existing["id"]]
    op2.stop()
    assert_no_token(namespace, op.text(), op2.text())
    assert ("wrong-" + TOKEN[::-1]) not in op.text()


def _retries(log: str, name: str) -> list[tuple[float, float]]:
    """(time, announced delay) of each failed attempt for resource ``name`` in an operator log."""
    import re
    from datetime import datetime

    out = []
    for match in re.finditer(r"^\[([0-9-]+ [0-9:,]+)\] .*\[[^/\]]+/" + re.escape(name)
                             + r"\] .*\(retry \d+ in ([0-9.]+)s\)$", log, re.MULTILINE):
        when = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        out.append((when, float(match.group(2))))
    return out


def test_two_operators_only_one_acts(namespace: Namespace, service: Service, start_operator: Any) -> None:
    namespace.cluster.custom.create_namespaced_custom_object(
        "kopf.dev", "v1", namespace.name, "kopfpeerings", {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering",
                                                           "metadata": {"name": "reconciler"}})
    # Peered operators start paused and resume once they see no higher priority. (Started at the very
    # same moment, both may act for the first keep-alive round; hence one after the other here.)
    high = start_operator(namespace, "--peering", "reconciler", "--priority", "200", name="high")
    wait_for(lambda: "Resuming operations" in high.text(), timeout=30, what="the first replica active")
    low = start_operator(namespace, "--peering", "reconciler", "--priority", "100", name="low")
    wait_for(lambda: "Initial authentication has finished" in low.text(), timeout=30, what="the second replica up")

    def peers() -> int:
        peering = namespace.cluster.custom.get_namespaced_custom_object(
            "kopf.dev", "v1", namespace.name, "kopfpeerings", "reconciler")
        return len(peering.get("status") or {})

    wait_for(lambda: peers() == 2, timeout=30, what="both replicas keeping alive in the peering object")

    first = f"{namespace.name}-one"
    namespace.apply(manifest(first))
    wait_for(lambda: ready(namespace, first), what="Ready via the active replica")
    assert len(service.find(first)) == 1
    assert "created definition" in high.text()
    assert "created definition" not in low.text()
    assert "Resuming operations" not in low.text()

    # The active one leaves: the standby takes over.
    high.stop()
    wait_for(lambda: "Resuming operations" in low.text(), timeout=30, what="the standby resuming")
    second = f"{namespace.name}-two"
    namespace.apply(manifest(second))
    wait_for(lambda: ready(namespace, second), what="Ready via the standby")
    assert "created definition" in low.text()
    assert len(service.find(first)) == 1 and len(service.find(second)) == 1
    low.stop()
    assert_no_token(namespace, high.text(), low.text())


def test_the_charts_rbac_is_enough(cluster: Cluster, namespace: Namespace, service: Service, start_operator: Any,
                                   tmp_path: Path) -> None:
    """The operator runs as the chart's ServiceAccount with only the chart's Roles (a real token from the
    TokenRequest API, RBAC enforced by the apiserver): create, status, events, Secret, peering, finalizer."""
    helm = pytest.importorskip("helm_python", reason="pip install helm-python-sdk")
    import yaml

    release = "r" + namespace.name[-8:]  # cluster-scoped names must not clash between test runs
    with helm.Chart.load(str(REPO / "charts" / "reconciler")) as chart:
        files = chart.render({"crd": {"install": False}, "operator": {"peering": {"installCRDs": False}}},
                             name=release, namespace=namespace.name, is_install=True)
    docs = [d for text in files.values() for d in yaml.safe_load_all(text) if d]
    wanted = {"ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "KopfPeering"}
    assert {d["kind"] for d in docs} >= wanted
    for doc in docs:
        if doc["kind"] == "KopfPeering":
            cluster.custom.create_namespaced_custom_object("kopf.dev", "v1", namespace.name, "kopfpeerings", doc)
        elif doc["kind"] in wanted:
            kubernetes.utils.create_from_dict(cluster.api, doc)
    token = cluster.core.create_namespaced_service_account_token(
        f"{release}-reconciler", namespace.name, {"spec": {"expirationSeconds": 3600}}).status.token
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    for user in config["users"]:
        user["user"] = {"token": token}
    kubeconfig = tmp_path / "sa-kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))

    op = start_operator(namespace, "--peering", "reconciler", kubeconfig=kubeconfig)
    name = f"{namespace.name}-rbac"
    namespace.apply(manifest(name))
    wait_for(lambda: ready(namespace, name), timeout=30, what="Ready with the chart's RBAC only")
    assert "Created" in reasons(namespace, name)
    (live,) = service.find(name)
    namespace.delete(name)
    wait_for(lambda: namespace.get(name) is None, what="the finalizer released with the chart's RBAC only")
    assert service.get(live["id"]) is None
    op.stop()
    text = op.text()
    assert "Forbidden" not in text, text[-3000:]  # kopf logs APIForbiddenError for any missing permission


def test_same_name_in_two_namespaces_is_a_conflict_not_a_fight(cluster: Cluster, namespace: Namespace,
                                                                service: Service, start_operator: Any) -> None:
    """Definition names are global in the API, resource names per namespace: the second resource with
    the same name must not adopt the first one's definition (they would overwrite each other at every
    resync, and deleting either would delete it). It reports Conflict, and takes over once it is free."""
    import time

    other = Namespace(name=namespace.name + "-b", cluster=cluster)
    cluster.core.create_namespace({"metadata": {"name": other.name}})
    op = start_operator(namespace, "--namespace", other.name)
    name = f"{namespace.name}-same"
    namespace.apply(manifest(name))
    wait_for(lambda: ready(namespace, name), what="the first resource Ready")
    (live,) = service.find(name)

    second = manifest(name)
    second["spec"]["batchPredictionJob"]["numConcurrent"] = 8
    other.apply(second)
    cond = wait_for(lambda: (c := other.condition(name, "Ready")) and c["reason"] == "Conflict" and c,
                    what="Ready=False reason Conflict on the second resource")
    assert cond["status"] == "False"
    assert f"{namespace.name}/{name}" in cond["message"] and live["id"] in cond["message"]
    assert "definitionId" not in ((other.get(name) or {}).get("status") or {})
    assert "Conflict" in reasons(other, name)
    time.sleep(RESYNC * 3)  # several resyncs: nobody overwrites the first resource's definition
    assert [d["id"] for d in service.find(name)] == [live["id"]]
    assert service.get(live["id"])["batchPredictionJob"]["numConcurrent"] == 4  # type: ignore[index]
    assert ready(namespace, name) and "DriftCorrected" not in reasons(namespace, name)

    # The owner goes (deletionPolicy Delete): the definition is deleted and the other resource, retried
    # with backoff, creates its own.
    namespace.delete(name)
    wait_for(lambda: namespace.get(name) is None, what="the first resource gone")
    status = wait_for(lambda: ready(other, name), timeout=30, what="the second resource Ready once the name is free")
    assert status["reason"] == "Reconciled"
    (mine,) = service.find(name)
    assert mine["id"] != live["id"] and mine["batchPredictionJob"]["numConcurrent"] == 8
    assert (other.get(name) or {})["status"]["definitionId"] == mine["id"]
    op.stop()
    assert_no_token(namespace, op.text())
    assert_no_token(other)


def test_metrics_count_reconciles_errors_and_drift_corrections(namespace: Namespace, service: Service,
                                                               start_operator: Any) -> None:
    """``--metrics-port``: scraped over HTTP from the running operator process."""
    import socket

    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    op = start_operator(namespace, "--metrics-port", str(port))

    def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        except httpx.TransportError:
            return {}
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    def value(name: str, **labels: str) -> float:
        return scrape().get((name, tuple(sorted(labels.items()))), 0.0)

    name = f"{namespace.name}-m"
    namespace.apply(manifest(name))
    wait_for(lambda: ready(namespace, name), what="Ready=True after create")
    wait_for(lambda: value("reconciler_operator_reconciles_total", mode="apply", result="Created") == 1,
             what="one Created reconcile counted")
    (live,) = service.find(name)
    service.patch(live["id"], {"enabled": False})
    wait_for(lambda: value("reconciler_operator_drift_corrections_total") == 1, timeout=RESYNC * 4 + 5,
             what="one drift correction counted")
    assert value("reconciler_operator_reconciles_total", mode="resync", result="DriftCorrected") == 1
    assert (service.get(live["id"]) or {}).get("enabled") is True

    bad = manifest(f"{namespace.name}-bad", schedule=None)  # enabled without a schedule: Invalid
    namespace.apply(bad)
    wait_for(lambda: value("reconciler_operator_reconcile_errors_total", result="Invalid") >= 1,
             what="the invalid spec counted as an error")
    samples = scrape()
    assert samples[("reconciler_operator_reconcile_duration_seconds_count", (("mode", "apply"),))] >= 2
    assert samples[("reconciler_operator_reconcile_duration_seconds_count", (("mode", "resync"),))] >= 1
    assert value("reconciler_operator_reconcile_errors_total", result="Created") == 0
    op.stop()
    assert_no_token(namespace, op.text())
