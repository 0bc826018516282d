"""Typed models of validated manifests. Pure.

The JSON Schemas are the one contract, so these models restate none of their rules: defaults
are read from the schemas' ``default`` keywords (:func:`fill_defaults`), the job spec stays a
dict in the API's own field names, and the models only give it a typed shape. A test checks
that every document the schemas accept builds a model that dumps back to the same data.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr

from reconciler.contract import cron, keys, schemas
from reconciler.contract.defaults import fill_defaults
from reconciler.specs.load import LoadedDocument


def _one_of(allowed: Any) -> AfterValidator:
    """A value the schema allows (read from it when first checked): the model restates no enum."""

    def check(value: str) -> str:
        options = allowed()
        if value not in options:
            raise ValueError(f"expected one of {', '.join(repr(o) for o in options)}, got {value!r}")
        return value

    return AfterValidator(check)


DeletionPolicy = Annotated[str, _one_of(lambda: keys.enum("definition-spec", "deletionPolicy"))]
DriftPolicy = Annotated[str, _one_of(lambda: keys.enum("definition-spec", "driftPolicy"))]
ApiVersion = Annotated[str, _one_of(lambda: (keys.api_version(),))]
Kind = Annotated[str, _one_of(lambda: (keys.kind(),))]


class SecretRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    env: str | None = None
    file: str | None = None


class Metadata(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class Schedule(BaseModel):
    """The API's five lists, names turned into numbers, sorted; ``["*"]`` means every value."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    minute: list[int | Literal["*"]]
    hour: list[int | Literal["*"]]
    dayOfMonth: list[int | Literal["*"]]
    month: list[int | Literal["*"]]
    dayOfWeek: list[int | Literal["*"]]

    @classmethod
    def from_manifest(cls, raw: dict[str, Any]) -> Schedule:
        lists = cron.cron_to_schedule(raw["cron"]) if "cron" in raw else cron.normalize_schedule(raw)
        return cls.model_validate(lists)

    def as_api(self) -> dict[str, list[int | str]]:
        return self.model_dump()  # type: ignore[return-value]


class DefinitionSpec(BaseModel):
    """``spec``: required fields carry no pydantic default; :func:`fill_defaults` supplies them from the schema."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    enabled: bool
    schedule: Schedule | None = None
    batchPredictionJob: dict[str, Any]
    previousNames: list[str]
    deletionPolicy: DeletionPolicy
    preventDestroy: bool
    driftPolicy: DriftPolicy
    ignoreChanges: list[str]
    suspend: bool


class Source(BaseModel):
    model_config = ConfigDict(frozen=True)
    file: str
    line: int = 1
    col: int = 1
    index: int = 0


class Manifest(BaseModel):
    """One validated manifest. ``definition_name`` is the name the definition has in the API."""

    model_config = ConfigDict(extra="forbid")
    apiVersion: ApiVersion
    kind: Kind
    metadata: Metadata
    spec: DefinitionSpec
    source: Source | None = Field(default=None, exclude=True)
    # set by from_data, which filled the schema's defaults into the whole manifest, the job spec
    # included: desired_from_manifest then need not fill the job spec's again
    _defaults_filled: bool = PrivateAttr(default=False)

    @property
    def defaults_filled(self) -> bool:
        """Whether the job spec holds the schema's defaults already (built by :meth:`from_data`)."""
        return self._defaults_filled

    @property
    def definition_name(self) -> str:
        return self.spec.name or self.metadata.name

    @classmethod
    def from_data(cls, data: dict[str, Any], *, source: Source | None = None) -> Manifest:
        """Build from a schema-valid document: defaults filled, schedule normalized to numbers."""
        filled = fill_defaults(data, schemas.get("manifest"))
        spec = dict(filled["spec"])
        if spec.get("schedule") is not None:
            spec["schedule"] = Schedule.from_manifest(spec["schedule"])
        manifest = cls.model_validate({**filled, "spec": spec, "source": source})
        manifest._defaults_filled = True
        return manifest

    @classmethod
    def from_document(cls, doc: LoadedDocument) -> Manifest:
        return cls.from_data(doc.data, source=Source(file=doc.file, line=doc.line, col=doc.col, index=doc.index))

    def to_data(self) -> dict[str, Any]:
        """Plain data in manifest form (schedule as lists), e.g. for export or the operator."""
        return self.model_dump(mode="json", exclude_none=True)
