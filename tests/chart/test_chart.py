"""The Helm chart, linted and rendered by Helm's own engine (helm-python-sdk embeds Helm's Go SDK),
and every rendered object checked against the Kubernetes OpenAPI schemas (kubernetes-validate)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

helm = pytest.importorskip("helm_python", reason="pip install helm-python-sdk")
kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate")

from reconciler.operator import crd  # noqa: E402

CHART = Path(__file__).resolve().parents[2] / "charts" / "reconciler"
# kubernetes-validate ships schemas from 1.25 on; the operator targets 1.20+, whose APIs used here
# (apps/v1, rbac/v1, apiextensions/v1, core/v1) did not change shape in between.
K8S_VERSION = "1.25.0"
# not in kubernetes-validate's schemas (CRDs): kopf's and the Prometheus Operator's, checked by the tests below
OUR_KINDS = {("kopf.dev/v1", "KopfPeering"), ("kopf.dev/v1", "ClusterKopfPeering"),
             ("monitoring.coreos.com/v1", "ServiceMonitor")}


def render(values: dict[str, Any] | None = None, *, namespace: str = "ops") -> list[dict[str, Any]]:
    with helm.Chart.load(str(CHART)) as chart:
        chart.validate_schema(values or {})
        files = chart.render(values or {}, name="rel", namespace=namespace, is_install=True)
    docs: list[dict[str, Any]] = []
    for name, text in sorted(files.items()):
        if name.endswith((".txt", "NOTES.txt")):
            continue
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def validate_all(docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        if (doc["apiVersion"], doc["kind"]) in OUR_KINDS:
            continue
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "local-service-demo": {"localService": {"enabled": True}, "apiSecret": {"create": True, "token": "demo-token"}},
    "cluster-wide": {"operator": {"clusterWide": True}},
    "two-namespaces-no-peering": {"operator": {"watchNamespaces": ["team-a", "team-b"], "peering": {"enabled": False},
                                               "replicas": 1}},
    "external-secret-elsewhere": {"apiSecret": {"name": "dr-api", "namespace": "secrets"}},
    "service-monitor": {"localService": {"enabled": True}, "apiSecret": {"create": True, "token": "demo-token"},
                        "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus"}}}},
}


def test_chart_crd_is_the_generated_one() -> None:
    """Fails when schemas/ changed and the chart's copy was not regenerated."""
    on_disk = (CHART / "templates" / "crd.yaml").read_text(encoding="utf-8")
    assert on_disk == crd.chart_template(), (
        "charts/reconciler/templates/crd.yaml drifted from schemas/: run "
        "`reconciler crd --chart > charts/reconciler/templates/crd.yaml`")


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_lint_is_clean(variant: str) -> None:
    report = helm.lint(str(CHART), VARIANTS[variant], strict=True, namespace="ops", kube_version="v1.20.0")
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == []


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_rendered_objects_are_valid_kubernetes(variant: str) -> None:
    docs = render(VARIANTS[variant])
    assert docs
    validate_all(docs)


def test_rendered_crd_equals_the_generator() -> None:
    docs = render()
    (ours,) = [d for d in by_kind(docs, "CustomResourceDefinition") if d["metadata"]["name"] == crd.CRD_NAME]
    expected = crd.crd()
    expected["metadata"]["annotations"] = {"helm.sh/resource-policy": "keep"}
    assert ours == expected
    peering = {d["metadata"]["name"] for d in by_kind(docs, "CustomResourceDefinition")} - {crd.CRD_NAME}
    assert peering == {"kopfpeerings.kopf.dev", "clusterkopfpeerings.kopf.dev"}


def test_crd_can_be_left_out() -> None:
    docs = render({"crd": {"install": False}, "operator": {"peering": {"installCRDs": False}}})
    assert by_kind(docs, "CustomResourceDefinition") == []


