"""A TLS failure is named as one, at once: the service under uvicorn on 127.0.0.1 with a
self-signed certificate made here (``cryptography``), reached through the CLI as a user would."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.service.app import create_app
from reconciler.service.settings import ServiceSettings
from reconciler.service.testing import LocalServer

TOKEN = "tls-test-token-5c1d"


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for ``localhost`` only (no IP address in it), signed by its own key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    directory = tmp_path_factory.mktemp("tls")
    cert_file, key_file = _self_signed(directory)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    service = create_app(ServiceSettings(db_url=f"sqlite:///{directory}/local.db", token=TOKEN))
    server = uvicorn.Server(uvicorn.Config(service, log_level="warning", access_log=False, lifespan="on",
                                           ssl_certfile=str(cert_file), ssl_keyfile=str(key_file)))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    trusted = ssl.create_default_context(cafile=str(cert_file))
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"https://localhost:{port}/api/v2/version/", verify=trusted, timeout=2)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    yield port, cert_file
    server.should_exit = True
    thread.join(timeout=10)


def _list(endpoint: str, tmp_path: Path, **env: str) -> Any:
    environ = {"DATAROBOT_ENDPOINT": endpoint, "DATAROBOT_API_TOKEN": TOKEN, "NO_COLOR": "1",
               "RECONCILER_LOCAL_DB_URL": f"sqlite:///{tmp_path}/unused.db", "SSL_CERT_FILE": None,
               "SSL_CERT_DIR": None, **env}
    started = time.monotonic()
    result = CliRunner().invoke(app, ["list", "-o", "json"], env=environ)  # type: ignore[arg-type]
    return result, time.monotonic() - started


def test_a_self_signed_certificate_is_named_at_once_and_ssl_cert_file_fixes_it(
        tls_server: tuple[int, Path], tmp_path: Path) -> None:
    port, cert_file = tls_server
    endpoint = f"https://localhost:{port}/api/v2/"
    refused, took = _list(endpoint, tmp_path)
    assert refused.exit_code == 1
    assert f"TLS failure with localhost:{port}: certificate verify failed: the server's certificate is " \
           "self-signed" in refused.stderr
    assert "SSL_CERT_FILE" in refused.stderr and "check that the service is running" not in refused.stderr
    assert "retrying" not in refused.stderr and took < 5  # never retried: a retry cannot fix a certificate

    trusted, _ = _list(endpoint, tmp_path, SSL_CERT_FILE=str(cert_file))  # what the hint says works
    assert trusted.exit_code == 0, trusted.stderr
    assert trusted.stdout.strip() == "[]"


def test_a_certificate_for_another_host_is_named(tls_server: tuple[int, Path], tmp_path: Path) -> None:
    port, cert_file = tls_server
    refused, _ = _list(f"https://127.0.0.1:{port}/api/v2/", tmp_path, SSL_CERT_FILE=str(cert_file))
    assert refused.exit_code == 1
    assert "the certificate is for another host name" in refused.stderr
    assert "use the endpoint's host name as its certificate names it" in refused.stderr


def test_https_to_a_plain_http_port_is_a_handshake_failure(tmp_path: Path) -> None:
    with LocalServer(token=TOKEN) as plain:
        refused, took = _list(f"https://127.0.0.1:{plain.port}/api/v2/", tmp_path)
    assert refused.exit_code == 1 and took < 5
    assert "the TLS handshake failed" in refused.stderr and "(not plain http)" in refused.stderr
