"""Schemathesis with every check over every operation of the service's own OpenAPI document,
against a served instance (uvicorn on 127.0.0.1): examples, coverage (boundaries, negative
data, undeclared methods) and fuzzing per operation, then stateful sequences along the links
schemathesis infers. Zero failures expected: no 5xx; every status, content type, header and body
as documented; schema-valid requests accepted and schema-invalid ones refused; 405 with an
``Allow`` that lists the path's methods. Deterministic (derandomized) and bounded.

The settings (and the few per-operation exceptions, each with its reason) live in
``schemathesis.toml`` beside this file, which also runs the same checks from the command line.

The schema is loaded when the module is collected, from the app's own ``openapi()`` (the test
then checks that the server serves exactly that document): schemathesis' lazy
``from_fixture`` loader does not work with pytest 9 (it sets ``Function._nodeid``, which pytest
9.2 no longer has).
"""

from __future__ import annotations

import re
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from reconciler.service.app import create_app
from reconciler.service.settings import ServiceSettings
from reconciler.service.testing import LocalServer

CONFIG = SchemathesisConfig.from_path(Path(__file__).with_name("schemathesis.toml"))
NO_HEALTH_CHECKS = list(HealthCheck)
HEX24 = re.compile(r"[0-9a-fA-F]{24}")  # the job-spec schema is large: generation is slow, not wrong


def _document() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="reconciler-openapi-") as tmp:
        app = create_app(ServiceSettings(db_url=f"sqlite:///{tmp}/doc.db"))
        try:
            document: dict[str, Any] = app.openapi()
        finally:
            app.state.store.close()
    return document


DOCUMENT = _document()
# schemathesis' pytest calls do not read `request-timeout` from the config; the same value here
REQUEST_TIMEOUT = CONFIG.projects.default.request_timeout
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[LocalServer]:
    """``reconciler serve`` in a process of its own: server and schemathesis then use a core each."""
    with LocalServer(separate_process=True) as server:
        yield server


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    """One kept-alive connection for every case (a session per case costs a TCP connection each)."""
    with requests.Session() as opened:
        yield opened


@pytest.fixture(scope="module")
def live_definition(fuzz_server: LocalServer) -> str:
    """A definition that exists: GET and PATCH cases are sent to it (see below)."""
    with httpx.Client(base_url=fuzz_server.api_url) as client:
        deployment = client.post("deployments/", json={"label": "fuzz"}).json()["id"]
        made = client.post("batchPredictionJobDefinitions/", json={
            "name": "fuzz-target", "deploymentId": deployment, "intakeSettings": {"type": "localFile"}})
        assert made.status_code == 202, made.text
        return str(made.json()["id"])


def test_the_server_serves_the_fuzzed_document(fuzz_server: LocalServer) -> None:
    assert httpx.get(fuzz_server.url + "/openapi.json").json() == DOCUMENT


def test_every_check_and_phase_is_on() -> None:
    project = CONFIG.projects.default
    checks = project.checks
    names = [name for name in type(checks).__slots__ if not name.startswith("_") and name != "max_response_time"]
    assert names and all(getattr(checks, name).enabled for name in names), names
    assert all(getattr(project.phases, phase).enabled for phase in ("examples", "coverage", "fuzzing", "stateful"))
    assert project.generation.deterministic


@schema.parametrize()
@settings(max_examples=5, deadline=None, derandomize=True, database=None, suppress_health_check=NO_HEALTH_CHECKS)
def test_every_operation_keeps_its_contract(case: schemathesis.Case, fuzz_server: LocalServer,
                                           live_definition: str, session: requests.Session) -> None:
    # A generated id names no definition, and a PATCH to none is a 404 before its body is read:
    # well-formed ids are replaced by one that exists, so bodies reach validation and the merge.
    given = case.path_parameters.get("definition_id") if case.path_parameters else None
    if case.method in ("GET", "PATCH") and isinstance(given, str) and HEX24.fullmatch(given):
        case.path_parameters["definition_id"] = live_definition  # type: ignore[index]
    case.call_and_validate(base_url=fuzz_server.url, session=session, timeout=REQUEST_TIMEOUT)


def _forget_everything(server: LocalServer) -> None:
    """Delete what earlier scenarios created, so each scenario starts alike: a derandomized
    scenario repeats its names and ids, and a 409 for a name left by the last one, or a job list
    that an earlier scenario filled, would change what it draws next (schemathesis follows a link
    only when its value can be extracted from the response: hypothesis calls that flaky). The API
    deletes everything but jobs (DataRobot's DELETE of a job aborts it, it stays listed), so the
    job rows go straight from the server's SQLite file."""
    with httpx.Client(base_url=server.api_url, timeout=10) as client:
        for path in ("batchPredictionJobDefinitions/", "datasets/", "credentials/", "externalDataStores/",
                     "deployments/"):
            while items := client.get(path, params={"limit": 1000}).json()["data"]:
                for item in items:
                    item_id = item.get("id") or item["datasetId"]
                    assert client.delete(f"{path}{item_id}/").status_code == 204
    database = sqlite3.connect(server.db_url.removeprefix("sqlite:///"), timeout=30)
    try:
        with database:
            database.execute("DELETE FROM jobs")
    finally:
        database.close()
    with httpx.Client(base_url=server.api_url, timeout=10) as client:
        assert client.get("batchPredictions/").json()["data"] == []


def test_stateful_sequences_keep_the_contract(fuzz_server: LocalServer) -> None:
    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            _forget_everything(fuzz_server)

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"base_url": fuzz_server.url, "timeout": REQUEST_TIMEOUT}

    Workflow.run(settings=settings(max_examples=15, stateful_step_count=6, deadline=None, derandomize=True,
                                   database=None, suppress_health_check=NO_HEALTH_CHECKS))
