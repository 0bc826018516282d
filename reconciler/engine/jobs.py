"""Views of batch prediction jobs for people: the rows of ``reconciler jobs`` and the lines of
``reconciler job ID``. Pure: API job objects in, strings out. Every cell comes from the API, so
it goes through :func:`reconciler.display.printable` (a status detail cannot draw a fake row).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from reconciler.display import printable

__all__ = ["FINISHED", "JOB_COLUMNS", "JOB_KEYS", "elapsed_text", "job_lines", "job_rows", "job_summary", "started_text"]

JOB_COLUMNS: Final = ("id", "definition", "status", "started (UTC)", "elapsed", "scored", "failed", "details")
# what `-o json` keeps of each job: the fields a script needs, as the API names them
JOB_KEYS: Final = ("id", "status", "statusDetails", "created", "elapsedTimeSec", "percentageCompleted",
                   "scoredRows", "failedRows", "skippedRows", "source", "batchPredictionJobDefinition", "links")
FINISHED: Final = frozenset({"COMPLETED", "ABORTED", "FAILED"})


def started_text(value: Any) -> str:
    """A job's ``created`` time (when it was submitted) in UTC to the second; ``-`` when absent."""
    if not value:
        return "-"
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return printable(str(value))
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%d %H:%M:%S")


def elapsed_text(seconds: Any) -> str:
    """``elapsedTimeSec`` as ``45s``, ``3m 07s`` or ``2h 05m``; ``-`` when absent."""
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else "-"


def _definition(job: dict[str, Any]) -> str:
    definition = job.get("batchPredictionJobDefinition")
    if isinstance(definition, dict) and definition.get("name"):
        return str(definition["name"])
    return "-"


def job_rows(jobs: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """One row per job, in :data:`JOB_COLUMNS` order."""
    return [tuple(printable(cell) for cell in (
        str(job.get("id") or "-"), _definition(job), str(job.get("status") or "-"), started_text(job.get("created")),
        elapsed_text(job.get("elapsedTimeSec")), _count(job.get("scoredRows")), _count(job.get("failedRows")),
        str(job.get("statusDetails") or ""))) for job in jobs]


def job_summary(job: dict[str, Any]) -> str:
    """One line: ``<id> FAILED after 12s: <details>`` (the details only for a job that did not complete)."""
    status = str(job.get("status") or "?")
    line = f"{job.get('id')} {status}"
    if status in FINISHED:
        line += f" after {elapsed_text(job.get('elapsedTimeSec'))}"
    else:
        done = job.get("percentageCompleted")
        if isinstance(done, (int, float)) and not isinstance(done, bool):
            line += f" ({done:.0f}%)"
    if status in ("FAILED", "ABORTED"):
        line += f": {job.get('statusDetails') or 'no details given'}"
    return printable(line)


def job_lines(job: dict[str, Any]) -> list[str]:
    """``reconciler job ID``: every field a person asks about first, one per line."""
    done = job.get("percentageCompleted")
    fields = (
        ("id", str(job.get("id") or "-")),
        ("definition", _definition(job)),
        ("status", str(job.get("status") or "-")),
        ("details", str(job.get("statusDetails") or "-")),
        ("started", started_text(job.get("created")) + (" UTC" if job.get("created") else "")),
        ("elapsed", elapsed_text(job.get("elapsedTimeSec"))),
        ("progress", f"{done:.0f}%" if isinstance(done, (int, float)) and not isinstance(done, bool) else "-"),
        ("scored rows", _count(job.get("scoredRows"))),
        ("failed rows", _count(job.get("failedRows"))),
        ("skipped rows", _count(job.get("skippedRows"))),
        ("source", str(job.get("source") or "-")),
    )
    width = max(len(label) for label, _ in fields)
    return [printable(f"{label.ljust(width)}  {value}") for label, value in fields]
