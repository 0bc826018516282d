"""What the scoring benchmarks share: the 20-column input they score and the peak memory they report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = [f"f{i:02d}" for i in range(20)]


def make_csv(path: Path, rows: int) -> None:
    """``rows`` rows of 20 normal floats (seed 0), written in blocks so memory stays flat."""
    rng = np.random.default_rng(0)
    block = 200_000
    with open(path, "w") as sink:
        for start in range(0, rows, block):
            n = min(block, rows - start)
            frame = pd.DataFrame(rng.normal(size=(n, 20)).round(6), columns=COLUMNS)
            frame.to_csv(sink, index=False, header=start == 0)


def peak_rss_mb(pid: int) -> float:
    """A process's peak resident memory (VmHWM) in MiB; NaN where /proc has no such line."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")
