"""Next run time of an API schedule (five lists, UTC), as the service renders it. Pure.

The calendar work (cron's day-field union, impossible dates, cronsim) is the contract's:
:mod:`reconciler.contract.firings` answers "when does this fire" for the service, the
``schedule`` command and the dashboard alike; this module adds the service's cached timestamp text.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from reconciler.contract import cron, firings
from reconciler.service import ids

Schedule = Mapping[str, Sequence[int | str]]


def to_cron(schedule: Schedule) -> str:
    """The schedule as cron text; month and weekday names become numbers first (Sunday = 0)."""
    return firings.to_cron(schedule)


def next_run(schedule: Schedule, *, after: datetime) -> datetime | None:
    """The first whole minute strictly after ``after`` (UTC) on which the schedule fires, or None."""
    return firings.next_firing(schedule, after=after)


def next_run_iso(schedule: Schedule, *, after: datetime) -> str | None:
    """``next_run`` as the API's timestamp text, cached by (schedule, minute): a listing renders
    hundreds of definitions sharing a few schedules at one ``now``."""
    if after.tzinfo is None:
        raise ValueError("after must be timezone-aware; pass a UTC datetime")
    moment = after.astimezone(UTC).replace(second=0, microsecond=0)
    return _next_iso(tuple(tuple(schedule[key]) for key in cron.FIELDS), moment)


@functools.lru_cache(maxsize=4096)
def _next_iso(lists_key: tuple[tuple[int | str, ...], ...], moment: datetime) -> str | None:
    found = firings.next_firing(dict(zip(cron.FIELDS, lists_key, strict=True)), after=moment)
    return None if found is None else ids.iso(found)
