"""Documents generated from the schemas: both validators agree, and valid ones round-trip through the models.

hypothesis-jsonschema generates the adapter and secret-ref parts from ``schemas.bundle``. The
schedule lists are drawn by hand: from_schema handles schedule.schema.json but its long
case-insensitive name patterns made it too slow. It cannot generate from the composed schemas (``intake``/``output`` pick an adapter by if/then on
``type``, ``job-spec`` closes with ``unevaluatedProperties``), so the job spec and the envelope
are assembled here by hand from those parts.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from reconciler.contract import schemas, validators
from reconciler.contract.defaults import fill_defaults
from reconciler.specs.load import LoadedDocument
from reconciler.specs.model import Manifest
from reconciler.specs.validate import validate_documents

# every adapter the reference lists (snowflake and synapse are open schemas: generated extra keys
# are the unknown keys that only warn)
INTAKES = schemas.get("intake")["properties"]["type"]["enum"]
OUTPUTS = schemas.get("output")["properties"]["type"]["enum"]
HEX = st.text("0123456789abcdef", min_size=24, max_size=24)
SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])


@functools.cache
def _part(name: str) -> st.SearchStrategy[dict[str, Any]]:
    return from_schema(schemas.bundle(name))


def _field(low: int, high: int, names: list[str]) -> st.SearchStrategy[list[Any]]:
    values = st.one_of(st.integers(low, high), st.sampled_from(names)) if names else st.integers(low, high)
    return st.one_of(st.just(["*"]), st.lists(values, min_size=1, max_size=4, unique_by=lambda v: str(v).lower()))


# by hand: hypothesis-jsonschema works on schedule.schema.json but is slow with its name patterns
SCHEDULES = st.fixed_dictionaries({
    "minute": _field(0, 59, []), "hour": _field(0, 23, []), "dayOfMonth": _field(1, 28, []),
    "month": _field(1, 12, ["jan", "October", "DEC"]), "dayOfWeek": _field(0, 6, ["mon", "Sunday"])})


def _fmt_safe(doc: dict[str, Any]) -> bool:
    # both validators check formats, but hypothesis' idea of a "uri" can differ from theirs; keep
    # the comparison about structure, not about URL grammar corner cases
    return all(not isinstance(v, str) or v.isascii() for v in doc.values())


JOB_OPTIONS = st.fixed_dictionaries({}, optional={
    "numConcurrent": st.integers(1, 64),
    "chunkSize": st.one_of(st.sampled_from(["auto", "fixed", "dynamic"]), st.integers(1, 10**7)),
    "predictionThreshold": st.floats(0, 1),
    "maxExplanations": st.integers(0, 100),
    "passthroughColumnsSet": st.just("all"),
    "includeProbabilities": st.booleans(),
    "abortOnError": st.booleans(),
    "explanationAlgorithm": st.sampled_from(["shap", "xemp"]),
    "csvSettings": st.fixed_dictionaries({}, optional={"delimiter": st.sampled_from([",", ";", "tab"]),
                                                        "encoding": st.just("utf-8")}),
    "predictionInstance": st.fixed_dictionaries({"hostName": st.just("preds.example.com")}, optional={
        "sslEnabled": st.booleans(), "apiKeyFrom": _part("secret-ref"), "datarobotKeyFrom": _part("secret-ref")}),
    "includeProbabilitiesClasses": st.lists(st.sampled_from(["yes", "no", "maybe"]), unique=True),
    "includePredictionStatus": st.booleans(),
    "skipDriftTracking": st.booleans(),
    "disableRowLevelErrorHandling": st.booleans(),
    "predictionWarningEnabled": st.one_of(st.none(), st.booleans()),
    "thresholdHigh": st.floats(0, 1),
    "thresholdLow": st.floats(0, 1),
    "maxNgramExplanations": st.one_of(st.integers(0, 50), st.just("all")),
    "explanationNumTopClasses": st.integers(1, 10),
    "explanationsMode": st.sampled_from(["topClasses", "classNames"]),
    "columnNamesRemapping": st.one_of(st.none(), st.dictionaries(
        st.sampled_from(["a", "b", "c"]), st.one_of(st.none(), st.sampled_from(["x", "y"])))),
    "batchJobType": st.sampled_from(["monitoring", "prediction"]),
    "timeseriesSettings": st.one_of(
        st.fixed_dictionaries({"type": st.just("forecast")}, optional={
            "forecastPoint": st.just("2026-01-31T00:00:00Z"), "relaxKnownInAdvanceFeaturesCheck": st.booleans()}),
        st.just({"type": "historical", "predictionsStartDate": "2025-01-01T00:00:00Z",
                 "predictionsEndDate": "2025-02-01T00:00:00Z"}),
        st.just({"type": "training"})),
})


@st.composite
def manifests(draw: st.DrawFn) -> dict[str, Any]:
    intake = draw(_part(f"intake-{draw(st.sampled_from(INTAKES))}").filter(_fmt_safe))
    output = draw(_part(f"output-{draw(st.sampled_from(OUTPUTS))}").filter(_fmt_safe))
    job = {"deploymentId": draw(HEX), "intakeSettings": intake, "outputSettings": output, **draw(JOB_OPTIONS)}
    schedule = draw(st.one_of(SCHEDULES, st.sampled_from(
        [{"cron": "0 2 * * 1-5"}, {"cron": "*/10 * * * *"}, {"cron": "@daily"}])))
    spec: dict[str, Any] = {"batchPredictionJob": job, "schedule": schedule}
    if draw(st.booleans()):
        spec["enabled"] = draw(st.booleans())
    if draw(st.booleans()):
        spec["previousNames"] = draw(st.lists(st.sampled_from(["old-a", "old-b", "old-c"]), unique=True))
    name = draw(st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?\Z"))
    return {"apiVersion": "reconciler.io/v1alpha1", "kind": "BatchPredictionJobDefinition",
            "metadata": {"name": name, "labels": {"team": "growth"}}, "spec": spec}


def _mutate(doc: dict[str, Any], choice: int) -> dict[str, Any]:
    broken = copy.deepcopy(doc)
    job = broken["spec"]["batchPredictionJob"]
    mutations = [
        lambda: job.__setitem__("num_concurrent", 4),
        lambda: job.__setitem__("predictionThreshold", 1.5),
        lambda: job["intakeSettings"].__setitem__("type", "ftp"),
        # an unknown key is an error, except on the unverified adapters where it only warns
        lambda: (job if job["intakeSettings"]["type"] in ("snowflake", "synapse") else job["intakeSettings"]).__setitem__(
            "unknownKey", 1),
        lambda: job.pop("deploymentId"),
        lambda: broken["metadata"].__setitem__("name", "Not_DNS"),
        lambda: broken["spec"].__setitem__("schedule", {"cron": "0 2 * * *", "minute": [0]}),
        lambda: job.__setitem__("passthroughColumns", ["id"]) or job.__setitem__("passthroughColumnsSet", "all"),
        lambda: broken["spec"].__setitem__("enabled", "yes"),
        lambda: job["outputSettings"].__setitem__("type", "dataset"),
    ]
    mutations[choice % len(mutations)]()
    return broken


@SETTINGS
@given(doc=manifests(), choice=st.integers(0, 9))
def test_fast_and_precise_validators_agree(doc: dict[str, Any], choice: int) -> None:
    fast, precise = validators.fast_validator("manifest"), validators.validator("manifest")
    for candidate in (doc, _mutate(doc, choice)):
        assert fast.is_valid(candidate) == precise.is_valid(candidate), candidate


@SETTINGS
@given(doc=manifests())
def test_valid_documents_round_trip_through_the_model(doc: dict[str, Any]) -> None:
    errors = [e.message for e in validators.validator("manifest").iter_errors(doc)]
    if errors:  # some generated parts are legitimately invalid together (none expected today)
        raise AssertionError(errors)
    manifest = Manifest.from_data(doc)
    filled = fill_defaults(doc, schemas.get("manifest"))
    assert fill_defaults(filled, schemas.get("manifest")) == filled
    assert Manifest.from_data(manifest.to_data()) == manifest
    assert validators.validator("manifest").is_valid(manifest.to_data())


def _as_document(data: dict[str, Any]) -> LoadedDocument:
    return LoadedDocument(file="gen.yaml", index=0, data=data, line=1, col=1)


@SETTINGS
@given(doc=manifests(), choice=st.integers(0, 9))
def test_the_full_validator_reports_mutations_and_never_raises(doc: dict[str, Any], choice: int) -> None:
    report = validate_documents([_as_document(doc)])
    assert all(i.severity == "warning" or i.field.startswith("spec.batchPredictionJob.intakeSettings")
               or i.field.startswith("spec.batchPredictionJob.outputSettings") for i in report.issues), report.issues
    broken = validate_documents([_as_document(_mutate(doc, choice))])
    assert not broken.ok and all(i.message for i in broken.errors)


JUNK = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8)),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.sampled_from(["spec", "schedule", "cron", "batchPredictionJob",
                                                                "intakeSettings", "type", "name", "x"]), children,
                                               max_size=4)),
    max_leaves=20)


@SETTINGS
@given(spec=JUNK, metadata=JUNK)
def test_arbitrary_shapes_are_issues_not_exceptions(spec: Any, metadata: Any) -> None:
    doc = {"apiVersion": "reconciler.io/v1alpha1", "kind": "BatchPredictionJobDefinition",
           "metadata": metadata, "spec": spec}
    report = validate_documents([_as_document(doc)])
    assert not report.ok
