"""Next run time of an API schedule (five lists, UTC). Pure: no clock, no I/O.

The API's semantics are cron's: ``dayOfMonth`` and ``dayOfWeek`` are a union when both are
restricted, impossible dates (31 February) are skipped, and a schedule whose days never occur
never runs. Rather than re-implementing calendar arithmetic, the lists are rendered as a
five-field cron string and handed to cronsim (maintained, strict). A list is written out number
by number, never as ``*``-led text, so cron's "a field starting with * is unrestricted" rule
applies exactly when the API list is ``["*"]``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from cronsim import CronSim, CronSimError

from reconciler.contract import cron
from reconciler.service import ids

Schedule = Mapping[str, Sequence[int | str]]


def to_cron(schedule: Schedule) -> str:
    """The schedule as cron text; month and weekday names become numbers first (Sunday = 0)."""
    return _to_cron(tuple(tuple(schedule[key]) for key in cron.FIELDS))


@functools.lru_cache(maxsize=4096)
def _to_cron(lists_key: tuple[tuple[int | str, ...], ...]) -> str:
    """Cached by value: a listing renders thousands of definitions that share a few schedules."""
    lists = cron.normalize_schedule({key: list(values) for key, values in zip(cron.FIELDS, lists_key, strict=True)})
    parts = []
    for key in cron.FIELDS:
        values = lists[key]
        parts.append("*" if values == ["*"] else ",".join(str(int(v)) for v in values))
    return " ".join(parts)


@functools.lru_cache(maxsize=4096)
def _next_from_cron(expression: str, after: datetime) -> datetime | None:
    try:
        upcoming = CronSim(expression, after.replace(tzinfo=None))
        found: datetime = next(upcoming)
    except (CronSimError, StopIteration):
        return None  # cronsim refuses day/month combinations that can never occur
    return found.replace(tzinfo=UTC)


def next_run(schedule: Schedule, *, after: datetime) -> datetime | None:
    """The first whole minute strictly after ``after`` (UTC) on which the schedule fires, or None."""
    if after.tzinfo is None:
        raise ValueError("after must be timezone-aware; pass a UTC datetime")
    moment = after.astimezone(UTC).replace(second=0, microsecond=0)
    return _next_from_cron(to_cron(schedule), moment)


def next_run_iso(schedule: Schedule, *, after: datetime) -> str | None:
    """``next_run`` as the API's timestamp text, cached by (schedule, minute): a listing renders
    hundreds of definitions sharing a few schedules at one ``now``."""
    if after.tzinfo is None:
        raise ValueError("after must be timezone-aware; pass a UTC datetime")
    moment = after.astimezone(UTC).replace(second=0, microsecond=0)
    return _next_iso(tuple(tuple(schedule[key]) for key in cron.FIELDS), moment)


@functools.lru_cache(maxsize=4096)
def _next_iso(lists_key: tuple[tuple[int | str, ...], ...], moment: datetime) -> str | None:
    found = _next_from_cron(_to_cron(lists_key), moment)
    return None if found is None else ids.iso(found)


def next_runs(schedule: Schedule, *, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` run times, e.g. for a preview."""
    out: list[datetime] = []
    moment = after
    for _ in range(count):
        found = next_run(schedule, after=moment)
        if found is None:
            break
        out.append(found)
        moment = found
    return out

