"""The pure parts of admission checks and ownership: the webhook's verdict, its certificate, the
operator's ownership scope and the Conflict condition it writes (e2e: test_operator_admission.py)."""

from __future__ import annotations

import copy
import datetime
import ipaddress
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from operator_harness import manifest

from reconciler.operator import admission, decide, ownership
from reconciler.operator.ownership import outside_scope
from reconciler.operator.status import Reconciliation, Result, conditions, status_patch
from reconciler.specs.scope import Scope

NOW = "2026-12-01T00:00:00Z"


def _body(name: str = "k8s-a", **spec: Any) -> dict[str, Any]:
    body = manifest(name, **spec)
    body["metadata"]["namespace"] = "ml"
    return body


def test_an_unknown_field_and_an_impossible_cron_are_denied_with_every_message() -> None:
    bad = _body(schedule={"cron": "0 2 30 2 *"})
    bad["spec"]["batchPredictionJob"]["num_concurrent"] = 4
    verdict = admission.review("CREATE", bad, None)
    assert verdict.denied is not None
    lines = verdict.denied.splitlines()
    assert lines[0] == "BatchPredictionJobDefinition ml/k8s-a: 2 error(s), the checks of `reconciler validate`:"
    assert ("spec.batchPredictionJob.num_concurrent: unknown field 'num_concurrent' (did you mean "
            "`numConcurrent`? Fields use the API's camelCase names)") in lines
    assert any(line.startswith("spec.schedule.cron: day(s) 30 never occur in Feb") for line in lines)
    # the operator's Invalid condition says the same
    try:
        decide.parse(bad)
    except decide.Invalid as exc:
        assert str(exc).splitlines() == lines[1:]


def test_a_valid_resource_and_the_operators_own_updates_pass() -> None:
    good = _body()
    assert admission.review("CREATE", good, None) == admission.AdmissionAnswer()
    # stored before the webhook existed, invalid: the operator's finalizer/annotation writes still pass
    invalid = _body(schedule={"cron": "* * * 13 *"})
    annotated = copy.deepcopy(invalid)
    annotated["metadata"]["annotations"] = {"reconciler.io/last-handled-configuration": "{}"}
    annotated["metadata"]["finalizers"] = ["reconciler.io/finalizer"]
    assert admission.review("UPDATE", annotated, invalid).denied is None
    # ... and so does the finalizer's removal of a resource being deleted
    deleting = copy.deepcopy(invalid)
    deleting["metadata"]["deletionTimestamp"] = NOW
    assert admission.review("UPDATE", deleting, annotated).denied is None
    # but a spec edit is checked, and DELETE never is
    edited = copy.deepcopy(good)
    edited["spec"]["schedule"] = {"cron": "* * * 13 *"}
    assert admission.review("UPDATE", edited, good).denied is not None
    assert admission.review("DELETE", None, invalid).denied is None


def test_a_name_outside_the_operators_scope_is_admitted_with_a_warning() -> None:
    verdict = admission.review("CREATE", _body("team-a"), None, scope=Scope(name_prefix="k8s-"))
    assert verdict.denied is None
    (warning,) = verdict.warnings
    assert warning.startswith("the operator will not reconcile this resource (condition Conflict): "
                              "definition 'team-a' is outside this operator's ownership scope")
    assert admission.review("CREATE", _body("k8s-a"), None, scope=Scope(name_prefix="k8s-")).warnings == ()


def test_the_self_signed_certificate_names_the_hosts_and_signs_itself() -> None:
    cert_pem, key_pem = admission.self_signed(["127.0.0.1", "reconciler.ml.svc", "0.0.0.0", "127.0.0.1"])
    cert = x509.load_pem_x509_certificate(cert_pem)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert sans.get_values_for_type(x509.DNSName) == ["reconciler.ml.svc"]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    public = cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    cert.verify_directly_issued_by(cert)
    assert cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC) > datetime.timedelta(days=300)
    assert b"PRIVATE KEY" in key_pem and b"ENCRYPTED" not in key_pem
    assert b"ENCRYPTED" in admission.self_signed(["localhost"], password="pw")[1]


def test_scope_conflicts_name_the_definition_and_the_scope() -> None:
    scope = Scope(name_prefix="k8s-", names=frozenset({"legacy"}))
    assert outside_scope("k8s-a", [], scope) is None
    assert outside_scope("legacy", ["k8s-old"], scope) is None
    assert outside_scope("anything", ["team-x"], None) is None  # no scope: every name (as before scopes)
    message = outside_scope("team-a", [], scope)
    assert message is not None and "'team-a' is outside this operator's ownership scope" in message
    assert "names starting with 'k8s-' and 1 exact name(s)" in message
    renamed = outside_scope("k8s-a", ["k8s-b", "team-b"], scope)
    assert renamed is not None and renamed.startswith("spec.previousNames 'team-b' outside")


def test_a_resource_of_another_scope_is_a_conflict_before_any_api_call() -> None:
    scope = Scope(name_prefix="k8s-")
    assert ownership.conflict(decide.parse(_body("k8s-a")), scope) is None
    assert ownership.conflict(decide.parse(_body("team-a")), None) is None
    found = ownership.conflict(decide.parse(_body("team-a")), scope)
    assert found is not None and found.result is Result.conflict and found.definition_id is None
    # spec.name, not metadata.name, is the definition's name
    spec_named = _body("k8s-b")
    spec_named["spec"]["name"] = "team-b"
    renamed = ownership.conflict(decide.parse(spec_named), scope)
    assert renamed is not None and "'team-b'" in renamed.message


def test_the_conflict_condition_holds_only_while_the_conflict_does() -> None:
    conflict = Reconciliation(result=Result.conflict, message="outside the scope")
    first = conditions(conflict, [], generation=1, now=NOW)
    assert [(c["type"], c["status"], c["reason"]) for c in first] == [
        ("Ready", "False", "Conflict"), ("Synced", "False", "Conflict"), ("Conflict", "True", "Conflict")]
    assert first[2]["message"] == "outside the scope"
    patch = status_patch(conflict, {"definitionId": "d1"}, generation=1, now=NOW)
    assert patch["definitionId"] is None  # never the operator's: the finalizer will not delete it
    resolved = Reconciliation(result=Result.created, message="created definition d2", definition_id="d2")
    assert [c["type"] for c in conditions(resolved, first, generation=2, now=NOW)] == ["Ready", "Synced"]


def test_a_refused_review_is_logged_as_a_warning_not_an_error() -> None:
    import logging

    def record(level: int, message: str) -> logging.LogRecord:
        return logging.LogRecord("kopf.objects", level, __file__, 1, message, None, None)

    refusal = record(logging.ERROR, "Webhook 'validate' failed permanently: BatchPredictionJobDefinition ml/a: ...")
    other = record(logging.ERROR, "Handler 'sync/spec' failed with an exception.")
    admission.RefusalsAreWarnings().filter(refusal)
    admission.RefusalsAreWarnings().filter(other)
    assert (refusal.levelno, refusal.levelname) == (logging.WARNING, "WARNING")
    assert other.levelno == logging.ERROR
