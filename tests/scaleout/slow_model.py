"""A binary model that takes its time: partitions stay in flight long enough for a test to kill
a worker, abort a job or watch its progress. Importable by the worker processes (their
PYTHONPATH holds tests/), which unpickle it."""

from __future__ import annotations

import time
from typing import Any

import numpy as np


class SlowBinary:
    """P(1) = sigmoid(x1 + w * x2); ``delay`` seconds per predict_proba call (one per chunk)."""

    def __init__(self, delay: float, weight: float = 0.5) -> None:
        self.delay = delay
        self.weight = weight
        self.classes_ = np.array([0, 1])
        self.feature_names_in_ = np.array(["x1", "x2", "x3"], dtype=object)
        self.n_features_in_ = 3

    def predict_proba(self, x: Any) -> np.ndarray:
        time.sleep(self.delay)
        values = np.asarray(x, dtype=np.float64)
        p = 1.0 / (1.0 + np.exp(-(values[:, 0] + self.weight * values[:, 1])))
        return np.column_stack([1.0 - p, p])

    def predict(self, x: Any) -> np.ndarray:
        return (self.predict_proba(x)[:, 1] > 0.5).astype(int)
