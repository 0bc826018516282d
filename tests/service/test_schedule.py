"""Next-run computation against two independent oracles: croniter, and a brute-force search.

The brute force knows nothing of cron libraries: it walks forward from the start and tests each
candidate against the API's rules written out literally (day-of-month and day-of-week are a
union when both are restricted; a date that does not exist is never a candidate). It steps whole
days when a day cannot match (no minute of it can) and minute by minute within matching days.
"""

from __future__ import annotations

import calendar
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from croniter import croniter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.contract import firings
from reconciler.service import ids, schedule

RANGES = {"minute": (0, 59), "hour": (0, 23), "dayOfMonth": (1, 31), "month": (1, 12), "dayOfWeek": (0, 6)}
MONTHS = [m.lower() for m in calendar.month_abbr if m] + [m for m in calendar.month_name if m]
DAYS = {"sun": 0, "Sunday": 0, "mon": 1, "Tuesday": 2, "wed": 3, "THU": 4, "friday": 5, "Sat": 6}


def field_values(field: str) -> st.SearchStrategy[list[Any]]:
    low, high = RANGES[field]
    numbers = st.lists(st.integers(low, high), min_size=1, max_size=4, unique=True)
    options = [st.just(["*"]), numbers]
    if field == "month":
        options.append(st.lists(st.sampled_from(MONTHS), min_size=1, max_size=3))
    if field == "dayOfWeek":
        options.append(st.lists(st.sampled_from(sorted(DAYS)), min_size=1, max_size=3))
    return st.one_of(*options)


schedules = st.fixed_dictionaries({field: field_values(field) for field in RANGES})
starts = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2031, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC))


def numbers(field: str, values: list[Any]) -> set[int] | None:
    """None for ``["*"]``; names turned into numbers."""
    if values == ["*"]:
        return None
    out = set()
    for value in values:
        if isinstance(value, int):
            out.add(value)
        elif field == "month":
            out.add(MONTHS.index(value) % 12 + 1)
        else:
            out.add(DAYS[value])
    return out


def day_matches(sched: dict[str, Any], day: datetime) -> bool:
    months, dom, dow = (numbers(f, sched[f]) for f in ("month", "dayOfMonth", "dayOfWeek"))
    if months is not None and day.month not in months:
        return False
    weekday = (day.weekday() + 1) % 7  # Python: Monday = 0; the API: Sunday = 0
    in_dom = dom is None or day.day in dom
    in_dow = dow is None or weekday in dow
    if dom is not None and dow is not None:
        return day.day in dom or weekday in dow
    return in_dom and in_dow


def brute_force(sched: dict[str, Any], after: datetime, *, days: int = 366 * 5) -> datetime | None:
    minutes, hours = numbers("minute", sched["minute"]), numbers("hour", sched["hour"])
    moment = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    end = moment + timedelta(days=days)
    while moment < end:
        if not day_matches(sched, moment):
            moment = (moment + timedelta(days=1)).replace(hour=0, minute=0)
            continue
        if (hours is None or moment.hour in hours) and (minutes is None or moment.minute in minutes):
            return moment
        moment += timedelta(minutes=1)
    return None


def croniter_next(sched: dict[str, Any], after: datetime) -> datetime | None:
    expression = schedule.to_cron(sched)
    start = after.replace(second=0, microsecond=0)
    try:
        found = croniter(expression, start, day_or=True, max_years_between_matches=5).get_next(datetime)
    except Exception:  # croniter gives up (CroniterBadDateError) on dates that never occur
        return None
    assert isinstance(found, datetime)
    return found.astimezone(UTC)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sched=schedules, after=starts)
def test_agrees_with_croniter(sched: dict[str, Any], after: datetime) -> None:
    ours = schedule.next_run(sched, after=after)
    theirs = croniter_next(sched, after)
    if theirs is None:
        assert ours is None or ours > after + timedelta(days=366 * 4)
    else:
        assert ours == theirs, schedule.to_cron(sched)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sched=schedules, after=starts)
def test_agrees_with_brute_force(sched: dict[str, Any], after: datetime) -> None:
    ours = schedule.next_run(sched, after=after)
    expected = brute_force(sched, after)
    assert ours == expected, (schedule.to_cron(sched), after)


@settings(max_examples=40, deadline=None)
@given(minute=st.sampled_from([["*"], [0], [15, 45]]), hour=st.sampled_from([["*"], [3]]), after=starts)
def test_dense_schedules_match_pure_minute_stepping(minute: list[Any], hour: list[Any], after: datetime) -> None:
    """No day skipping at all: every minute from the start is tried, for up to a day."""
    sched = {"minute": minute, "hour": hour, "dayOfMonth": ["*"], "month": ["*"], "dayOfWeek": ["*"]}
    moment = after.replace(second=0, microsecond=0)
    for _ in range(24 * 60 + 1):
        moment += timedelta(minutes=1)
        if (minute == ["*"] or moment.minute in minute) and (hour == ["*"] or moment.hour in hour):
            break
    assert schedule.next_run(sched, after=after) == moment


