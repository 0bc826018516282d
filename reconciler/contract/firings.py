"""When a schedule fires: the API's five lists (UTC) turned into firing times, and a week of
firings counted per hour and per minute. Pure: no clock (callers pass the moments), no I/O.

This is the one place that answers "when does this definition run": the local service's
``nextScheduledRunTime``, ``reconciler schedule`` and the dashboard's heatmap all ask it. The
lists are written as a five-field cron string (each restricted list number by number, never
``*``-led, so cron's "a field starting with * is unrestricted" rule applies exactly when the API
list is ``["*"]``) and cronsim, a maintained and strict cron engine, walks the calendar: the
dayOfMonth/dayOfWeek union, impossible dates (31 February) skipped, schedules that never fire.
"""

from __future__ import annotations

import functools
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from reconciler.contract import cron

__all__ = ["Busy", "Schedule", "Week", "firings", "level", "level_range", "next_firing", "next_firings", "time_zone",
           "to_cron", "week"]

Schedule = Mapping[str, Sequence[int | str]]
_MINUTE = timedelta(minutes=1)
# A week of an every-minute schedule is 10,080 firings; this bounds one schedule's walk.
MAX_FIRINGS_PER_WINDOW = 7 * 24 * 60 + 1


def _key(schedule: Schedule) -> tuple[tuple[int | str, ...], ...]:
    return tuple(tuple(schedule[name]) for name in cron.FIELDS)


def to_cron(schedule: Schedule) -> str:
    """The schedule as cron text (``0 2 * * 1,2``); month and weekday names become numbers
    first (Sunday = 0). Raises ``KeyError`` when one of the five lists is missing."""
    return _to_cron(_key(schedule))


@functools.lru_cache(maxsize=4096)
def _to_cron(lists_key: tuple[tuple[int | str, ...], ...]) -> str:
    """Cached by value: a listing renders thousands of definitions that share a few schedules."""
    lists = cron.normalize_schedule({key: list(values) for key, values in zip(cron.FIELDS, lists_key, strict=True)})
    parts = []
    for key in cron.FIELDS:
        values = lists[key]
        parts.append("*" if values == ["*"] else ",".join(str(int(v)) for v in values))
    return " ".join(parts)


def _utc_minute(moment: datetime, *, name: str) -> datetime:
    """``moment`` in UTC, naive (cronsim's form), truncated to its minute."""
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware; pass a UTC datetime")
    return moment.astimezone(UTC).replace(second=0, microsecond=0, tzinfo=None)


@functools.lru_cache(maxsize=4096)
def _next_from_cron(expression: str, after: datetime) -> datetime | None:
    """The first match strictly after ``after`` (naive UTC minute), as an aware UTC datetime."""
    try:
        found: datetime = next(CronSim(expression, after))
    except (CronSimError, StopIteration):
        return None  # cronsim refuses day/month combinations that can never occur
    return found.replace(tzinfo=UTC)


def next_firing(schedule: Schedule, *, after: datetime) -> datetime | None:
    """The first whole minute strictly after ``after`` on which the schedule fires (UTC), or None."""
    return _next_from_cron(to_cron(schedule), _utc_minute(after, name="after"))


