"""Azurite and gcp-storage-emulator on loopback, for the azure and gcp adapter tests (and
``bench/bench_object_store.py``).

Azurite is the npm package ``azurite``, installed into ``$RECONCILER_TEST_NODE_DIR`` (default
``~/.cache/reconciler-test-node``) by ``.ci/run``, or here on first use when npm is on PATH. It is
started with ``--blobPort 0`` and reports the port it bound; ``--skipApiVersionCheck`` lets the
newest azure-storage-blob talk to it and ``--disableTelemetry`` keeps it from calling home.
gcp-storage-emulator (PyPI) runs as ``python -m gcp_storage_emulator`` on a free loopback port,
in memory. Each helper class also reads and writes objects directly with the clouds' own client
libraries, for a test's setup and checks.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from reconciler.service import ids
from reconciler.service.testing import stop_process

NODE_DIR_ENV = "RECONCILER_TEST_NODE_DIR"
AZURITE_VERSION = "3"
# Azurite's documented development account (a public, fixed key: not a secret).
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def node_dir() -> Path:
    return Path(os.environ.get(NODE_DIR_ENV) or Path.home() / ".cache" / "reconciler-test-node")


def azurite_blob_command() -> Path:
    """``azurite-blob`` from the cache directory, installing the npm package there if missing."""
    found = node_dir() / "node_modules" / ".bin" / "azurite-blob"
    if found.exists():
        return found
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(f"Azurite is not installed in {node_dir()} and npm is not on PATH; install Node.js 20 "
                           f"and run: npm install --prefix {node_dir()} azurite@{AZURITE_VERSION}")
    node_dir().mkdir(parents=True, exist_ok=True)
    subprocess.run([npm, "install", "--prefix", str(node_dir()), "--no-audit", "--no-fund", "--silent",
                    f"azurite@{AZURITE_VERSION}"], check=True, timeout=600)
    if not found.exists():
        raise RuntimeError(f"npm installed azurite but {found} is missing")
    return found


class Azurite:
    def __init__(self, port: int) -> None:
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}/{ACCOUNT}"
        self.connection_string = (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
                                  f"BlobEndpoint={self.endpoint};")

    def client(self) -> Any:
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)

    @staticmethod
    def url(container: str, blob: str) -> str:
        """The URL as DataRobot's documentation writes it; the credential's BlobEndpoint routes it here."""
        return f"https://{ACCOUNT}.blob.core.windows.net/{container}/{blob}"

    def create_container(self) -> str:
        name = f"c-{ids.new_id()}"
        self.client().create_container(name)
        return name

    def put(self, container: str, blob: str, data: bytes) -> None:
        self.client().get_blob_client(container, blob).upload_blob(data, overwrite=True)

    def get(self, container: str, blob: str) -> bytes:
        data: bytes = self.client().get_blob_client(container, blob).download_blob().readall()
        return data

    def names(self, container: str) -> list[str]:
        return sorted(b.name for b in self.client().get_container_client(container).list_blobs())


@contextlib.contextmanager
def azurite(location: Path) -> Iterator[Azurite]:
    location.mkdir(parents=True, exist_ok=True)
    log = location / "azurite.log"
    with open(log, "wb") as sink:
        process = subprocess.Popen(
            [str(azurite_blob_command()), "--blobHost", "127.0.0.1", "--blobPort", "0", "--skipApiVersionCheck",
             "--disableTelemetry", "--location", str(location), "--silent"],
            stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        port = 0
        while not port:
            text = log.read_text(errors="replace")
            marker = "successfully listens on http://127.0.0.1:"
            if marker in text:
                port = int(text.split(marker, 1)[1].split()[0].strip().rstrip("/"))
            elif process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Azurite did not start (exit {process.poll()}): {text[-2000:]}")
            else:
                time.sleep(0.1)
        yield Azurite(port)
    finally:
        stop_process(process, timeout=10)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class GcsEmulator:
    def __init__(self, port: int) -> None:
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"

    @contextlib.contextmanager
    def environment(self) -> Iterator[None]:
        """``STORAGE_EMULATOR_HOST`` set for this process (the service's documented GCS endpoint
        setting), restored afterwards."""
        from reconciler.service.runner.adapters.gcp import EMULATOR_ENV

        before = os.environ.get(EMULATOR_ENV)
        os.environ[EMULATOR_ENV] = self.endpoint
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(EMULATOR_ENV, None)
            else:
                os.environ[EMULATOR_ENV] = before

    def client(self) -> Any:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(project="test", credentials=AnonymousCredentials(),
                              client_options={"api_endpoint": self.endpoint})

    def create_bucket(self) -> str:
        name = f"b-{ids.new_id()}"
        self.client().create_bucket(name)
        return name

    def put(self, bucket: str, key: str, data: bytes) -> None:
        self.client().bucket(bucket).blob(key).upload_from_string(data)

    def get(self, bucket: str, key: str) -> bytes:
        data: bytes = self.client().bucket(bucket).blob(key).download_as_bytes()
        return data

    def names(self, bucket: str) -> list[str]:
        return sorted(b.name for b in self.client().list_blobs(bucket))

    @staticmethod
    def service_account_key(project: str = "reconciler-test") -> dict[str, str]:
        """A service account key file's content, with a freshly generated RSA key, shaped as the
        JSON the Google Cloud console downloads."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        email = f"scorer@{project}.iam.gserviceaccount.com"
        return {"type": "service_account", "project_id": project, "private_key_id": ids.new_id(),
                "private_key": pem, "client_email": email, "client_id": "1" * 21,
                "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": "https://oauth2.googleapis.com/token",
                "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
                "client_x509_cert_url": f"https://www.googleapis.com/robot/v1/metadata/x509/{email}",
                "universe_domain": "googleapis.com"}


@contextlib.contextmanager
def gcs_emulator() -> Iterator[GcsEmulator]:
    """gcp-storage-emulator in memory on a free loopback port (a port taken between the probe and
    the start is retried with another)."""
    for _attempt in range(3):
        port = _free_port()
        with tempfile.TemporaryFile() as log:
            process = subprocess.Popen([sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1",
                                        "--port", str(port), "--in-memory", "--quiet"],
                                       stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            try:
                if not _answers(process, port):
                    log.seek(0)
                    error = log.read().decode(errors="replace")
                    if "Address already in use" in error:
                        continue
                    raise RuntimeError(f"gcp-storage-emulator did not start (exit {process.poll()}): {error[-2000:]}")
                yield GcsEmulator(port)
                return
            finally:
                stop_process(process, timeout=10)
    raise RuntimeError("gcp-storage-emulator found no free port in 3 attempts")


def _answers(process: subprocess.Popen[bytes], port: int) -> bool:
    """Whether the emulator answers its health check within 30 s (False when it exited)."""
    deadline = time.monotonic() + 30
    while process.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                return True
        time.sleep(0.1)
    return False