def random_schedule(rng: random.Random) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field, (low, high) in RANGES.items():
        roll = rng.random()
        if roll < 0.35:
            out[field] = ["*"]
        elif field == "month" and roll > 0.85:
            out[field] = rng.sample(MONTHS, rng.randint(1, 3))
        elif field == "dayOfWeek" and roll > 0.85:
            out[field] = rng.sample(sorted(DAYS), rng.randint(1, 3))
        else:
            out[field] = rng.sample(range(low, high + 1), rng.randint(1, min(4, high - low + 1)))
    return out


def test_seeded_sweep_of_thousands_of_schedules() -> None:
    """Cheap volume next to hypothesis' shrinking: 2000 schedules vs croniter, 250 vs brute force."""
    rng = random.Random(20240229)
    for i in range(2000):
        sched = random_schedule(rng)
        after = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(12 * 366 * 24 * 60))
        ours = schedule.next_run(sched, after=after)
        assert schedule.next_run_iso(sched, after=after) == (None if ours is None else ids.iso(ours))
        theirs = croniter_next(sched, after)
        assert ours == theirs or (theirs is None and (ours is None or ours > after + timedelta(days=366 * 4))), (
            schedule.to_cron(sched), after)
        if i % 8 == 0:
            assert ours == brute_force(sched, after), (schedule.to_cron(sched), after)


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_day_fields_are_a_union_when_both_restricted() -> None:
    sched = {"minute": [0], "hour": [0], "dayOfMonth": [15], "month": ["*"], "dayOfWeek": ["mon"]}
    # 2025-01-01 is a Wednesday: the next Monday (6th) comes before the 15th
    assert schedule.next_run(sched, after=at(2025, 1, 1)) == at(2025, 1, 6)
    assert firings.next_firings(sched, after=at(2025, 1, 1), count=4) == [
        at(2025, 1, 6), at(2025, 1, 13), at(2025, 1, 15), at(2025, 1, 20)]


def test_weekday_only_when_day_of_month_is_every_day() -> None:
    sched = {"minute": [30], "hour": [16], "dayOfMonth": ["*"], "month": ["*"], "dayOfWeek": ["Tuesday"]}
    assert schedule.next_run(sched, after=at(2025, 1, 1)) == at(2025, 1, 7, 16, 30)


def test_impossible_dates_are_skipped_and_never_firing_is_none() -> None:
    sched = {"minute": [0], "hour": [0], "dayOfMonth": [31], "month": ["feb", "april", 5], "dayOfWeek": ["*"]}
    assert schedule.next_run(sched, after=at(2025, 1, 1)) == at(2025, 5, 31)
    never = {"minute": [0], "hour": [0], "dayOfMonth": [30, 31], "month": ["feb"], "dayOfWeek": ["*"]}
    assert schedule.next_run(never, after=at(2025, 1, 1)) is None
    leap = {"minute": [0], "hour": [12], "dayOfMonth": [29], "month": [2], "dayOfWeek": ["*"]}
    assert schedule.next_run(leap, after=at(2025, 1, 1)) == at(2028, 2, 29, 12)


def test_strictly_after_and_seconds_ignored() -> None:
    sched = {"minute": [5], "hour": ["*"], "dayOfMonth": ["*"], "month": ["*"], "dayOfWeek": ["*"]}
    assert schedule.next_run(sched, after=at(2025, 1, 1, 0, 5)) == at(2025, 1, 1, 1, 5)
    assert schedule.next_run(sched, after=datetime(2025, 1, 1, 0, 4, 59, 999, tzinfo=UTC)) == at(2025, 1, 1, 0, 5)


def test_names_become_numbers_in_cron_text() -> None:
    sched = {"minute": [0, 30], "hour": [2], "dayOfMonth": ["*"], "month": ["jan", "October"], "dayOfWeek": ["sun", 6]}
    assert schedule.to_cron(sched) == "0,30 2 * 1,10 0,6"


def test_naive_datetime_is_refused() -> None:
    sched = {"minute": ["*"], "hour": ["*"], "dayOfMonth": ["*"], "month": ["*"], "dayOfWeek": ["*"]}
    try:
        schedule.next_run(sched, after=datetime(2025, 1, 1))
    except ValueError as exc:
        assert "timezone-aware" in str(exc)
    else:
        raise AssertionError("a naive datetime was accepted")
