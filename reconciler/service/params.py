"""Query parameters of the list routes, with the limits the server enforces.

Each limit is declared on the parameter itself, so FastAPI both checks it (a 422 that names the
parameter, see ``app._bad_params``) and publishes it in the OpenAPI document: a client and
schemathesis read the same bounds the server applies. Unbounded filters were a 500 before
(SQLite refuses a ``LIKE`` pattern longer than 50,000 bytes).
"""

from __future__ import annotations

import enum
from typing import Annotated, Final, Literal

from fastapi import Query

from reconciler.contract import schemas
from reconciler.service.records import JOB_STATUSES

__all__ = ["ID_PATTERN", "NAME_MAX", "DefinitionFilter", "DeploymentFilter", "JobOrder", "JobStatus", "SearchName",
           "StatusFilter"]

ID_PATTERN: Final = "^[0-9a-fA-F]{24}$"
# searchName is a substring of a name: never longer than the longest name the API takes.
NAME_MAX: Final[int] = int(schemas.get("definition-name")["maxLength"])

JobStatus = enum.StrEnum("JobStatus", {status: status for status in JOB_STATUSES})  # type: ignore[misc]
"""The job states a ``status`` filter may name (records.JOB_STATUSES), as an enum for the schema."""

SearchName = Annotated[str | None, Query(
    max_length=NAME_MAX, description=f"Case-insensitive substring of the name (at most {NAME_MAX} characters).")]
DeploymentFilter = Annotated[str | None, Query(
    pattern=ID_PATTERN, description="Only items of this deployment (24 hex digits).")]
DefinitionFilter = Annotated[str | None, Query(
    pattern=ID_PATTERN, description="Only jobs started from this job definition (24 hex digits).")]
StatusFilter = Annotated[list[JobStatus] | None, Query(  # type: ignore[valid-type]
    max_length=len(JOB_STATUSES), description="Repeatable: only jobs in these states.")]
JobOrder = Annotated[Literal["created", "-created", "status", "-status"] | None, Query(
    alias="orderBy", description="Sort the jobs by this attribute; a leading dash sorts descending, e.g. "
    "\"-created\" for the newest first (default: created, oldest first).")]
