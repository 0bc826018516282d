"""Schedules: five-field cron strings translated exactly into the API's five lists, and names
(``jan``, ``Sunday``) turned into numbers. Pure.

The API treats ``dayOfMonth`` and ``dayOfWeek`` as a union when both are restricted, like cron.
Cron (Vixie, cronie, cronsim) has one twist: a day field that *starts with* ``*`` (``*/2``) counts
as unrestricted for that rule, so ``0 0 */2 * 1`` means "every other day that is a Monday"
(an intersection). The API's lists cannot say that, so such a string is refused, not guessed.
"""

from __future__ import annotations

import calendar
import functools
import itertools
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

MONTH_NAMES: Final = {name.lower(): i for i, name in enumerate(calendar.month_name) if name} | {
    name.lower(): i for i, name in enumerate(calendar.month_abbr) if name
}
# calendar's weekday names start on Monday; the API's dayOfWeek has Sunday = 0.
DAY_NAMES: Final = {name.lower(): (i + 1) % 7 for i, name in enumerate(calendar.day_name)} | {
    name.lower(): (i + 1) % 7 for i, name in enumerate(calendar.day_abbr)
}
FIELDS: Final = ("minute", "hour", "dayOfMonth", "month", "dayOfWeek")
RANGES: Final = {"minute": (0, 59), "hour": (0, 23), "dayOfMonth": (1, 31), "month": (1, 12), "dayOfWeek": (0, 6)}
MACROS: Final = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

ScheduleValue = list[int] | list[str]  # a list of numbers, or ["*"]


@dataclass(frozen=True)
class CronError(Exception):
    """``offset`` is the 0-based character position in the cron string the problem starts at."""

    message: str
    offset: int = 0
    hint: str | None = None

    def __str__(self) -> str:
        return self.message


def _number(token: str, field: str, offset: int) -> int:
    names = MONTH_NAMES if field == "month" else DAY_NAMES if field == "dayOfWeek" else {}
    low, high = RANGES[field]
    if token.lower() in names:
        return names[token.lower()]
    if not token.isdigit():
        raise CronError(f"{field}: '{token}' is not a number" + (" or a name" if names else ""), offset,
                        "cron special characters L, W, # and ? have no equivalent in the API's lists"
                        if any(c in token for c in "LW#?") else None)
    value = int(token)
    if field == "dayOfWeek":
        high = 7  # cron's day-of-week runs 0-7 (both Sunday); folded to 0-6 once the values are known
    if not low <= value <= high:
        raise CronError(f"{field}: {value} is out of range {low}-{high}", offset)
    return value


def _parse_field(text: str, field: str, offset: int) -> tuple[list[int], bool]:
    """Values a cron field allows, and whether it starts with ``*`` (cron's "unrestricted" flag)."""
    low, high = RANGES[field]
    values: set[int] = set()
    pos = offset
    for part in text.split(","):
        if not part:
            raise CronError(f"{field}: empty element in '{text}'", pos)
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{field}: step '{step_text}' must be a positive number", pos + len(base) + 1)
            step = int(step_text)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            start, end = _number(a, field, pos), _number(b, field, pos + len(a) + 1)
            if start > end:
                raise CronError(f"{field}: range '{base}' runs backwards", pos,
                                "write the smaller value first, or split it into two ranges")
        else:
            start = _number(base, field, pos)
            # 'N/step' runs to the field's end; cron's day-of-week ends at 7 (Sunday again), so
            # '1/1' is Monday..Sunday, not Monday..Saturday.
            end = (7 if field == "dayOfWeek" else high) if step_text else start
        values.update(v % 7 if field == "dayOfWeek" else v for v in range(start, end + 1, step))
        pos += len(part) + 1
    return sorted(values), text.startswith("*")


def cron_to_schedule(expression: str) -> dict[str, ScheduleValue]:
    """``"0 2 * * 1-5"`` -> ``{minute: [0], hour: [2], dayOfMonth: ["*"], month: ["*"], dayOfWeek: [1..5]}``.

    Raises :class:`CronError` when the string is malformed or means something the lists cannot say.
    """
    return {field: list(values) for field, values in _translate(expression).items()}  # type: ignore[misc]


