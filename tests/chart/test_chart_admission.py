"""The chart's admission webhook and ownership scope, rendered by Helm's engine and checked with
kubernetes-validate (helpers in test_chart.py); the webhook itself runs in test_operator_admission.py."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography import x509

from reconciler.operator import admission, crd

from .test_chart import CHART, by_kind, helm, render, validate_all


def _operator(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return next(d for d in by_kind(docs, "Deployment") if d["metadata"]["name"] == "rel-reconciler")


def _container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return dict(_operator(docs)["spec"]["template"]["spec"]["containers"][0])


def test_the_webhook_is_served_by_the_operator_behind_a_service_with_a_generated_certificate() -> None:
    docs = render()
    validate_all(docs)
    (config,) = by_kind(docs, "ValidatingWebhookConfiguration")
    (hook,) = config["webhooks"]
    assert hook["failurePolicy"] == "Fail" and hook["sideEffects"] == "None"
    (rule,) = hook["rules"]
    assert rule == {"apiGroups": [crd.GROUP], "apiVersions": [crd.VERSION], "resources": [crd.PLURAL],
                    "operations": ["CREATE", "UPDATE"], "scope": "Namespaced"}
    client = hook["clientConfig"]
    assert client["service"] == {"name": "rel-reconciler-webhook", "namespace": "ops",
                                 "path": f"/{admission.HANDLER_ID}", "port": 443}

    # The Service reaches the operator's webhook port.
    service = next(s for s in by_kind(docs, "Service") if s["metadata"]["name"] == "rel-reconciler-webhook")
    (port,) = service["spec"]["ports"]
    container = _container(docs)
    assert port["targetPort"] == "webhook"
    assert {"name": "webhook", "containerPort": 9443, "protocol": "TCP"} in container["ports"]
    assert service["spec"]["selector"] == _operator(docs)["spec"]["selector"]["matchLabels"]
    assert "--webhook-port=9443" in container["args"] and "--webhook-cert-dir=/etc/reconciler/webhook" in container["args"]
    assert not any(a.startswith("--webhook-configuration") for a in container["args"])  # the chart's own, not kopf's

    # The mounted Secret holds a certificate for the Service's DNS name, signed by the CA the API server trusts.
    (secret,) = [s for s in by_kind(docs, "Secret") if s["metadata"]["name"] == "rel-reconciler-webhook-tls"]
    assert secret["type"] == "kubernetes.io/tls"
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/etc/reconciler/webhook")
    volume = next(v for v in _operator(docs)["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == secret["metadata"]["name"] and mount["readOnly"]
    assert secret["data"]["ca.crt"] == client["caBundle"]
    ca = x509.load_pem_x509_certificate(base64.b64decode(client["caBundle"]))
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert "rel-reconciler-webhook.ops.svc" in names
    assert b"PRIVATE KEY" in base64.b64decode(secret["data"]["tls.key"])


def test_an_existing_certificate_secret_and_its_ca() -> None:
    ca = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").decode()
    values = {"operator": {"admission": {"certificate": {"existingSecret": "webhook-cert", "caBundle": ca}}}}
    docs = render(values)
    validate_all(docs)
    assert not [s for s in by_kind(docs, "Secret") if "webhook" in s["metadata"]["name"]]
    (config,) = by_kind(docs, "ValidatingWebhookConfiguration")
    assert config["webhooks"][0]["clientConfig"]["caBundle"] == ca
    volumes = _operator(docs)["spec"]["template"]["spec"]["volumes"]
    assert {"name": "webhook-tls", "secret": {"secretName": "webhook-cert"}} in volumes
    without_ca = {"operator": {"admission": {"certificate": {"existingSecret": "webhook-cert"}}}}
    with helm.Chart.load(str(CHART)) as chart, pytest.raises(helm.HelmError, match=r"caBundle .* is required"):
        chart.render(without_ca, name="rel", namespace="ops")


def test_the_webhook_can_be_left_out_and_the_scope_is_passed_on() -> None:
    docs = render({"operator": {"admission": {"enabled": False},
                                "scope": {"namePrefix": "k8s-", "names": ["Churn: nightly"]}}})
    validate_all(docs)
    assert by_kind(docs, "ValidatingWebhookConfiguration") == []
    assert not [s for s in by_kind(docs, "Service") if s["metadata"]["name"].endswith("-webhook")]
    args = _container(docs)["args"]
    assert not any(a.startswith("--webhook") for a in args)
    assert "--scope-prefix=k8s-" in args and "--scope-name=Churn: nightly" in args
    assert not any(a.startswith("--scope") for a in _container(render())["args"])  # no scope by default


def test_lint_is_clean_with_the_webhook_options() -> None:
    for values in ({}, {"operator": {"admission": {"failurePolicy": "Ignore"}, "scope": {"namePrefix": "k8s-"}}}):
        report = helm.lint(str(CHART), values, strict=True, namespace="ops", kube_version="v1.20.0")
        assert report["errors"] == [] and [m for m in report["messages"] if m["severity"] >= 2] == []
    with helm.Chart.load(str(CHART)) as chart, pytest.raises(helm.HelmError):
        chart.validate_schema({"operator": {"admission": {"failurePolicy": "Sometimes"}}})
