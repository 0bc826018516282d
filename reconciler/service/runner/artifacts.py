"""Model artifacts behind deployments: a scikit-learn estimator saved with joblib, or an ONNX model.

SECURITY: a joblib artifact is a pickle, i.e. code. Loading it runs whatever it was built to run,
with the service's rights. Register only artifacts from a trusted source; registration is admin
work (``reconciler models register`` on the database, or the authenticated
``PUT deployments/{id}/model``). An ONNX file is data, interpreted by onnxruntime.

What the runner needs from a model is :class:`LoadedModel`: the task (regression / binary /
multiclass), the class names as text in the model's own order, the feature columns it reads,
and vectorised ``predict`` (regression values) / ``predict_proba`` (one column per class) over
a float64 matrix. :func:`describe` derives the description at registration: classes from
``classes_`` (sklearn) or the classifier node's labels (ONNX), features from
``feature_names_in_`` (sklearn), the graph's inputs or its ``feature_names`` metadata (ONNX), or
the names the registrant gives when the artifact carries none.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections import OrderedDict
from typing import Any, Protocol

import numpy as np

from reconciler.extras import MODEL_MODULES, require
from reconciler.service.records import MODEL_KINDS, ModelDescription

__all__ = ["KINDS", "ArtifactError", "LoadedModel", "ModelCache", "describe", "load"]

KINDS = MODEL_KINDS


class ArtifactError(ValueError):
    """The artifact cannot be loaded or described; the message says what to give instead."""


class LoadedModel(Protocol):
    task: str
    class_names: list[str]
    feature_names: list[str]
    allow_nan: bool

    def predict(self, x: np.ndarray) -> np.ndarray: ...

    def predict_proba(self, x: np.ndarray) -> np.ndarray: ...


def class_text(value: Any) -> str:
    """How a class label is written in column names and in the label column (``1``, ``"yes"``)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


class SklearnModel:
    """A fitted scikit-learn estimator (or Pipeline) read from joblib bytes."""

    def __init__(self, estimator: Any, *, feature_names: list[str] | None = None) -> None:
        if not hasattr(estimator, "predict"):
            raise ArtifactError(f"the joblib artifact holds a {type(estimator).__name__}, which has no predict(); "
                                "save a fitted scikit-learn estimator or Pipeline")
        self.estimator = estimator
        classes = getattr(estimator, "classes_", None)
        if classes is not None and hasattr(estimator, "predict_proba"):
            self.class_names = [class_text(c) for c in classes]
            self.task = "binary" if len(self.class_names) == 2 else "multiclass"
        else:
            self.class_names = []
            self.task = "regression"
        names = getattr(estimator, "feature_names_in_", None)
        if names is not None:
            self.feature_names = [str(n) for n in names]
        elif feature_names:
            expected = getattr(estimator, "n_features_in_", None)
            if expected is not None and int(expected) != len(feature_names):
                raise ArtifactError(f"the model reads {expected} features but {len(feature_names)} names were given")
            self.feature_names = list(feature_names)
        else:
            raise ArtifactError("the model was fitted without column names (no feature_names_in_); fit it on a "
                                "pandas DataFrame, or give the input column names (--feature-names a,b,c)")
        self.allow_nan = _sklearn_allows_nan(estimator)
        self._frame_input = names is not None

    def _input(self, x: np.ndarray) -> Any:
        if self._frame_input:  # named input: sklearn checks the names, and warns on a bare array
            import pandas as pd

            return pd.DataFrame(x, columns=self.feature_names, copy=False)
        return x

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.estimator.predict(self._input(x)), dtype=np.float64).reshape(len(x))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.estimator.predict_proba(self._input(x)), dtype=np.float64)


def _sklearn_allows_nan(estimator: Any) -> bool:
    try:
        from sklearn.utils import get_tags  # type: ignore[import-untyped]

        return bool(get_tags(estimator).input_tags.allow_nan)
    except Exception:  # older or non-sklearn estimators: be strict, missing values are errors
        return False


class OnnxModel:
    """An ONNX graph run by onnxruntime: one 2-D float input (or one input per feature column),
    outputs ``label`` (+ ``probabilities`` for classifiers, as an array or skl2onnx's ZipMap)."""

    def __init__(self, data: bytes, *, feature_names: list[str] | None = None,
                 class_names: list[str] | None = None) -> None:
        import onnxruntime as ort  # type: ignore[import-untyped]

        try:
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1  # chunks run in parallel already; no oversubscription
            self.session = ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ArtifactError(f"onnxruntime cannot load the artifact: {exc}") from None
        self.inputs = self.session.get_inputs()
        self.outputs = [o.name for o in self.session.get_outputs()]
        graph_classes, metadata_features = _onnx_graph_info(data)
        self.task = "regression" if len(self.outputs) < 2 else "classification"
        if self.task == "classification":
            names = class_names or graph_classes
            if not names:
                raise ArtifactError("the ONNX classifier does not name its classes; give them (--class-names a,b)")
            self.class_names = list(names)
            self.task = "binary" if len(self.class_names) == 2 else "multiclass"
        else:
            self.class_names = []
        if len(self.inputs) > 1:
            self.feature_names = [i.name for i in self.inputs]
        elif feature_names or metadata_features:
            self.feature_names = list(feature_names or metadata_features or [])
            width = self.inputs[0].shape[-1] if self.inputs[0].shape else None
            if isinstance(width, int) and width != len(self.feature_names):
                raise ArtifactError(f"the ONNX input takes {width} columns but {len(self.feature_names)} "
                                    "feature names were given")
        else:
            raise ArtifactError("the ONNX model has one tensor input and no feature_names metadata; give the "
                                "input column names in order (--feature-names a,b,c)")
        self._double = [i.type == "tensor(double)" for i in self.inputs]
        self.allow_nan = False

    def _feed(self, x: np.ndarray) -> dict[str, np.ndarray]:
        if len(self.inputs) == 1:
            return {self.inputs[0].name: x.astype(np.float64 if self._double[0] else np.float32, copy=False)}
        return {i.name: x[:, [n]].astype(np.float64 if d else np.float32)
                for n, (i, d) in enumerate(zip(self.inputs, self._double, strict=True))}

    def predict(self, x: np.ndarray) -> np.ndarray:
        out = self.session.run([self.outputs[0]], self._feed(x))[0]
        return np.asarray(out, dtype=np.float64).reshape(len(x))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        out = self.session.run([self.outputs[1]], self._feed(x))[0]
        if isinstance(out, list):  # skl2onnx's ZipMap: one {class: probability} dict per row
            keys = list(out[0].keys()) if out else []
            order = [next(k for k in keys if class_text(k) == name) for name in self.class_names] if out else []
            return np.array([[row[k] for k in order] for row in out], dtype=np.float64).reshape(len(x), -1)
        return np.asarray(out, dtype=np.float64)