@functools.lru_cache(maxsize=4096)
def _translate(expression: str) -> dict[str, ScheduleValue]:
    """:func:`cron_to_schedule`, memoized: specs repeat the same few cron strings (callers get copies)."""
    text = expression.strip()
    lead = len(expression) - len(expression.lstrip())
    if text.startswith("@"):
        if text.lower() not in MACROS:
            raise CronError(f"unknown macro '{text}'", lead, f"use one of {', '.join(sorted(MACROS))}")
        text, lead = MACROS[text.lower()], 0
    parts = text.split()
    if parts and "=" in parts[0]:  # cronie's CRON_TZ=Europe/Paris, Kubernetes' TZ=...: no zone here
        raise CronError(f"a time zone prefix ('{parts[0]}') is not supported: schedules are in UTC", lead,
                        f"remove '{parts[0]}' and write the times in UTC")
    zone = next((p for p in parts[5:] if p.upper() in ("UTC", "GMT", "Z") or ("/" in p and p[:1].isalpha())), None)
    if zone is not None:  # "0 22 * * 5 Europe/Paris"
        raise CronError(f"a time zone ('{zone}') is not supported: schedules are in UTC", expression.find(zone),
                        f"remove '{zone}' and write the times in UTC")
    if len(parts) != 5:
        raise CronError(f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}", lead,
                        "a seconds or year field is not supported" if len(parts) in (6, 7) else None)
    offsets, cursor = [], lead
    for part in parts:
        cursor = expression.find(part, cursor) if expression.find(part, cursor) >= 0 else cursor
        offsets.append(cursor)
        cursor += len(part)
    out: dict[str, ScheduleValue] = {}
    star: dict[str, bool] = {}
    for field, part, offset in zip(FIELDS, parts, offsets, strict=True):
        values, starts_with_star = _parse_field(part, field, offset)
        star[field] = starts_with_star
        low, high = RANGES[field]
        full = values == list(range(low, high + 1))
        # A day field written as '1-31' is restricted for cron's union rule even though it covers
        # every value, so it stays an explicit list; only a '*'-led full field becomes ["*"].
        day_field = field in ("dayOfMonth", "dayOfWeek")
        out[field] = ["*"] if full and (starts_with_star or not day_field) else values
    dom_restricted = out["dayOfMonth"] != ["*"]
    dow_restricted = out["dayOfWeek"] != ["*"]
    if dom_restricted and dow_restricted and (star["dayOfMonth"] or star["dayOfWeek"]):
        which = "dayOfMonth" if star["dayOfMonth"] else "dayOfWeek"
        raise CronError(
            f"{which}: '{parts[FIELDS.index(which)]}' starts with '*', so cron matches days in BOTH day fields, "
            "but the API fires on days in EITHER field",
            offsets[FIELDS.index(which)],
            "list the days explicitly (e.g. 1,3,5) to get the API's union, or write the five lists yourself",
        )
    return out


def normalize_field(field: str, values: list[int | str]) -> ScheduleValue:
    """Names to numbers, sorted, duplicates dropped; ``["*"]`` and full ranges stay ``["*"]``."""
    if values == ["*"]:
        return ["*"]
    names = MONTH_NAMES if field == "month" else DAY_NAMES if field == "dayOfWeek" else {}
    numbers = sorted({names[v.lower()] if isinstance(v, str) else int(v) for v in values})
    return numbers


def normalize_schedule(schedule: dict[str, list[int | str]]) -> dict[str, ScheduleValue]:
    return {field: normalize_field(field, list(schedule[field])) for field in FIELDS}


