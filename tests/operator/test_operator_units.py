"""The pure parts of the operator: CRD projection, parsing a resource, status conditions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.contract import schemas
from reconciler.operator import crd, decide, opening
from reconciler.operator.config import ApiSecret, OperatorConfig
from reconciler.operator.status import Reconciliation, Result, conditions, status_patch

REPO = Path(__file__).resolve().parents[2]
NOT_IN_K8S_1_20 = {"$ref", "$id", "$schema", "$defs", "const", "if", "then", "else", "not", "oneOf", "allOf",
                   "anyOf", "uniqueItems", "default", "errorMessage", "x-unknownKeys", "dependentRequired",
                   "contains", "unevaluatedProperties", "propertyNames", "writeOnly", "$comment"}


def _nodes(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        out.append((path, node))
        for key, value in node.get("properties", {}).items():
            out.extend(_nodes(value, f"{path}.{key}"))
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                out.extend(_nodes(node[key], f"{path}[{key}]"))
    return out


def test_crd_schema_is_structural_for_kubernetes_1_20() -> None:
    schema = crd.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _nodes(schema):
        assert not (NOT_IN_K8S_1_20 & node.keys()), f"{path}: {NOT_IN_K8S_1_20 & node.keys()}"
        assert ("type" in node or node.get("x-kubernetes-int-or-string")
                or node.get("x-kubernetes-preserve-unknown-fields")), f"{path} has no type"
        if "enum" in node:
            assert node.get("type") in ("string", "integer", "number", "boolean"), path


def test_discriminated_settings_become_one_object_with_a_type_enum() -> None:
    spec = crd.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    job = spec["properties"]["batchPredictionJob"]
    intake = job["properties"]["intakeSettings"]
    assert intake["properties"]["type"]["enum"] == schemas.get("intake")["properties"]["type"]["enum"]
    assert intake["required"] == ["type"]
    # A union must not narrow one adapter's field by another's rule: url patterns differ per adapter.
    assert "pattern" not in intake["properties"]["url"]
    output = job["properties"]["outputSettings"]
    assert output["properties"]["statementType"]["enum"] == ["insert", "update", "insert_update", "create_table"]
    assert job["properties"]["chunkSize"] == {"x-kubernetes-int-or-string": True,
                                              "description": job["properties"]["chunkSize"]["description"]}
    assert spec["properties"]["schedule"]["properties"]["minute"]["items"] == {"x-kubernetes-int-or-string": True}
    # deploymentId or deploymentRef (issue #13, item 4): an alternative the structural schema cannot
    # say, so the CRD requires neither and the operator's validation of the resource does
    assert job["required"] == ["intakeSettings"]
    assert spec["required"] == ["batchPredictionJob"]  # 'schedule' is only required when enabled: not here


def test_crd_names_columns_and_status() -> None:
    body = crd.crd()
    assert body["metadata"]["name"] == "batchpredictionjobdefinitions.reconciler.io"
    assert body["spec"]["names"]["shortNames"] == ["bpjd"]
    assert body["spec"]["scope"] == "Namespaced"
    version = body["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Definition ID", "Enabled", "Ready", "Synced", "Age", "Last run"]
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert {"definitionId", "observedGeneration", "lastSyncTime", "nextScheduledRunTime", "conditions"} <= status.keys()


def _body(doc: dict[str, Any], namespace: str = "ns1") -> dict[str, Any]:
    return {**doc, "metadata": {**doc["metadata"], "namespace": namespace, "uid": "u-1", "generation": 3,
                                "annotations": {"kopf.zalando.org/x": "y"}, "finalizers": ["f"]}}


def test_every_example_manifest_parses_as_a_resource() -> None:
    paths = sorted((REPO / "specs").glob("*.yaml"))
    docs = [d for p in paths for d in yaml.safe_load_all(p.read_text()) if d and d.get("kind") == crd.KIND]
    assert docs
    for doc in docs:
        manifest = decide.parse(_body(doc))
        assert manifest.metadata.namespace == "ns1"


def test_an_invalid_resource_lists_every_problem_with_hints() -> None:
    doc = {"apiVersion": "reconciler.io/v1alpha1", "kind": crd.KIND, "metadata": {"name": "x"},
           "spec": {"enabled": True, "batchPredictionJob": {
               "deploymentId": "64b0c0ffee000000000d0001", "num_concurrent": 2,
               "intakeSettings": {"type": "s3", "url": "s3://b/in.csv"}}}}
    with pytest.raises(decide.Invalid) as caught:
        decide.parse(_body(doc))
    text = str(caught.value)
    assert "enabled: true needs a schedule" in text
    assert "num_concurrent" in text and "numConcurrent" in text
    assert decide.document_from_body(_body(doc)).file == "ns1/x"


def test_conditions_keep_their_transition_time_until_the_status_changes() -> None:
    ok = Reconciliation(result=Result.created, message="created definition d1", definition_id="d1")
    first = conditions(ok, [], generation=1, now="2026-01-01T00:00:00Z")
    assert first[0] == {"type": "Ready", "status": "True", "reason": "Reconciled",
                        "message": "definition d1 matches the spec", "lastTransitionTime": "2026-01-01T00:00:00Z",
                        "observedGeneration": 1}
    same = conditions(Reconciliation(result=Result.unchanged, message="no changes", definition_id="d1"), first,
                      generation=2, now="2026-01-02T00:00:00Z")
    assert same[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    failed = conditions(Reconciliation(result=Result.api_error, message="PATCH ... -> 422: bad"), same,
                        generation=2, now="2026-01-03T00:00:00Z")
    assert failed[0] == {"type": "Ready", "status": "False", "reason": "ApiError", "message": "PATCH ... -> 422: bad",
                         "lastTransitionTime": "2026-01-03T00:00:00Z", "observedGeneration": 2}


def test_the_policy_warning_condition_says_what_warns_until_nothing_does() -> None:
    """Absent until a rule warns; True with the rules' lines; kept as it was by an outcome that did
    not judge the policies (a failure, a suspend); False once a judged reconcile has no warning."""
    from reconciler.operator.status import policy_warning_is_new

    line = "policy nightly-only warns on x: runs outside the night"
    plain = Reconciliation(result=Result.unchanged, message="no changes", definition_id="d1")
    assert [c["type"] for c in conditions(plain, [], generation=1, now="t1")] == ["Ready", "Synced"]
    warned = Reconciliation(result=Result.created, message="created", definition_id="d1", warnings=(line,))
    first = conditions(warned, [], generation=1, now="t1")
    assert first[2] == {"type": "PolicyWarning", "status": "True", "reason": "PolicyWarning", "message": line,
                        "lastTransitionTime": "t1", "observedGeneration": 1}
    assert policy_warning_is_new(warned, {}) and not policy_warning_is_new(warned, {"conditions": first})
    failed = conditions(Reconciliation(result=Result.api_error, message="503"), first, generation=2, now="t2")
    assert failed[2] == first[2]
    suspended = conditions(Reconciliation(result=Result.suspended, message="suspended"), first, generation=2, now="t2")
    assert suspended[-1] == first[2]
    cleared = conditions(plain, failed, generation=3, now="t3")
    assert cleared[2] == {"type": "PolicyWarning", "status": "False", "reason": "NoWarnings",
                          "message": "no policy rule warns", "lastTransitionTime": "t3", "observedGeneration": 3}
    assert status_patch(warned, {"conditions": cleared}, generation=4, now="t4")["conditions"][2]["status"] == "True"


def test_status_patch_reads_run_times_and_skips_the_never_sentinel() -> None:
    live = {"enabled": True, "nextScheduledRunTime": "2026-01-02T02:00:00Z",
            "lastStartedJobTime": None, "lastScheduledRunTime": "1900-01-01T00:00:00.000000Z"}
    patch = status_patch(Reconciliation(result=Result.created, message="m", definition_id="d1", definition_name="n",
                                 live=live), None, generation=1, now="2026-01-01T00:00:00Z")
    assert patch["definitionId"] == "d1" and patch["observedGeneration"] == 1
    assert patch["nextScheduledRunTime"] == "2026-01-02T02:00:00Z"
    assert patch["lastRunTime"] is None and patch["drift"] is None and patch["lastSyncTime"] == "2026-01-01T00:00:00Z"
    reported = status_patch(Reconciliation(result=Result.drift_reported, message="m", definition_id="d1",
                                    drift=("batchPredictionJob.numConcurrent",)), patch, generation=1)
    assert reported["drift"] == ["batchPredictionJob.numConcurrent"] and "lastSyncTime" not in reported


def test_config_parses_the_secret_and_backs_off_exponentially() -> None:
    assert ApiSecret.parse("ops/api") == ApiSecret(namespace="ops", name="api")
    for bad in ("api", "/api", "ops/", "a/b/c"):
        with pytest.raises(ValueError):
            ApiSecret.parse(bad)
    config = OperatorConfig(secret=ApiSecret("ops", "api"), backoff_initial=1, backoff_max=10)
    assert [config.backoff(r) for r in range(6)] == [1, 2, 4, 8, 10, 10]


def test_crd_command_prints_the_generated_files(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from reconciler.cli import app

    runner = CliRunner()
    plain = runner.invoke(app, ["crd"])
    assert plain.exit_code == 0 and plain.stdout == crd.crd_yaml()
    assert yaml.safe_load(plain.stdout) == crd.crd()
    with_peering = runner.invoke(app, ["crd", "--peering"])
    assert [d["metadata"]["name"] for d in yaml.safe_load_all(with_peering.stdout)] == [
        crd.CRD_NAME, "kopfpeerings.kopf.dev", "clusterkopfpeerings.kopf.dev"]
    target = tmp_path / "crd.yaml"
    assert runner.invoke(app, ["crd", "--chart", "-o", str(target)]).exit_code == 0
    assert target.read_text() == (REPO / "charts" / "reconciler" / "templates" / "crd.yaml").read_text()


def test_operator_command_refuses_bad_flags() -> None:
    from typer.testing import CliRunner

    from reconciler.cli import app

    runner = CliRunner()
    for args, message in ((["--secret", "nope", "-n", "x"], "NAMESPACE/NAME"),
                          (["--secret", "a/b"], "--namespace"),
                          (["--secret", "a/b", "-n", "x", "--peering", "p", "--standalone"], "exclude")):
        result = runner.invoke(app, ["operator", *args])
        assert result.exit_code == 1 and message in result.output
    bad_level = runner.invoke(app, ["operator", "--secret", "a/b", "-n", "x", "--log-level", "loud"])
    assert bad_level.exit_code == 1 and "unknown --log-level 'loud'" in bad_level.output
    # No cluster: one clear line before kopf starts (kopf alone would log a traceback every minute).
    no_cluster = runner.invoke(app, ["operator", "--secret", "a/b", "-n", "x", "--standalone"],
                               env={"KUBECONFIG": "/nonexistent/kubeconfig", "KUBERNETES_SERVICE_HOST": ""})
    assert no_cluster.exit_code == 1 and "Traceback" not in no_cluster.output
    assert "no Kubernetes cluster to talk to" in no_cluster.output and "/nonexistent/kubeconfig" in no_cluster.output


def test_operator_flags_become_one_configuration(tmp_path: Path) -> None:
    """``start.prepare`` checks the flags without a cluster and builds the scope, the webhook, the
    controls and the peering priority from them."""
    from reconciler.errors import ConfigError, UsageError
    from reconciler.operator.start import Flags, prepare

    config = tmp_path / "reconciler.yaml"
    config.write_text("apiVersion: reconciler.io/v1alpha1\nkind: Project\nsyncWindows:\n"
                      "  - {name: night, kind: deny, schedule: '0 1 * * *', duration: 1h}\n")
    launch = prepare(Flags(secret="ops/api", namespace=("a", "b"), scope_prefix="team-", scope_name=("x",),
                           webhook_port=9443, peering="p", log_level="debug", metrics_port=9090,
                           project_config=config), environ={})
    assert launch.config.secret == ApiSecret("ops", "api") and launch.config.namespaces == ("a", "b")
    assert launch.config.scope is not None and launch.config.scope.name_prefix == "team-"
    assert launch.config.scope.names == frozenset({"x"})
    assert launch.config.webhook is not None and launch.config.webhook.port == 9443
    session = opening.open_session(launch.config, opening.compile_rules(launch.config), endpoint="https://dr.example/")
    assert [w.name for w in session.controls.windows] == ["night"]  # the operator's session has the controls
    assert launch.level == 10 and launch.metrics == ("127.0.0.1", 9090)
    assert launch.priority is not None and launch.priority >= 1  # peering without --priority: random
    plain = prepare(Flags(secret="ops/api", all_namespaces=True), environ={})
    assert plain.config.scope is None and plain.config.webhook is None and plain.priority is None
    for flags, message in ((Flags(secret="ops/api", namespace=("a",), webhook_host="h"), "need --webhook-port"),
                           (Flags(secret="ops/api", namespace=("a",), webhook_port=1, webhook_cert_dir=tmp_path),
                            "must hold tls.crt and tls.key"),
                           (Flags(secret="ops/api", namespace=("a",), target="prod"), "--target needs --project-config")):
        with pytest.raises(UsageError, match=message):
            prepare(flags, environ={})
    with pytest.raises(ConfigError, match="prod"):
        prepare(Flags(secret="ops/api", namespace=("a",), project_config=config, target="prod"), environ={})


def test_crd_command_reports_an_unwritable_output(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from reconciler.cli import app

    result = CliRunner().invoke(app, ["crd", "-o", str(tmp_path / "missing" / "crd.yaml")])
    assert result.exit_code == 1 and "cannot write" in result.output and "missing" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_claims_decide_who_manages_a_definition() -> None:
    """Another resource recording the id owns it; when both record it, the older one keeps it."""
    import kopf

    from reconciler.operator.handlers import _claimed_by

    def body(uid: str, created: str, recorded: str | None) -> kopf.Body:
        raw = {"metadata": {"uid": uid, "creationTimestamp": created, "name": "n", "namespace": uid},
               "status": {"definitionId": recorded} if recorded else {}}
        return kopf.Body(raw)

    claims = {"d1": [("a/n", "a", "2026-01-01T00:00:00Z")], "d2": [("b/n", "b", "2026-01-03T00:00:00Z")]}
    fresh = _claimed_by(claims, body("c", "2026-01-02T00:00:00Z", None))
    assert fresh("d1") == "a/n" and fresh("d2") == "b/n" and fresh("d3") is None
    assert _claimed_by(claims, body("a", "2026-01-01T00:00:00Z", "d1"))("d1") is None  # its own claim
    both_younger = _claimed_by(claims, body("c", "2026-01-02T00:00:00Z", "d1"))
    assert both_younger("d1") == "a/n"  # a is older: c loses d1
    both_older = _claimed_by(claims, body("c", "2026-01-02T00:00:00Z", "d2"))
    assert both_older("d2") is None  # c is older than b: c keeps d2


def test_a_conflict_forgets_the_definition_in_status() -> None:
    previous = status_patch(Reconciliation(result=Result.created, message="m", definition_id="d1", definition_name="n",
                                    live={"enabled": True, "nextScheduledRunTime": "2026-01-02T02:00:00Z"}),
                            None, generation=1, now="2026-01-01T00:00:00Z")
    patch = status_patch(Reconciliation(result=Result.conflict, message="managed by ns/n", definition_id="d1"),
                         previous, generation=1, now="2026-01-02T00:00:00Z")
    assert {k: patch[k] for k in ("definitionId", "definitionName", "lastSyncTime", "nextScheduledRunTime")} == {
        "definitionId": None, "definitionName": None, "lastSyncTime": None, "nextScheduledRunTime": None}
    ready = patch["conditions"][0]
    assert (ready["status"], ready["reason"], ready["message"]) == ("False", "Conflict", "managed by ns/n")


def test_a_resource_cannot_make_the_operator_read_its_own_files_or_environment() -> None:
    """apiKeyFrom/datarobotKeyFrom would name the operator's files (its service-account token) or
    variables, sent on to a prediction server the resource chooses: refused as Invalid."""
    doc = {"apiVersion": "reconciler.io/v1alpha1", "kind": crd.KIND, "metadata": {"name": "x"},
           "spec": {"enabled": False, "batchPredictionJob": {
               "deploymentId": "64b0c0ffee000000000d0001",
               "intakeSettings": {"type": "s3", "url": "s3://b/in.csv"},
               "predictionInstance": {"hostName": "evil.example", "sslEnabled": True,
                                      "apiKeyFrom": {"file": "/var/run/secrets/kubernetes.io/serviceaccount/token"},
                                      "datarobotKeyFrom": {"env": "HOME"}}}}}
    with pytest.raises(decide.Invalid) as caught:
        decide.parse(_body(doc))
    lines = str(caught.value).splitlines()
    assert [line.split(":")[0] for line in lines] == ["spec.batchPredictionJob.predictionInstance.apiKeyFrom",
                                                      "spec.batchPredictionJob.predictionInstance.datarobotKeyFrom"]
    assert all("the operator never reads its own environment or files" in line for line in lines)
    del doc["spec"]["batchPredictionJob"]["predictionInstance"]["apiKeyFrom"]
    del doc["spec"]["batchPredictionJob"]["predictionInstance"]["datarobotKeyFrom"]
    assert decide.parse(_body(doc)).spec.batchPredictionJob is not None  # without keys: fine
