"""Scoring semantics: one input chunk (a DataFrame) in, the scored chunk DataRobot writes out. Pure.

Columns and order follow the API contract §7b: passthrough columns first (``passthroughColumns``
in the order given, or every input column with ``passthroughColumnsSet: all``), then one
``<target>_<class>_PREDICTION`` per class, ``<target>_PREDICTION``, ``THRESHOLD`` and
``POSITIVE_CLASS`` (binary only), then ``prediction_status`` (``includePredictionStatus``);
regression writes ``<target>_PREDICTION`` only. ``columnNamesRemapping`` renames (or, with null,
drops) columns last. Unsure, and pinned by tests so a change is deliberate:

* binary probability columns: positive class first, then negative (the contract's example
  ``Survived_1_PREDICTION, Survived_0_PREDICTION``); multiclass: the model's class order;
* the positive class is the model's second class (sklearn's ``predict_proba[:, 1]``) and a row is
  positive when its probability is strictly greater than the threshold, which at 0.5 matches
  the model's own ``predict`` (argmax keeps the first class on a tie);
* a row whose feature is missing (unless the model accepts NaN) or not a number is a bad row: with
  ``abortOnError`` (default) the job fails naming the row; without it the row keeps its
  passthrough values, gets empty predictions and its reason in ``prediction_status``, and counts
  in ``failedRows``; good rows say ``OK``.

Vectorised: features are cast column by column (Arrow's cast for text, numpy otherwise) and the
model runs once per chunk on the good rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from reconciler.service.runner.artifacts import LoadedModel

__all__ = ["ScoredChunk", "ScoringError", "ScoringOptions", "options_from_spec", "output_columns", "score_chunk"]

STATUS_COLUMN = "prediction_status"
STATUS_OK = "OK"


class ScoringError(Exception):
    """The job cannot be scored (bad option, missing column, bad row with abortOnError); the
    message becomes the job's ``statusDetails``."""


@dataclass(frozen=True, slots=True)
class ScoringOptions:
    target: str
    task: str
    class_names: list[str]
    passthrough: list[str] = field(default_factory=list)
    passthrough_all: bool = False
    include_probabilities: bool = True
    probability_classes: list[str] = field(default_factory=list)
    include_status: bool = False
    threshold: float = 0.5
    remap: Mapping[str, str | None] = field(default_factory=dict)
    abort_on_error: bool = True

    @property
    def positive_class(self) -> str:
        return self.class_names[1]

    @property
    def negative_class(self) -> str:
        return self.class_names[0]


def options_from_spec(spec: Mapping[str, Any], *, target: str, task: str, class_names: list[str]) -> ScoringOptions:
    """The job spec's scoring options; :class:`ScoringError` for what the local service cannot do."""
    explanations = spec.get("maxExplanations") or 0
    if isinstance(explanations, int) and explanations > 0:
        raise ScoringError(f"prediction explanations (maxExplanations: {explanations}) are not supported by the "
                           "local service; set maxExplanations to 0")
    ngrams = spec.get("maxNgramExplanations")
    if ngrams not in (None, 0, "0"):
        raise ScoringError(f"text explanations (maxNgramExplanations: {ngrams}) are not supported by the local "
                           "service; remove maxNgramExplanations or set it to 0")
    if spec.get("timeseriesSettings"):
        raise ScoringError("time series scoring (timeseriesSettings) is not supported by the local service")
    wanted = [str(c) for c in spec.get("includeProbabilitiesClasses") or []]
    unknown = [c for c in wanted if c not in class_names]
    if unknown:
        raise ScoringError(f"includeProbabilitiesClasses names unknown class(es) {', '.join(map(repr, unknown))}; "
                           f"the model's classes are {', '.join(map(repr, class_names)) or 'none (regression)'}")
    threshold = spec.get("predictionThreshold")
    remap = spec.get("columnNamesRemapping") or {}
    return ScoringOptions(
        target=target, task=task, class_names=list(class_names),
        passthrough=[str(c) for c in spec.get("passthroughColumns") or [] if str(c).strip()],
        passthrough_all=spec.get("passthroughColumnsSet") == "all",
        include_probabilities=bool(spec.get("includeProbabilities", True)),
        probability_classes=wanted,
        include_status=bool(spec.get("includePredictionStatus", False)),
        threshold=0.5 if threshold is None else float(threshold),
        remap=dict(remap),
        abort_on_error=bool(spec.get("abortOnError", True)),
    )