def _rules(doc: dict[str, Any]) -> Iterator[tuple[str, str, str, tuple[str, ...]]]:
    for rule in doc["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    yield group, resource, verb, tuple(rule.get("resourceNames", ()))


def test_rbac_is_least_privilege() -> None:
    docs = render()
    roles = {d["metadata"]["name"]: d for d in by_kind(docs, "Role")}
    (kopf_role,) = by_kind(docs, "ClusterRole")  # what kopf itself needs, read-only
    assert set(_rules(kopf_role)) == {
        ("apiextensions.k8s.io", "customresourcedefinitions", "list", ()),
        ("apiextensions.k8s.io", "customresourcedefinitions", "watch", ()),
        ("", "namespaces", "list", ()),
        ("", "namespaces", "watch", ()),
    }
    main = set(_rules(roles["rel-reconciler"]))
    assert main == {
        ("reconciler.io", "batchpredictionjobdefinitions", "get", ()),
        ("reconciler.io", "batchpredictionjobdefinitions", "list", ()),
        ("reconciler.io", "batchpredictionjobdefinitions", "watch", ()),
        ("reconciler.io", "batchpredictionjobdefinitions", "patch", ()),
        ("reconciler.io", "batchpredictionjobdefinitions/status", "get", ()),
        ("reconciler.io", "batchpredictionjobdefinitions/status", "patch", ()),
        ("reconciler.io", "batchpredictionjobdefinitions/finalizers", "update", ()),
        ("", "events", "create", ()),
        ("kopf.dev", "kopfpeerings", "get", ("reconciler",)),
        ("kopf.dev", "kopfpeerings", "patch", ("reconciler",)),
        ("kopf.dev", "kopfpeerings", "list", ()),
        ("kopf.dev", "kopfpeerings", "watch", ()),
    }
    secret = set(_rules(roles["rel-reconciler-secret"]))
    assert secret == {("", "secrets", "get", ("reconciler-api",))}
    for doc in [*by_kind(docs, "Role"), *by_kind(docs, "ClusterRole")]:
        for group, resource, verb, _ in _rules(doc):
            assert "*" not in (group, resource, verb)
            assert verb not in ("delete", "deletecollection", "create") or resource == "events"


def test_cluster_wide_uses_a_cluster_role_and_one_cluster_peering() -> None:
    docs = render(VARIANTS["cluster-wide"])
    (role,) = [d for d in by_kind(docs, "ClusterRole") if d["metadata"]["name"] == "rel-reconciler"]
    assert ("kopf.dev", "clusterkopfpeerings", "patch", ("reconciler",)) in set(_rules(role))
    assert [d["metadata"]["name"] for d in by_kind(docs, "ClusterKopfPeering")] == ["reconciler"]
    assert by_kind(docs, "KopfPeering") == []
    args = by_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--all-namespaces" in args and not any(a.startswith("--namespace") for a in args)


def test_each_watched_namespace_gets_its_role() -> None:
    docs = render(VARIANTS["two-namespaces-no-peering"])
    assert sorted(d["metadata"]["namespace"] for d in by_kind(docs, "RoleBinding")
                  if d["metadata"]["name"] == "rel-reconciler") == ["team-a", "team-b"]
    assert by_kind(docs, "KopfPeering") == []
    args = by_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=team-a" in args and "--namespace=team-b" in args and "--standalone" in args


def test_operator_deployment_is_hardened_and_probed() -> None:
    docs = render()
    (deployment,) = by_kind(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert deployment["spec"]["replicas"] == 2
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["resources"]["limits"] and container["resources"]["requests"]
    assert container["args"][:2] == ["operator", "--secret=ops/reconciler-api"]
    assert "--liveness=http://0.0.0.0:8080/healthz" in container["args"]
    assert "--peering=reconciler" in container["args"]
    assert pod["serviceAccountName"] == "rel-reconciler"


def test_demo_secret_points_at_the_local_service_and_the_token_stays_in_the_secret() -> None:
    import base64

    docs = render(VARIANTS["local-service-demo"])
    (secret,) = [s for s in by_kind(docs, "Secret") if s["type"] != "kubernetes.io/tls"]  # not the webhook's
    assert base64.b64decode(secret["data"]["endpoint"]).decode() == "http://rel-reconciler-local.ops.svc:8080/api/v2/"
    assert base64.b64decode(secret["data"]["token"]).decode() == "demo-token"
    service = next(d for d in by_kind(docs, "Deployment") if d["metadata"]["name"] == "rel-reconciler-local")
    container = service["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][0] == "serve"
    assert container["env"] == [{"name": "RECONCILER_SERVICE_TOKEN", "valueFrom": {
        "secretKeyRef": {"name": "reconciler-api", "key": "token"}}}]
    everything_but_the_secret = yaml.safe_dump([d for d in docs if d["kind"] != "Secret"])
    assert "demo-token" not in everything_but_the_secret
    operator = next(d for d in by_kind(docs, "Deployment") if d["metadata"]["name"] == "rel-reconciler")
    assert "--allow-http" in operator["spec"]["template"]["spec"]["containers"][0]["args"]
    svc = local_service_of(docs)
    assert svc["spec"]["ports"][0]["port"] == 8080


def test_the_local_service_can_score_on_a_dask_scheduler() -> None:
    def args(executor: dict[str, Any]) -> list[str]:
        docs = render({"localService": {"enabled": True, "executor": executor}})
        validate_all(docs)
        service = next(d for d in by_kind(docs, "Deployment") if d["metadata"]["name"] == "rel-reconciler-local")
        return list(service["spec"]["template"]["spec"]["containers"][0]["args"])

    assert not [a for a in args({}) if "dask" in a]
    assert args({"kind": "dask", "daskScheduler": "tcp://dask-scheduler.ops.svc:8786", "partitionRows": 250000})[4:] == [
        "--executor=dask", "--dask-scheduler=tcp://dask-scheduler.ops.svc:8786", "--dask-partition-bytes=67108864",
        "--dask-partition-rows=250000"]
    with helm.Chart.load(str(CHART)) as chart, pytest.raises(helm.HelmError, match=r"executor\.daskScheduler"):
        chart.render({"localService": {"enabled": True, "executor": {"kind": "dask"}}}, name="rel", namespace="ops")


def test_secret_creation_without_a_token_fails_clearly() -> None:
    with helm.Chart.load(str(CHART)) as chart, pytest.raises(helm.HelmError, match=r"apiSecret\.token"):
        chart.render({"apiSecret": {"create": True, "endpoint": "https://app.datarobot.com/api/v2/"}},
                     name="rel", namespace="ops")


@pytest.mark.parametrize("values", [
    {"operator": {"resyncInterval": 0}},
    {"operator": {"watchNamespaces": ["Not_A_Namespace"]}},
    {"apiSecret": {"name": "x", "tokn": "typo"}},
    {"image": {"pullPolicy": "Sometimes"}},
    {"metrics": {"serviceMonitor": {"interval": "often"}}},
    {"localService": {"executor": {"kind": "ray"}}},
    {"localService": {"executor": {"kind": "dask", "daskScheduler": "scheduler:8786"}}},
])
def test_values_schema_rejects_bad_values(values: dict[str, Any]) -> None:
    with helm.Chart.load(str(CHART)) as chart, pytest.raises(helm.HelmValuesError):
        chart.validate_schema(values)


def local_service_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return next(d for d in by_kind(docs, "Service") if d["metadata"]["name"] == "rel-reconciler-local")


def test_no_service_monitor_by_default() -> None:
    assert not by_kind(render(VARIANTS["local-service-demo"]), "ServiceMonitor")


def test_operator_metrics_port_and_service() -> None:
    docs = render()
    operator = next(d for d in by_kind(docs, "Deployment") if d["metadata"]["name"] == "rel-reconciler")
    container = operator["spec"]["template"]["spec"]["containers"][0]
    assert "--metrics-port=9090" in container["args"] and "--metrics-host=0.0.0.0" in container["args"]
    assert {"name": "metrics", "containerPort": 9090, "protocol": "TCP"} in container["ports"]
    (service,) = [s for s in by_kind(docs, "Service") if s["metadata"]["name"] != "rel-reconciler-webhook"]
    assert service["metadata"]["name"] == "rel-reconciler-metrics"
    assert service["spec"]["selector"].items() <= operator["spec"]["template"]["metadata"]["labels"].items()
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}]
    off = render({"operator": {"metricsPort": None}})
    assert not [d for d in by_kind(off, "Service") if d["metadata"]["name"] == "rel-reconciler-metrics"]
    operator = next(d for d in by_kind(off, "Deployment") if d["metadata"]["name"] == "rel-reconciler")
    assert not any(a.startswith("--metrics") for a in operator["spec"]["template"]["spec"]["containers"][0]["args"])


def test_service_monitors_scrape_the_operator_and_the_local_service_with_the_token() -> None:
    docs = render(VARIANTS["service-monitor"])
    monitors = {m["metadata"]["name"]: m for m in by_kind(docs, "ServiceMonitor")}
    assert set(monitors) == {"rel-reconciler", "rel-reconciler-local"}
    services = {s["metadata"]["name"]: s for s in by_kind(docs, "Service")}
    for monitor_name, service_name in (("rel-reconciler", "rel-reconciler-metrics"),
                                       ("rel-reconciler-local", "rel-reconciler-local")):
        monitor, service = monitors[monitor_name], services[service_name]
        assert monitor["metadata"]["namespace"] == "ops"
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus"
        # it selects exactly its Service
        selecting = [name for name, s in services.items()
                     if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()]
        assert selecting == [service_name]
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["ops"]}
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
        assert endpoint["path"] == "/metrics" and endpoint["interval"] == "30s" and endpoint["scrapeTimeout"] == "10s"
    assert "authorization" not in monitors["rel-reconciler"]["spec"]["endpoints"][0]
    # the local service's: the token from the API Secret the service reads, never its value
    assert monitors["rel-reconciler-local"]["spec"]["endpoints"][0]["authorization"] == {
        "type": "Bearer", "credentials": {"name": "reconciler-api", "key": "token"}}
    assert "demo-token" not in yaml.safe_dump(list(monitors.values()))
    local = next(d for d in by_kind(docs, "Deployment") if d["metadata"]["name"] == "rel-reconciler-local")
    assert "--metrics-without-token" not in local["spec"]["template"]["spec"]["containers"][0]["args"]


def test_metrics_without_token_drops_the_credentials() -> None:
    values = {**VARIANTS["service-monitor"], "localService": {"enabled": True, "metricsWithoutToken": True}}
    docs = render(values)
    monitor = next(m for m in by_kind(docs, "ServiceMonitor") if m["metadata"]["name"] == "rel-reconciler-local")
    assert "authorization" not in monitor["spec"]["endpoints"][0]
    local = next(d for d in by_kind(docs, "Deployment") if d["metadata"]["name"] == "rel-reconciler-local")
    assert "--metrics-without-token" in local["spec"]["template"]["spec"]["containers"][0]["args"]


def test_operator_service_monitor_alone_and_nothing_to_scrape_fails_clearly() -> None:
    (monitor,) = by_kind(render({"metrics": {"serviceMonitor": {"enabled": True}}}), "ServiceMonitor")
    assert monitor["metadata"]["name"] == "rel-reconciler"
    with helm.Chart.load(str(CHART)) as chart, pytest.raises(helm.HelmError, match=r"nothing to scrape"):
        chart.render({"operator": {"metricsPort": None}, "metrics": {"serviceMonitor": {"enabled": True}}},
                     name="rel", namespace="ops")
