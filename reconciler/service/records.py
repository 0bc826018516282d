"""Plain values the store hands out and takes in. No I/O; the store and the renderers share them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from reconciler.contract import schemas

JOB_STATUSES: Final = ("INITIALIZING", "RUNNING", "COMPLETED", "ABORTED", "FAILED")


@dataclass(frozen=True, slots=True)
class User:
    username: str
    user_id: str
    full_name: str | None

    def as_api(self) -> dict[str, Any]:
        return {"username": self.username, "userId": self.user_id, "fullName": self.full_name}


@dataclass(frozen=True, slots=True)
class Reference:
    """A job-spec field that names another resource, e.g. ``intakeSettings.credentialId``."""

    kind: str
    ref_id: str
    field: str


@dataclass(slots=True)
class DefinitionRecord:
    id: str
    name: str
    enabled: bool
    schedule: dict[str, list[int | str]] | None
    job: dict[str, Any]
    created: str
    updated: str
    created_by: dict[str, Any]
    updated_by: dict[str, Any]
    last_started_job_status: str | None = None
    last_started_job_time: str | None = None
    last_scheduled_run_time: str | None = None
    last_successful_run_time: str | None = None
    last_failed_run_time: str | None = None


@dataclass(slots=True)
class JobRecord:
    id: str
    status: str
    status_details: str
    job: dict[str, Any]
    created: str
    updated: str
    created_by: dict[str, Any]
    definition_id: str | None = None
    definition_name: str | None = None
    source: str = "manual"
    # execution state (issue #8): "upload" is none / waiting (localFile data not yet PUT) / done
    upload: str = "none"
    percentage: float = 0.0
    scored_rows: int = 0
    failed_rows: int = 0
    skipped_rows: int = 0
    intake_bytes: int | None = None
    output_bytes: int | None = None
    started: str | None = None
    heartbeat: str | None = None
    runner: str | None = None


@dataclass(slots=True)
class ResourceRecord:
    """A deployment, credential or data store: the minimal stand-ins definitions refer to."""

    id: str
    kind: str
    name: str
    body: dict[str, Any]
    created: str
    created_by: dict[str, Any]


@dataclass(slots=True)
class Page:
    items: list[Any] = field(default_factory=list)
    total: int = 0


def references(job: dict[str, Any]) -> list[Reference]:
    """Ids in a job spec that must name existing resources: deployment, credentials, data stores."""
    out: list[Reference] = []
    deployment = job.get("deploymentId")
    if isinstance(deployment, str):
        out.append(Reference("deployment", deployment, "deploymentId"))
    for side in ("intakeSettings", "outputSettings"):
        settings = job.get(side)
        if not isinstance(settings, dict):
            continue
        for key, kind in (("credentialId", "credential"), ("cloudStorageCredentialId", "credential"),
                          ("dataStoreId", "dataStore")):
            value = settings.get(key)
            if isinstance(value, str):
                out.append(Reference(kind, value, f"{side}.{key}"))
    return out


@dataclass(slots=True)
class DatasetRecord:
    """An AI Catalog dataset: one version, stored as a file under the service's data directory."""

    id: str
    version_id: str
    name: str
    path: str
    size: int
    row_count: int
    columns: list[str]
    categories: list[str]
    created: str
    created_by: dict[str, Any]


# how a model artifact is stored: a joblib pickle or ONNX (the contract's enum)
MODEL_KINDS: Final = tuple(schemas.get("api-model-response")["properties"]["kind"]["enum"])


@dataclass(frozen=True, slots=True)
class ModelDescription:
    """What a model artifact was found to be when loaded (``runner.artifacts.describe``).

    ``task`` is regression / binary / multiclass; ``class_names`` are the model's classes as text,
    in the model's own order (empty for regression); ``feature_names`` the input columns it reads.
    """

    kind: str
    task: str
    target_name: str
    class_names: list[str]
    feature_names: list[str]
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class ModelRecord(ModelDescription):
    """The model behind a deployment (its artifact bytes are stored apart, fetched only to load)."""

    deployment_id: str
    created: str
    created_by: dict[str, Any]


def upload_state(job: dict[str, Any]) -> str:
    """``waiting`` when the job reads a localFile upload that has not arrived yet, else ``none``."""
    intake = job.get("intakeSettings")
    return "waiting" if isinstance(intake, dict) and intake.get("type") == "localFile" else "none"