@dataclass(slots=True)
class ScoredChunk:
    frame: pd.DataFrame
    rows: int
    failed_rows: int


def _probability_classes(options: ScoringOptions) -> list[str]:
    if options.task == "regression" or not options.include_probabilities:
        return []
    order = list(options.class_names)
    if options.task == "binary":
        order = [options.positive_class, options.negative_class]
    if options.probability_classes:
        order = [c for c in order if c in options.probability_classes]
    return order


def prediction_columns(options: ScoringOptions) -> list[str]:
    """The columns the model adds, before remapping, in order."""
    columns = [f"{options.target}_{c}_PREDICTION" for c in _probability_classes(options)]
    columns.append(f"{options.target}_PREDICTION")
    if options.task == "binary":
        columns += ["THRESHOLD", "POSITIVE_CLASS"]
    if options.include_status:
        columns.append(STATUS_COLUMN)
    return columns


def output_columns(options: ScoringOptions, input_columns: list[str]) -> list[str]:
    """Every output column in order, after remapping (for checks and for empty inputs)."""
    passthrough = list(input_columns) if options.passthrough_all else list(options.passthrough)
    return _remapped([*passthrough, *prediction_columns(options)], options.remap)


def _remapped(columns: list[str], remap: Mapping[str, str | None]) -> list[str]:
    out = []
    for column in columns:
        if column in remap:
            renamed = remap[column]
            if renamed is None:
                continue
            out.append(renamed)
        else:
            out.append(column)
    return out


def _arrow(series: pd.Series) -> pa.Array | pa.ChunkedArray:
    if isinstance(series.dtype, pd.ArrowDtype):
        return series.array.__arrow_array__()
    return pa.array(series.astype(object).where(series.notna(), None), from_pandas=True)