def next_firings(schedule: Schedule, *, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` firings strictly after ``after`` (fewer when the schedule stops)."""
    out: list[datetime] = []
    moment = after
    for _ in range(max(0, count)):
        found = next_firing(schedule, after=moment)
        if found is None:
            break
        out.append(found)
        moment = found
    return out


def firings(schedule: Schedule, *, start: datetime, end: datetime) -> tuple[datetime, ...]:
    """Every whole minute in ``[start, end)`` on which the schedule fires, ascending (UTC).

    At most :data:`MAX_FIRINGS_PER_WINDOW` are returned: a window longer than a week of an
    every-minute schedule is cut there (ask for shorter windows)."""
    if end.tzinfo is None:
        raise ValueError("end must be timezone-aware; pass a UTC datetime")
    first = _utc_minute(start, name="start")
    if first < start.astimezone(UTC).replace(tzinfo=None):
        first += _MINUTE  # a start inside a minute: that minute has begun, the next one counts
    return _firings_from_cron(to_cron(schedule), first, end.astimezone(UTC).replace(tzinfo=None))


def _firings_from_cron(expression: str, first: datetime, end: datetime) -> tuple[datetime, ...]:
    """cronsim finds the days that match (the day-field union, impossible dates); each matching
    day fires at every listed hour and minute, so the times of day are a plain product. Walking
    minute by minute through cronsim costs 10 µs a step: 0.1 s for a week of an every-minute
    schedule, where the product takes a few milliseconds. Not cached: that week is 10,080 values."""
    minute, hour, day_of_month, month, day_of_week = expression.split()
    minutes = range(60) if minute == "*" else [int(v) for v in minute.split(",")]
    hours = range(24) if hour == "*" else [int(v) for v in hour.split(",")]
    times_of_day = [timedelta(hours=h, minutes=m) for h in hours for m in minutes]
    low, high = first.replace(tzinfo=UTC), end.replace(tzinfo=UTC)
    out: list[datetime] = []
    try:
        days = CronSim(f"0 0 {day_of_month} {month} {day_of_week}",
                       datetime.combine(first.date(), time(0)) - _MINUTE)
        for day in days:
            if day >= end or len(out) >= MAX_FIRINGS_PER_WINDOW:
                break
            midnight = day.replace(tzinfo=UTC)
            out.extend(moment for moment in (midnight + offset for offset in times_of_day) if low <= moment < high)
    except CronSimError:
        return ()
    return tuple(out[:MAX_FIRINGS_PER_WINDOW])


def time_zone(name: str) -> ZoneInfo:
    """An IANA time zone (``Europe/Berlin``, ``UTC``), or ``ValueError`` that says how to name one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}: give an IANA name such as UTC, Europe/Berlin or "
                         "America/New_York") from None


def level(count: int, peak: int) -> int:
    """The heat level of an hour with ``count`` firings: 0 for none, else 1-4 by its share of the
    busiest hour (``peak``); the terminal and the dashboard shade their cells by it."""
    if count <= 0 or peak <= 0:
        return 0
    return min(4, 1 + (4 * count - 1) // peak)


def level_range(index: int, peak: int) -> tuple[int, int]:
    """The counts that get heat level ``index`` (1-4) when the busiest hour has ``peak``; empty
    (low > high) when the peak is too small to reach that level."""
    return (index - 1) * peak // 4 + 1, index * peak // 4


@dataclass(frozen=True, slots=True)
class Busy:
    """One minute (an aware datetime in the week's zone) and the definitions that fire in it."""

    at: datetime
    names: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.names)


@dataclass(frozen=True)
class Week:
    """Seven days of firings of many definitions, from local midnight of ``first_day`` in ``tz``.

    ``hours[d][h]`` counts the firings on day ``d`` (0 = ``first_day``) in local hour ``h``;
    around a daylight-saving change a local hour can hold two real hours (autumn) or none (spring).
    ``per_minute`` maps every minute with a firing (UTC, so the hour a clock repeats in autumn stays
    two hours) to the indexes (into ``groups``) of the schedules that fire then; ``groups`` holds
    the definition names per distinct schedule.
    """

    first_day: date
    tz: str
    start: datetime
    end: datetime
    hours: tuple[tuple[int, ...], ...]
    groups: tuple[tuple[str, ...], ...]
    per_minute: Mapping[datetime, tuple[int, ...]] = field(repr=False)
    total: int = 0

    @property
    def days(self) -> tuple[date, ...]:
        return tuple(self.first_day + timedelta(days=i) for i in range(7))

    @property
    def peak_hour(self) -> int:
        return max((max(row) for row in self.hours), default=0)

    def count_at(self, minute: datetime) -> int:
        """How many definitions fire in this minute (an aware datetime, any zone)."""
        return sum(len(self.groups[i]) for i in self.per_minute.get(minute.astimezone(UTC), ()))

    def busiest(self, count: int = 10) -> list[Busy]:
        """The ``count`` minutes in which the most definitions fire, most first, then earliest."""
        zone = time_zone(self.tz)
        sized = sorted((-self.count_at(at), at) for at in self.per_minute)
        return [Busy(at.astimezone(zone), tuple(sorted(name for i in self.per_minute[at] for name in self.groups[i])))
                for _, at in sized[:max(0, count)]]


def week(schedules: Mapping[str, Schedule] | Iterable[tuple[str, Schedule]], *, first_day: date,
         tz: str = "UTC") -> Week:
    """Count a week of firings of ``schedules`` (definition name -> the API's five lists).

    Pass only what runs: enabled definitions with a schedule. Definitions sharing a schedule
    are walked once, so 10,000 definitions over a few hundred schedules cost a few hundred walks.
    """
    zone = time_zone(tz)
    start = datetime.combine(first_day, time(0), tzinfo=zone)
    end = datetime.combine(first_day + timedelta(days=7), time(0), tzinfo=zone)
    pairs = schedules.items() if isinstance(schedules, Mapping) else schedules
    by_cron: dict[str, list[str]] = defaultdict(list)
    lists: dict[str, Schedule] = {}
    for name, schedule in pairs:
        expression = to_cron(schedule)
        by_cron[expression].append(name)
        lists.setdefault(expression, schedule)
    groups: list[tuple[str, ...]] = []
    per_minute: dict[datetime, list[int]] = defaultdict(list)
    hours = [[0] * 24 for _ in range(7)]
    total = 0
    for index, expression in enumerate(sorted(by_cron)):
        names = tuple(sorted(by_cron[expression]))
        groups.append(names)
        per_hour: Counter[tuple[int, int]] = Counter()
        for moment in firings(lists[expression], start=start, end=end):
            local = moment.astimezone(zone)
            per_minute[moment].append(index)
            per_hour[((local.date() - first_day).days, local.hour)] += 1
        for (day, hour), fired in per_hour.items():
            hours[day][hour] += fired * len(names)
            total += fired * len(names)
    return Week(first_day=first_day, tz=tz, start=start.astimezone(UTC), end=end.astimezone(UTC),
                hours=tuple(tuple(row) for row in hours), groups=tuple(groups),
                per_minute={at: tuple(found) for at, found in per_minute.items()}, total=total)
