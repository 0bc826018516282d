"""The runner's chunk pipeline (``execute._pipeline``): reading, scoring and writing overlap, the
output sees every chunk once, in input order, from one writer thread, and a failed write or an
abort stops the job with the writer idle before the output is closed or aborted."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pytest

from reconciler.service.runner import execute, scoring
from reconciler.service.runner.adapters.base import AdapterError

CHUNKS = 12
ROWS = 50


class Half:
    """A binary model: P(yes) = 0.5 for every row."""

    task = "binary"
    allow_nan = False

    def __init__(self) -> None:
        self.class_names = ["no", "yes"]
        self.feature_names = ["a"]

    def predict(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        time.sleep(0.002 * float(np.random.default_rng(int(x[0, 0])).integers(0, 5)))  # out-of-order finishes
        return np.full((len(x), 2), 0.5)


class Intake:
    def __init__(self) -> None:
        self.yielded = 0
        self.third_read = threading.Event()

    def chunks(self) -> Iterator[pd.DataFrame]:
        for index in range(CHUNKS):
            self.yielded = index + 1
            if index == 3:
                self.third_read.set()
            yield pd.DataFrame({"a": [str(index * ROWS + i) for i in range(ROWS)]})


class Output:
    def __init__(self, intake: Intake, *, fail_at: int | None = None) -> None:
        self.intake = intake
        self.fail_at = fail_at
        self.frames: list[pd.DataFrame] = []
        self.threads: set[int] = set()
        self.overlapped = False
        self.writing = False

    def write(self, frame: pd.DataFrame) -> None:
        self.writing = True
        try:
            self.threads.add(threading.get_ident())
            if not self.frames:  # the first write waits for the driver to read further: only possible in parallel
                self.overlapped = self.intake.third_read.wait(timeout=10)
            if self.fail_at is not None and len(self.frames) == self.fail_at:
                raise AdapterError("the destination refused the chunk")
            time.sleep(0.005)
            self.frames.append(frame)
        finally:
            self.writing = False


class Store:
    def __init__(self, alive: bool = True) -> None:
        self.alive = alive

    def update_job_progress(self, *args: Any, **kwargs: Any) -> bool:
        return self.alive


def run(output: Output, intake: Intake, *, store: Store | None = None) -> execute._Counters:
    options = scoring.options_from_spec({"passthroughColumns": ["a"]}, target="t", task="binary",
                                        class_names=["no", "yes"])
    counters = execute._Counters()
    with ThreadPoolExecutor(2) as pool:
        execute._pipeline("0" * 24, intake, output, Half(), options, pool=pool, in_flight=3, store=store or Store(),
                          runner_id="r", cancelled=threading.Event(), clock=lambda: "now", counters=counters)
    return counters


def test_chunks_are_written_in_order_by_one_writer_while_reading_goes_on() -> None:
    intake = Intake()
    output = Output(intake)
    counters = run(output, intake)
    assert output.overlapped, "the first write never saw the driver read ahead: writing blocks reading"
    written = pd.concat(output.frames, ignore_index=True)
    assert written["a"].tolist() == [str(i) for i in range(CHUNKS * ROWS)]
    assert list(written.columns) == ["a", "t_yes_PREDICTION", "t_no_PREDICTION", "t_PREDICTION", "THRESHOLD",
                                     "POSITIVE_CLASS"]
    assert len(output.threads) == 1 and threading.get_ident() not in output.threads
    assert counters.rows == CHUNKS * ROWS and counters.failed == 0


def test_a_failed_write_stops_the_job_with_the_writer_idle() -> None:
    intake = Intake()
    output = Output(intake, fail_at=2)
    with pytest.raises(AdapterError, match="refused"):
        run(output, intake)
    assert not output.writing and len(output.frames) == 2
    assert intake.yielded < CHUNKS  # reading stopped soon after the failure


def test_an_abort_seen_in_the_progress_write_cancels() -> None:
    intake = Intake()
    output = Output(intake)
    with pytest.raises(execute.Cancelled):
        run(output, intake, store=Store(alive=False))  # the last progress write finds the job no longer RUNNING
    assert not output.writing
