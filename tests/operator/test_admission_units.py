"""The pure parts of admission checks and ownership: the webhook's verdict, its certificate, the
operator's scope and suspend holds, and the conditions they write (e2e: test_operator_admission.py)."""

from __future__ import annotations

import copy
import datetime
import ipaddress
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from operator_harness import manifest

from reconciler.operator import admission, holds, pipeline
from reconciler.operator.ownership import outside_scope
from reconciler.operator.status import Outcome, Result, conditions, status_patch
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
        pipeline.parse(bad)
    except pipeline.Invalid as exc:
        assert str(exc).splitlines() == lines[1:]


def test_a_valid_resource_and_the_operators_own_updates_pass() -> None:
    good = _body()
    assert admission.review("CREATE", good, None) == admission.Verdict()
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


def test_holds_conflict_before_suspend_and_keep_the_recorded_id_while_suspended() -> None:
    scope = Scope(name_prefix="k8s-")
    body = _body("k8s-a")
    model = pipeline.parse(body)
    assert holds.hold(model, {**body["spec"], "suspend": False}, scope=scope, recorded_id="d1") is None
    held = holds.hold(model, {**body["spec"], "suspend": True}, scope=scope, recorded_id="d1")
    assert held == Outcome(result=Result.suspended, message=holds.SUSPENDED, definition_id="d1")
    foreign = pipeline.parse(_body("team-a"))
    conflict = holds.hold(foreign, {**body["spec"], "suspend": True}, scope=scope, recorded_id="d1")
    assert conflict is not None and conflict.result is Result.conflict and conflict.definition_id is None
    assert holds.suspended({"suspend": True}) and not holds.suspended({"suspend": "true"})
    assert not holds.suspended(None)


def test_conflict_and_suspended_conditions_hold_only_while_they_apply() -> None:
    conflict = Outcome(result=Result.conflict, message="outside the scope")
    first = conditions(conflict, [], generation=1, now=NOW)
    assert [(c["type"], c["status"], c["reason"]) for c in first] == [
        ("Ready", "False", "Conflict"), ("Synced", "False", "Conflict"), ("Conflict", "True", "Conflict")]
    patch = status_patch(conflict, {"definitionId": "d1"}, generation=1, now=NOW)
    assert patch["definitionId"] is None  # never the operator's: the finalizer will not delete it

    suspended = Outcome(result=Result.suspended, message=holds.SUSPENDED, definition_id="d1")
    second = conditions(suspended, first, generation=2, now="2026-12-02T00:00:00Z")
    assert [(c["type"], c["status"], c["reason"]) for c in second] == [
        ("Ready", "Unknown", "Suspended"), ("Synced", "False", "Suspended"), ("Suspended", "True", "Suspended")]
    assert second[1]["lastTransitionTime"] == NOW  # Synced stayed False
    kept = status_patch(suspended, {"definitionId": "d1"}, generation=2, now=NOW)
    assert "definitionId" not in kept or kept["definitionId"] == "d1"

    resumed = Outcome(result=Result.unchanged, message="live definition matches the spec", definition_id="d1")
    third = conditions(resumed, second, generation=3, now="2026-12-03T00:00:00Z")
    assert [c["type"] for c in third] == ["Ready", "Synced"]
