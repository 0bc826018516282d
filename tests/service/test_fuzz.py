"""Schemathesis over the app's own OpenAPI document, against a served instance.

Every generated request (valid and invalid bodies, odd query strings, unknown ids) must get a
non-5xx answer whose status is documented, whose content type is declared and whose body fits
the documented schema. Bounded: a few dozen examples per operation.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from reconciler.service.testing import LocalServer


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[LocalServer]:
    with LocalServer() as server:
        yield server


@pytest.fixture(scope="module")
def api_schema(fuzz_server: LocalServer) -> schemathesis.BaseSchema:
    config = SchemathesisConfig()
    # Hypothesis fuzzing only: the "coverage" phase enumerates every boundary of the large
    # job-spec schema and alone takes minutes on two cores.
    config.projects.default.phases.update(phases=["fuzzing"])
    return schemathesis.openapi.from_url(fuzz_server.url + "/openapi.json", config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_no_server_errors_and_conforming_responses(case: schemathesis.Case, fuzz_server: LocalServer) -> None:
    case.call_and_validate(base_url=fuzz_server.url, checks=[
        not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance])
