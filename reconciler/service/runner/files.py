"""Where a job's uploaded input and scored output live on disk, and how uploads get there.

``<data_dir>/<job id>/input/000000.csv`` (one file for a plain upload, one per part for a
multipart upload, each with its own header row as the SDK sends them) and
``<data_dir>/<job id>/output.csv``. Files are written under a ``.tmp`` name and renamed when
complete, so a reader never sees half a part, and a crash leaves nothing that looks finished.
Streams in and out in chunks: no upload or result is ever held in memory whole.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

__all__ = ["UploadTooLarge", "discard_after", "input_files", "job_dir", "output_path", "receive", "remove_job_files"]

_PART = re.compile(r"^(\d{6})\.csv$")
_WRITE_BUFFER = 1024 * 1024


class UploadTooLarge(Exception):
    pass


def job_dir(data_dir: Path, job_id: str) -> Path:
    if not re.fullmatch(r"[0-9a-fA-F]{24}", job_id):  # ids become path segments: never let one escape
        raise ValueError(f"not a job id: {job_id!r}")
    return data_dir / job_id


def input_dir(data_dir: Path, job_id: str) -> Path:
    return job_dir(data_dir, job_id) / "input"


def part_path(data_dir: Path, job_id: str, part: int) -> Path:
    return input_dir(data_dir, job_id) / f"{part:06d}.csv"


def input_files(data_dir: Path, job_id: str) -> list[Path]:
    """The complete uploaded parts, in part order."""
    folder = input_dir(data_dir, job_id)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _PART.match(p.name))


def missing_parts(data_dir: Path, job_id: str) -> list[int]:
    """Part numbers below the highest one received that never arrived (a multipart gap)."""
    numbers = sorted(int(_PART.match(p.name).group(1)) for p in input_files(data_dir, job_id))  # type: ignore[union-attr]
    return sorted(set(range(numbers[-1] + 1)) - set(numbers)) if numbers else []


def output_path(data_dir: Path, job_id: str) -> Path:
    return job_dir(data_dir, job_id) / "output.csv"


async def receive(chunks: AsyncIterator[bytes], target: Path, *, limit: int) -> int:
    """Stream a request body to ``target`` (via ``.tmp`` + rename); returns the byte count."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    size = 0
    try:
        with open(temporary, "wb", buffering=_WRITE_BUFFER) as sink:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise UploadTooLarge(f"the upload is larger than {limit} bytes")
                sink.write(chunk)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return size


def remove_job_files(data_dir: Path, job_id: str) -> None:
    shutil.rmtree(job_dir(data_dir, job_id), ignore_errors=True)


def discard_after(data_dir: Path, job_id: str, status: str) -> None:
    """A job has ended with ``status``: its uploaded data is never read again (a localFile job
    cannot be re-run from it), so it goes; a COMPLETED job keeps its scored file for download,
    any other keeps nothing (partial output included)."""
    if status == "COMPLETED":
        shutil.rmtree(input_dir(data_dir, job_id), ignore_errors=True)
    else:
        remove_job_files(data_dir, job_id)
