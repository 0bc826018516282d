"""The localFile intake's progress (a job's percentageCompleted) follows the rows handed on,
whatever Arrow's threaded reader has read ahead."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from reconciler.service import ids
from reconciler.service.runner import files
from reconciler.service.runner.adapters.base import AdapterContext, open_intake


def test_fraction_read_tracks_the_rows_yielded(tmp_path: Path) -> None:
    job_id = ids.new_id()
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200_000, 3)).round(4), columns=["x1", "x2", "x3"])
    for part in (0, 1):  # two multipart parts, each with its header
        path = files.part_path(tmp_path, job_id, part)
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.iloc[part * 100_000:(part + 1) * 100_000].to_csv(path, index=False)
    ctx = AdapterContext(job_id=job_id, store=None, extra={"data_dir": str(tmp_path), "chunk_bytes": 64 * 1024})
    intake = open_intake({"type": "localFile"}, ctx)
    fraction = intake.fraction_read  # type: ignore[attr-defined]
    assert fraction() == 0.0
    rows, errors = 0, []
    for chunk in intake.chunks():
        rows += len(chunk)
        errors.append(abs(fraction() - rows / len(frame)))
    intake.close()
    assert rows == len(frame) and len(errors) > 50
    assert max(errors) < 0.05, max(errors)
    assert fraction() == 1.0
