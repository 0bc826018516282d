"""Helpers for the operator tests (fixtures are in conftest.py). Real components for the operator tests: a kube-apiserver + etcd on loopback
(``k8s-test-cluster.sh``), the local service over HTTP (``LocalServer``, with a token), and
``reconciler operator`` as a child process, exactly as a Deployment would run it.

When the apiserver binary has not been built, the tests are skipped with the command to build it,
or fail when ``CI=true``. Namespaces are never deleted (this server has no namespace controller,
so deletion never completes): every test makes its own.
"""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

kubernetes = pytest.importorskip("kubernetes")

from reconciler.operator import crd, opening  # noqa: E402
from reconciler.operator.config import ApiSecret, OperatorConfig  # noqa: E402
from reconciler.service.testing import LocalServer, stop_process  # noqa: E402
from reconciler.session import Session  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TOKEN = "tok-" + secrets.token_hex(16)  # searched for in logs, events and status: it must never appear
RESYNC = 2.0  # seconds between drift checks in these tests


def find_script() -> Path:
    """``$K8S_TEST_CLUSTER`` (relative to the repo root), else ``../shared/tools/``, else /work/shared/tools/."""
    configured = REPO / os.environ.get("K8S_TEST_CLUSTER", "../shared/tools/k8s-test-cluster.sh")
    for candidate in (configured, Path("/work/shared/tools/k8s-test-cluster.sh")):
        if candidate.is_file():
            return candidate.resolve()
    return configured


def unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the Kubernetes test cluster is required in CI: {reason}")
    pytest.skip(f"{reason} (set CI=true to make this an error)")


def wait_for(predicate: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.2, what: str = "") -> Any:
    """Poll until ``predicate()`` is truthy; return its value, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what or predicate!r} (last: {last!r})")


@dataclass
class Cluster:
    kubeconfig: Path
    api: Any  # kubernetes.client.ApiClient

    @property
    def core(self) -> Any:
        return kubernetes.client.CoreV1Api(self.api)

    @property
    def custom(self) -> Any:
        return kubernetes.client.CustomObjectsApi(self.api)


def install_crds(api: Any) -> None:
    ext = kubernetes.client.ApiextensionsV1Api(api)
    for body in (crd.crd(), *crd.peering_crds()):
        ext.create_custom_resource_definition(body)
    for body in (crd.crd(), *crd.peering_crds()):
        name = body["metadata"]["name"]

        def established(name: str = name) -> bool:
            conditions = ext.read_custom_resource_definition(name).status.conditions or []
            return any(c.type == "Established" and c.status == "True" for c in conditions)

        wait_for(established, timeout=30, what=f"CRD {name} Established")


@dataclass
class Service:
    server: LocalServer
    http: httpx.Client

    @property
    def api_url(self) -> str:
        return self.server.api_url

    def find(self, name: str) -> list[dict[str, Any]]:
        """Every live definition with exactly this name."""
        response = self.http.get("batchPredictionJobDefinitions/", params={"searchName": name, "limit": 100})
        response.raise_for_status()
        return [d for d in response.json()["data"] if d["name"] == name]

    def get(self, definition_id: str) -> dict[str, Any] | None:
        response = self.http.get(f"batchPredictionJobDefinitions/{definition_id}/")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return dict(response.json())

    def patch(self, definition_id: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.patch(f"batchPredictionJobDefinitions/{definition_id}/", json=body)
        response.raise_for_status()
        return dict(response.json())

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post("batchPredictionJobDefinitions/", json=body)
        response.raise_for_status()
        return dict(response.json())


@dataclass
class Namespace:
    name: str
    cluster: Cluster
    secret: str = "reconciler-api"

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        body = {**manifest, "metadata": {**manifest["metadata"], "namespace": self.name}}
        return dict(self.cluster.custom.create_namespaced_custom_object(
            crd.GROUP, crd.VERSION, self.name, crd.PLURAL, body))

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            return dict(self.cluster.custom.get_namespaced_custom_object(
                crd.GROUP, crd.VERSION, self.name, crd.PLURAL, name))
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        self.cluster.custom.patch_namespaced_custom_object(
            crd.GROUP, crd.VERSION, self.name, crd.PLURAL, name, {"spec": spec})

    def delete(self, name: str) -> None:
        self.cluster.custom.delete_namespaced_custom_object(crd.GROUP, crd.VERSION, self.name, crd.PLURAL, name)

    def condition(self, name: str, kind: str) -> dict[str, Any] | None:
        obj = self.get(name) or {}
        for cond in (obj.get("status") or {}).get("conditions") or []:
            if cond.get("type") == kind:
                return dict(cond)
        return None

    def events(self, name: str | None = None) -> list[Any]:
        items = self.cluster.core.list_namespaced_event(self.name).items
        return [e for e in items if name is None or e.involved_object.name == name]

    def set_secret(self, *, endpoint: str, token: str) -> None:
        data = {"endpoint": base64.b64encode(endpoint.encode()).decode(),
                "token": base64.b64encode(token.encode()).decode()}
        body = {"metadata": {"name": self.secret, "namespace": self.name}, "data": data}
        try:
            self.cluster.core.create_namespaced_secret(self.name, body)
        except kubernetes.client.ApiException as exc:
            if exc.status != 409:
                raise
            self.cluster.core.patch_namespaced_secret(self.secret, self.name, {"data": data})


@dataclass
class OperatorProcess:
    process: subprocess.Popen[bytes]
    log: Path
    args: list[str] = field(default_factory=list)

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            stop_process(self.process, timeout=20)  # SIGTERM: kopf exits cleanly and leaves the peering


DEPLOYMENT = "64b0c0ffee000000000d0001"
CREDENTIAL = "64b0c0ffee000000000c0001"


def seed(api_url: str, token: str) -> None:
    """The deployment and credential the test manifests reference (the service checks they exist)."""
    headers = {"Authorization": f"Token {token}"}
    for path, body in (("deployments/", {"id": DEPLOYMENT, "label": "operator-tests"}),
                       ("credentials/", {"id": CREDENTIAL, "name": "operator-tests"})):
        response = httpx.post(api_url + path, json=body, headers=headers, timeout=10)
        assert response.status_code in (201, 409), response.text


def operator_session(api_url: str, **config: Any) -> Session:
    """The session a running operator opens for the API at ``api_url`` (operator.opening), from an
    ``OperatorConfig`` with ``config`` (project, target, policy_files, policy_target, notify)."""
    settings = OperatorConfig(secret=ApiSecret("ns", "api"), **config)
    return opening.open_session(settings, opening.compile_rules(settings), endpoint=api_url)


def manifest(name: str, **spec: Any) -> dict[str, Any]:
    """A valid custom resource; ``spec`` keys override the defaults (``None`` removes one)."""
    body: dict[str, Any] = {
        "enabled": True,
        "schedule": {"cron": "0 2 * * *"},
        "batchPredictionJob": {
            "deploymentId": DEPLOYMENT,
            "numConcurrent": 4,
            "intakeSettings": {"type": "s3", "url": "s3://bucket/in.csv", "credentialId": CREDENTIAL},
            "outputSettings": {"type": "s3", "url": "s3://bucket/out.csv", "credentialId": CREDENTIAL},
        },
    }
    for key, value in spec.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return {"apiVersion": f"{crd.GROUP}/{crd.VERSION}", "kind": crd.KIND, "metadata": {"name": name}, "spec": body}


def load_yaml(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