def never_fires(schedule: dict[str, ScheduleValue]) -> str | None:
    """Why a normalized schedule can never fire, or None. Only day/month combinations can fail."""
    if schedule["dayOfWeek"] != ["*"]:
        return None  # a weekday occurs in every month; with dayOfMonth restricted too, the API adds them
    if schedule["dayOfMonth"] == ["*"]:
        return None
    months = range(1, 13) if schedule["month"] == ["*"] else schedule["month"]
    days = schedule["dayOfMonth"]
    for month in months:
        longest = 29 if month == 2 else calendar.monthrange(2001, int(month))[1]
        if any(int(day) <= longest for day in days):
            return None
    month_names = ", ".join(calendar.month_abbr[int(m)] for m in months)
    return f"day(s) {', '.join(str(d) for d in days)} never occur in {month_names}: the schedule never fires"


def leap_day_only(schedule: dict[str, ScheduleValue]) -> bool:
    """True when the schedule can fire only on 29 February (once every four years)."""
    if schedule["dayOfWeek"] != ["*"] or schedule["dayOfMonth"] == ["*"]:
        return False
    months = range(1, 13) if schedule["month"] == ["*"] else schedule["month"]
    hits = [(int(m), int(d)) for m in months for d in schedule["dayOfMonth"]
            if int(d) <= (29 if int(m) == 2 else calendar.monthrange(2001, int(m))[1])]
    return bool(hits) and all(hit == (2, 29) for hit in hits)


# Day-of-month, month and weekday repeat together every 28 years between 1901 and 2099, so the
# firing days of one 28-year stretch show every gap a schedule has (29 February included).
_CYCLE_START: Final = date(2001, 1, 1)
_CYCLE_DAYS: Final = (date(2029, 1, 1) - _CYCLE_START).days


def _members(values: ScheduleValue, field: str) -> frozenset[int]:
    low, high = RANGES[field]
    return frozenset(range(low, high + 1)) if values == ["*"] else frozenset(int(v) for v in values)


def longest_gap(schedule: dict[str, ScheduleValue]) -> timedelta | None:
    """The longest time between two consecutive firings of a normalized schedule (UTC, the API's
    dayOfMonth/dayOfWeek union); None when it never fires. A window that stays open at least this
    long after each firing never closes."""
    key = tuple(tuple(schedule[f]) for f in FIELDS)
    minutes = _longest_gap_minutes(key)  # type: ignore[arg-type]
    return None if minutes is None else timedelta(minutes=minutes)


@functools.lru_cache(maxsize=256)
def _longest_gap_minutes(key: tuple[tuple[int | str, ...], ...]) -> int | None:
    lists: dict[str, ScheduleValue] = {f: list(v) for f, v in zip(FIELDS, key, strict=True)}  # type: ignore[misc]
    hours, mins = _members(lists["hour"], "hour"), _members(lists["minute"], "minute")
    times = sorted(h * 60 + m for h in hours for m in mins)
    months = _members(lists["month"], "month")
    doms, dows = _members(lists["dayOfMonth"], "dayOfMonth"), _members(lists["dayOfWeek"], "dayOfWeek")
    dom_any, dow_any = lists["dayOfMonth"] == ["*"], lists["dayOfWeek"] == ["*"]
    fire_days = []  # days since _CYCLE_START on which the schedule fires, over one cycle
    start = _CYCLE_START.toordinal()
    for year in range(_CYCLE_START.year, _CYCLE_START.year + 28):
        for month in sorted(months):
            first = date(year, month, 1)
            weekday = (first.weekday() + 1) % 7  # Sunday = 0, as the API counts
            base = first.toordinal() - start
            for day in range(1, calendar.monthrange(year, month)[1] + 1):
                in_dom, in_dow = day in doms, (weekday + day - 1) % 7 in dows
                if (in_dom and in_dow) if dom_any or dow_any else (in_dom or in_dow):
                    fire_days.append(base + day - 1)
    if not fire_days:
        return None
    # the last firing day of the cycle is followed by the first of the next
    longest_days = max(b - a for a, b in zip(fire_days, [*fire_days[1:], fire_days[0] + _CYCLE_DAYS], strict=True))
    if not times:
        return None
    within = max((b - a for a, b in itertools.pairwise(times)), default=0)
    across = longest_days * 24 * 60 - (times[-1] - times[0])
    return max(within, across)
