"""The validating admission webhook: ``kubectl apply`` of a resource that ``reconciler validate``
would refuse (an unknown field such as ``num_concurrent``, a cron string the API cannot express)
is refused at once, with the same messages, instead of being stored and reported later as
``Ready=False Invalid``.

Why through kopf's own webhook machinery: kopf serves the HTTPS endpoint, routes the review to the
handler, builds the AdmissionReview response and, when asked (``managed``), creates and keeps a
ValidatingWebhookConfiguration pointed at itself. What is ours: the decision (:func:`review`, pure,
on :func:`reconciler.operator.decide.parse`, the operator's own validation) and the
self-signed certificate, made with ``cryptography`` instead of kopf's ``certbuilder``/``oscrypto``
(unmaintained; oscrypto cannot load OpenSSL 3's libcrypto).

Only a changed spec is checked: the operator itself updates every resource (finalizer, kopf's
annotations), and a resource stored before the webhook existed must still be finalized.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from reconciler.contract import keys
from reconciler.operator import crd, decide
from reconciler.operator.config import Webhook
from reconciler.operator.ownership import outside_scope
from reconciler.specs.scope import Scope
from reconciler.specs.validate import validate_documents

__all__ = ["HANDLER_ID", "AdmissionAnswer", "RefusalsAreWarnings", "configure", "register", "review", "self_signed", "server"]

HANDLER_ID = "validate"  # also the URL path (kopf serves each handler at /<id>)
# An AdmissionReview status message goes back to kubectl whole; kopf's 30 s timeout is the bound in time.
_MAX_MESSAGE = 8192


@dataclass(frozen=True)
class AdmissionAnswer:
    """``denied``: the message kubectl shows (None: allowed); ``warnings``: kubectl's ``Warning:`` lines."""

    denied: str | None = None
    warnings: tuple[str, ...] = field(default=())


def _changed(new: Mapping[str, Any], old: Mapping[str, Any] | None) -> bool:
    if old is None:
        return True
    return bool(new.get("spec") != old.get("spec")
                or (new.get("metadata") or {}).get("labels") != (old.get("metadata") or {}).get("labels"))


def review(operation: str, new: Mapping[str, Any] | None, old: Mapping[str, Any] | None, *,
           scope: Scope | None = None) -> AdmissionAnswer:
    """Allow or deny one CREATE or UPDATE of a resource. Pure (no API call: the webhook must answer
    within the API server's timeout, and a definition's live state is the operator's business)."""
    if operation not in ("CREATE", "UPDATE") or new is None:
        return AdmissionAnswer()
    meta = new.get("metadata") or {}
    if meta.get("deletionTimestamp") or not _changed(new, old):
        return AdmissionAnswer()  # the operator's own metadata writes, or a finalizer going away
    where = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
    try:
        manifest = decide.parse(new)
    except decide.Invalid as exc:
        problems = str(exc).splitlines()
        message = (f"{keys.kind()} {where}: {len(problems)} error(s), the checks of `reconciler validate`:\n"
                   + "\n".join(problems))
        return AdmissionAnswer(denied=message[:_MAX_MESSAGE])
    report = validate_documents([decide.document_from_body(new)], files=1)
    warnings = [f"{w.field}: {w.message}" if w.field else w.message for w in report.warnings]
    conflict = outside_scope(manifest.definition_name, manifest.spec.previousNames, scope)
    if conflict is not None:
        warnings.append(f"the operator will not reconcile this resource (condition Conflict): {conflict}")
    return AdmissionAnswer(warnings=tuple(w[:1024] for w in warnings))


class RefusalsAreWarnings(logging.Filter):
    """kopf logs a refused review as an ERROR ("Webhook 'validate' failed permanently: ..."); it is
    the user's invalid resource, not a failure of the operator, so it is logged as a WARNING (an
    alert on the operator's errors must not fire on a typo in someone's manifest)."""

    PREFIX = f"Webhook {HANDLER_ID!r} failed permanently"

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR and record.getMessage().startswith(self.PREFIX):
            record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        return True


def register(registry: kopf.OperatorRegistry, scope: Scope | None) -> None:
    """The ``@kopf.on.validate`` handler for CREATE and UPDATE of the custom resource."""
    kopf_objects = logging.getLogger("kopf.objects")
    if not any(isinstance(f, RefusalsAreWarnings) for f in kopf_objects.filters):
        kopf_objects.addFilter(RefusalsAreWarnings())

    @kopf.on.validate(crd.GROUP, crd.VERSION, crd.PLURAL, id=HANDLER_ID, registry=registry,
                      operations=["CREATE", "UPDATE"])
    def validate(**kwargs: Any) -> None:
        """kopf passes operation, new, old and the mutable ``warnings`` list (kubectl's Warning: lines)."""
        answer = review(str(kwargs.get("operation") or ""), kwargs.get("new"), kwargs.get("old"), scope=scope)
        kwargs["warnings"].extend(answer.warnings)
        if answer.denied is not None:
            raise kopf.AdmissionError(answer.denied, code=422)


class _Server(kopf.WebhookServer):  # type: ignore[misc]
    """kopf's HTTPS server, with its self-signed certificate made by :func:`self_signed`."""

    @staticmethod
    def build_certificate(hostnames: Collection[str], password: str | None = None) -> tuple[bytes, bytes]:
        return self_signed(hostnames, password=password)


def server(hook: Webhook) -> kopf.WebhookServer:
    """The webhook server: the certificate from ``cert_dir`` (re-read when the files change, e.g. a
    renewed Secret), or a fresh self-signed one, which kopf loads and never writes to disk."""
    files: dict[str, Any] = {}
    if hook.cert_dir is not None:
        files = {"certfile": hook.cert_dir / "tls.crt", "pkeyfile": hook.cert_dir / "tls.key"}
        if (hook.cert_dir / "ca.crt").is_file():
            files["cafile"] = hook.cert_dir / "ca.crt"
    return _Server(addr=hook.listen, port=hook.port, host=hook.host, **files)


def configure(settings: kopf.OperatorSettings, hook: Webhook) -> None:
    settings.admission.server = server(hook)
    settings.admission.managed = hook.managed


def self_signed(hostnames: Collection[str], *, password: str | None = None, days: int = 365) -> tuple[bytes, bytes]:
    """A self-signed serving certificate (also its own CA: the API server trusts exactly it) for
    ``hostnames`` (IP addresses become IP SANs, the rest DNS SANs). PEM certificate and key."""
    names = [h for h in dict.fromkeys(hostnames) if h and h not in ("0.0.0.0", "::")]
    if not names:
        raise ValueError("a webhook certificate needs at least one host name or address")
    sans: list[x509.GeneralName] = []
    for name in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, key_cert_sign=True,
                                         content_commitment=False, data_encipherment=False, key_agreement=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    return cert.public_bytes(serialization.Encoding.PEM), key_pem