def _onnx_graph_info(data: bytes) -> tuple[list[str], list[str]]:
    """(class labels of the classifier node, ``feature_names`` metadata), either may be empty."""
    import onnx  # type: ignore[import-untyped]  # the [models] extra, required by load()

    model = onnx.load_model_from_string(data)
    classes: list[str] = []
    for node in model.graph.node:
        for attribute in node.attribute:
            if attribute.name in ("classlabels_ints", "classlabels_int64s"):
                classes = [str(v) for v in attribute.ints]
            elif attribute.name == "classlabels_strings":
                classes = [v.decode() for v in attribute.strings]
        if classes:
            break
    features: list[str] = []
    for prop in model.metadata_props:
        if prop.key == "feature_names":
            text = prop.value.strip()
            features = json.loads(text) if text.startswith("[") else [p.strip() for p in text.split(",") if p.strip()]
    return classes, features


def load(kind: str, data: bytes, *, feature_names: list[str] | None = None,
         class_names: list[str] | None = None) -> LoadedModel:
    """Load an artifact. joblib runs the pickle: trusted artifacts only (module docstring)."""
    require("models", "loading a model artifact", modules=MODEL_MODULES)
    if kind == "onnx":
        return OnnxModel(data, feature_names=feature_names, class_names=class_names)
    if kind != "joblib":
        raise ArtifactError(f"unknown model kind {kind!r}; use one of {', '.join(KINDS)}")
    import joblib  # type: ignore[import-untyped]

    try:
        estimator = joblib.load(io.BytesIO(data))
    except Exception as exc:
        raise ArtifactError(f"joblib cannot load the artifact: {type(exc).__name__}: {exc}") from None
    model = SklearnModel(estimator, feature_names=feature_names)
    if class_names and model.class_names and len(class_names) != len(model.class_names):
        raise ArtifactError(f"the model has {len(model.class_names)} classes but {len(class_names)} names were given")
    return model


def guess_kind(data: bytes) -> str:
    """joblib / pickle files start with the pickle protocol byte (or a compressor's magic); ONNX
    files are protobuf. Used when the registrant does not say."""
    if data[:1] == b"\x80" or data[:2] in (b"\x1f\x8b", b"x\x9c", b"BZ") or data[:4] == b"\x28\xb5\x2f\xfd":
        return "joblib"
    return "onnx"


def describe(data: bytes, *, kind: str | None = None, target_name: str | None = None,
             feature_names: list[str] | None = None, class_names: list[str] | None = None) -> ModelDescription:
    """Load the artifact once and describe it for storage (raises :class:`ArtifactError`)."""
    kind = kind or guess_kind(data)
    model = load(kind, data, feature_names=feature_names, class_names=class_names)
    target = target_name or _default_target_column(model) or "target"
    return ModelDescription(kind=kind, task=model.task, target_name=target, class_names=list(model.class_names),
                       feature_names=list(model.feature_names), sha256=hashlib.sha256(data).hexdigest(),
                       size=len(data))


def _default_target_column(model: LoadedModel) -> str | None:
    """A name the artifact itself carries: ``target_name`` / ``target_name_`` set by its author, or a
    single ``get_feature_names_out()`` name (estimators whose output is one named column)."""
    estimator = getattr(model, "estimator", None)
    for attribute in ("target_name", "target_name_"):
        value = getattr(estimator, attribute, None)
        if isinstance(value, str) and value:
            return value
    names_out = getattr(estimator, "get_feature_names_out", None)
    if callable(names_out):
        try:
            names = list(names_out())
        except Exception:
            return None
        if len(names) == 1:
            return str(names[0])
    return None


class ModelCache:
    """Loaded models by deployment, reloaded when the stored artifact's sha256 changes. Loading
    (unpickling, building an onnxruntime session) costs far more than a job's first chunk."""

    def __init__(self, size: int = 8) -> None:
        self._size = size
        self._items: OrderedDict[str, tuple[str, LoadedModel]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, deployment_id: str, sha256: str, build: Any) -> LoadedModel:
        with self._lock:
            found = self._items.get(deployment_id)
            if found is not None and found[0] == sha256:
                self._items.move_to_end(deployment_id)
                return found[1]
        model: LoadedModel = build()
        with self._lock:
            self._items[deployment_id] = (sha256, model)
            self._items.move_to_end(deployment_id)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return model