def _column_values(name: str, series: pd.Series, *, allow_nan: bool) -> tuple[np.ndarray, np.ndarray | None, str | None]:
    """(float64 values, bad-row mask or None, the reason for bad rows of this column)."""
    if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.isnan(values)
        if allow_nan or not missing.any():
            return values, None, None
        return values, missing, f"missing value in feature column {name!r}"
    arrow = _arrow(series)
    try:
        cast = pc.cast(arrow, pa.float64())
        values = np.asarray(cast.to_numpy(), dtype=np.float64)
        missing = np.isnan(values)
        if allow_nan or not missing.any():
            return values, None, None
        return values, missing, f"missing value in feature column {name!r}"
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    # Slow path, only for chunks with something that is not a number: find which rows.
    text = pd.Series(arrow.to_pandas(), copy=False).astype(object)
    stripped = text.where(text.isna(), text.astype(str).str.strip())
    empty = stripped.isna() | (stripped == "")
    values = pd.to_numeric(stripped.where(~empty, None), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    not_number = np.isnan(values) & ~empty.to_numpy()
    bad = not_number | (empty.to_numpy() & (not allow_nan))
    return values, bad, f"feature column {name!r} is missing or not a number"


def _features(model: LoadedModel, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(matrix, bad-row mask, per-row reason as an object array: None for good rows)."""
    missing = [c for c in model.feature_names if c not in frame.columns]
    if missing:
        shown = ", ".join(map(repr, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise ScoringError(f"the input lacks {len(missing)} feature column(s) the model needs: {shown}")
    n = len(frame)
    matrix = np.empty((n, len(model.feature_names)), dtype=np.float64)
    bad = np.zeros(n, dtype=bool)
    reasons = np.full(n, None, dtype=object)
    for index, name in enumerate(model.feature_names):
        values, column_bad, reason = _column_values(name, frame[name], allow_nan=model.allow_nan)
        matrix[:, index] = values
        if column_bad is not None:
            fresh = column_bad & ~bad
            if fresh.any():
                reasons[fresh] = reason
                bad |= column_bad
    return matrix, bad, reasons


def score_chunk(model: LoadedModel, frame: pd.DataFrame, options: ScoringOptions, *, first_row: int = 0) -> ScoredChunk:
    """Score one chunk. ``first_row`` is the 0-based input row of the chunk's first row (for
    error messages). Raises :class:`ScoringError` when the job must fail."""
    n = len(frame)
    matrix, bad, reasons = _features(model, frame)
    if bad.any() and options.abort_on_error:
        row = int(np.argmax(bad))
        raise ScoringError(f"row {first_row + row + 1}: {reasons[row]} (set abortOnError to false to score the "
                           "other rows and report this one in prediction_status)")
    good = ~bad
    classification = options.task != "regression"
    width = len(options.class_names) if classification else 1
    scores = np.full((n, width), np.nan, dtype=np.float64)
    failed = int(bad.sum())
    if good.any():
        rows = matrix if failed == 0 else matrix[good]
        try:
            result = model.predict_proba(rows) if classification else model.predict(rows).reshape(-1, 1)
        except Exception as exc:  # the model refused the chunk: every row of it is bad
            if options.abort_on_error:
                raise ScoringError(f"rows {first_row + 1}-{first_row + n}: the model failed: "
                                   f"{type(exc).__name__}: {exc}") from None
            reasons[good] = f"the model failed: {type(exc).__name__}: {exc}"
            bad[:] = True
            failed = n
        else:
            if failed == 0:
                scores = result
            else:
                scores[good] = result
    return ScoredChunk(frame=_assemble(frame, scores, bad, reasons, options), rows=n, failed_rows=failed)


def _assemble(frame: pd.DataFrame, scores: np.ndarray, bad: np.ndarray, reasons: np.ndarray,
              options: ScoringOptions) -> pd.DataFrame:
    n = len(frame)
    columns: dict[str, Any] = {}
    if options.passthrough_all:
        passthrough = list(frame.columns)
    else:
        missing = [c for c in options.passthrough if c not in frame.columns]
        if missing:
            raise ScoringError(f"passthroughColumns names column(s) the input does not have: "
                               f"{', '.join(map(repr, missing))}")
        passthrough = options.passthrough
    for name in passthrough:
        columns[name] = frame[name].to_numpy() if not isinstance(frame[name].dtype, pd.ArrowDtype) else frame[name].array
    target = options.target
    if options.task == "regression":
        columns[f"{target}_PREDICTION"] = scores[:, 0]
    else:
        index = {name: i for i, name in enumerate(options.class_names)}
        for name in _probability_classes(options):
            columns[f"{target}_{name}_PREDICTION"] = scores[:, index[name]]
        mask = bad if bad.any() else None
        if options.task == "binary":
            positive = scores[:, 1] > options.threshold
            picked = pa.array(positive.astype(np.int8), mask=mask)
            labels = pc.take(pa.array([options.negative_class, options.positive_class]), picked)
        else:
            picked = pa.array(np.argmax(np.nan_to_num(scores, nan=-1.0), axis=1), mask=mask)
            labels = pc.take(pa.array(options.class_names), picked)
        columns[f"{target}_PREDICTION"] = pd.arrays.ArrowExtensionArray(labels)
        if options.task == "binary":
            columns["THRESHOLD"] = np.full(n, options.threshold)
            columns["POSITIVE_CLASS"] = pd.arrays.ArrowExtensionArray(
                pc.take(pa.array([options.positive_class]), pa.array(np.zeros(n, dtype=np.int8))))
    if options.include_status:
        status = np.where(bad, reasons, STATUS_OK) if bad.any() else np.full(n, STATUS_OK, dtype=object)
        columns[STATUS_COLUMN] = pd.arrays.ArrowExtensionArray(pa.array(status, type=pa.string()))
    out = pd.DataFrame(columns, copy=False)
    if options.remap:
        drop = [c for c, renamed in options.remap.items() if renamed is None and c in out.columns]
        out = out.drop(columns=drop).rename(columns={c: r for c, r in options.remap.items() if r is not None})
    return out
