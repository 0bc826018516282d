"""Response shapes the contract (``schemas/``) does not define, for the OpenAPI document (``/docs``)
and for schemathesis' conformance checks. A definition's is the contract's
``api-definition-response`` (``openapi.RESPONSE_SCHEMAS``), not restated here.

Routes build plain dicts (``render.py``) and return them as ``JSONResponse``; FastAPI documents
these models but does not re-validate each response, which keeps lists of 100 items cheap.
``extra="allow"`` because the API adds fields over time and clients must tolerate them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorBody(_Open):
    message: str
    errors: dict[str, str] | None = Field(default=None, description="Field path -> what was expected.")


class UserRef(_Open):
    username: str
    userId: str
    fullName: str | None


class _ListOut(_Open):
    count: int
    next: str | None
    previous: str | None
    totalCount: int


class JobLinks(_Open):
    self: str


class JobOut(_Open):
    id: str
    status: str
    statusDetails: str
    percentageCompleted: float
    elapsedTimeSec: int
    jobSpec: dict[str, Any]
    links: JobLinks


class JobList(_ListOut):
    data: list[JobOut]


class ResourceOut(_Open):
    id: str
    created: str
    createdBy: UserRef


class ResourceList(_ListOut):
    data: list[ResourceOut]


class VersionOut(_Open):
    major: int
    minor: int
    versionString: str


class HealthOut(_Open):
    status: str
    schemaVersion: int


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 404, 409, 413, 415, 422)
}
