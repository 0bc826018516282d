"""Firing times of the API's five lists, against a brute-force oracle that knows no cron library:
every minute of the window tested against the API's rules written out literally (dayOfMonth and
dayOfWeek are a union when both are restricted; names are numbers)."""

from __future__ import annotations

import calendar
import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.contract import cron, firings

RANGES = {"minute": (0, 59), "hour": (0, 23), "dayOfMonth": (1, 31), "month": (1, 12), "dayOfWeek": (0, 6)}


def _values(field: str) -> st.SearchStrategy[list[Any]]:
    low, high = RANGES[field]
    numbers = st.lists(st.integers(low, high), min_size=1, max_size=4, unique=True)
    return st.one_of(st.just(["*"]), numbers)


schedules = st.fixed_dictionaries({field: _values(field) for field in RANGES})
starts = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC))


def fires(sched: dict[str, Any], moment: datetime) -> bool:
    def allowed(field: str, value: int) -> bool:
        return sched[field] == ["*"] or value in sched[field]

    weekday = (moment.weekday() + 1) % 7  # Python: Monday = 0; the API: Sunday = 0
    dom_free, dow_free = sched["dayOfMonth"] == ["*"], sched["dayOfWeek"] == ["*"]
    if dom_free or dow_free:
        day = allowed("dayOfMonth", moment.day) and allowed("dayOfWeek", weekday)
    else:
        day = moment.day in sched["dayOfMonth"] or weekday in sched["dayOfWeek"]
    return day and allowed("month", moment.month) and allowed("hour", moment.hour) and allowed("minute", moment.minute)


def brute_force(sched: dict[str, Any], start: datetime, end: datetime) -> list[datetime]:
    moment = start.replace(second=0, microsecond=0)
    if moment < start:
        moment += timedelta(minutes=1)
    out = []
    while moment < end:
        if fires(sched, moment):
            out.append(moment)
        moment += timedelta(minutes=1)
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sched=schedules, start=starts, hours=st.integers(1, 72))
def test_firings_in_a_window_equal_the_brute_force(sched: dict[str, Any], start: datetime, hours: int) -> None:
    end = start + timedelta(hours=hours)
    assert list(firings.firings(sched, start=start, end=end)) == brute_force(sched, start, end), firings.to_cron(sched)


@settings(max_examples=60, deadline=None)
@given(sched=schedules, after=starts)
def test_next_firings_continue_the_window_walk(sched: dict[str, Any], after: datetime) -> None:
    upcoming = firings.next_firings(sched, after=after, count=3)
    first = after.replace(second=0, microsecond=0) + timedelta(minutes=1)  # strictly after after's minute
    window = firings.firings(sched, start=first, end=first + timedelta(days=3))
    if len(window) >= 3:
        assert upcoming == list(window[:3])
    else:  # the rest lie beyond the window (or the schedule never fires)
        assert upcoming[:len(window)] == list(window)
        assert all(moment >= first + timedelta(days=3) and fires(sched, moment) for moment in upcoming[len(window):])


def test_window_edges_the_start_minute_counts_the_end_does_not() -> None:
    every_hour = cron.cron_to_schedule("0 * * * *")
    start = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
    found = firings.firings(every_hour, start=start, end=start + timedelta(hours=3))
    assert found == (start, start + timedelta(hours=1), start + timedelta(hours=2))
    # a start inside 02:00 (its minute has begun) does not count 02:00 again
    assert firings.firings(every_hour, start=start + timedelta(seconds=1), end=start + timedelta(hours=1)) == ()


def test_a_schedule_that_never_fires_has_no_firings() -> None:
    never = {"minute": [0], "hour": [0], "dayOfMonth": [31], "month": [2], "dayOfWeek": ["*"]}
    assert firings.firings(never, start=datetime(2026, 1, 1, tzinfo=UTC), end=datetime(2026, 3, 1, tzinfo=UTC)) == ()
    assert firings.next_firing(never, after=datetime(2026, 1, 1, tzinfo=UTC)) is None


def test_names_are_numbers_and_cron_text_is_canonical() -> None:
    named = {"minute": [30, 0], "hour": [2], "dayOfMonth": ["*"], "month": ["jan", "Feb"], "dayOfWeek": ["Monday", "sun"]}
    assert firings.to_cron(named) == "0,30 2 * 1,2 0,1"


def test_naive_datetimes_and_unknown_zones_are_refused() -> None:
    daily = cron.cron_to_schedule("@daily")
    with pytest.raises(ValueError, match="timezone-aware"):
        firings.next_firing(daily, after=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        firings.firings(daily, start=datetime(2026, 1, 1), end=datetime(2026, 1, 2, tzinfo=UTC))
    with pytest.raises(ValueError, match="IANA name such as UTC, Europe/Berlin"):
        firings.week({"a": daily}, first_day=date(2026, 1, 5), tz="Europe/Berlinn")


def test_a_week_counts_firings_per_hour_and_names_the_busiest_minutes() -> None:
    scheds = {f"nightly-{i:02d}": cron.cron_to_schedule("0 2 * * 1") for i in range(41)}
    scheds["hourly"] = cron.cron_to_schedule("15 * * * *")
    scheds["twice"] = cron.cron_to_schedule("0,30 2 * * 1")
    week = firings.week(scheds, first_day=date(2026, 1, 5))  # a Monday
    assert week.days[0] == date(2026, 1, 5) and week.days[-1] == date(2026, 1, 11)
    assert week.hours[0][2] == 41 + 1 + 2  # Monday 02:xx: 41 nightly, hourly at :15, twice at :00 and :30
    assert week.hours[1][2] == 1 and week.hours[0][3] == 1
    assert week.total == 41 + 7 * 24 + 2
    top = week.busiest(2)
    assert top[0].at == datetime(2026, 1, 5, 2, 0, tzinfo=UTC) and top[0].count == 42
    assert top[0].names == tuple(sorted([*[f"nightly-{i:02d}" for i in range(41)], "twice"]))
    assert top[1].count == 1 and top[1].at == datetime(2026, 1, 5, 0, 15, tzinfo=UTC)  # ties: earliest first
    assert week.count_at(datetime(2026, 1, 5, 2, 30, tzinfo=UTC)) == 1


def test_a_local_week_follows_daylight_saving_time() -> None:
    hourly = {"hourly": cron.cron_to_schedule("0 * * * *")}
    autumn = firings.week(hourly, first_day=date(2026, 10, 19), tz="Europe/Berlin")  # clocks go back on Sun 25 Oct
    sunday = autumn.days.index(date(2026, 10, 25))
    assert sum(autumn.hours[sunday]) == 25 and autumn.hours[sunday][2] == 2
    busiest = autumn.busiest(200)
    assert all(b.count == 1 for b in busiest)  # the repeated 02:00 is two minutes, each with one firing
    spring = firings.week(hourly, first_day=date(2026, 3, 23), tz="Europe/Berlin")  # forward on Sun 29 Mar
    sunday = spring.days.index(date(2026, 3, 29))
    assert sum(spring.hours[sunday]) == 23 and spring.hours[sunday][2] == 0
    assert spring.start == datetime(2026, 3, 22, 23, 0, tzinfo=UTC)  # local midnight, CET


def test_a_month_restricted_schedule_shows_only_in_its_week() -> None:
    first_of_month = {"monthly": cron.cron_to_schedule("0 6 1 * *")}
    assert firings.week(first_of_month, first_day=date(2026, 1, 5)).total == 0
    week = firings.week(first_of_month, first_day=date(2026, 1, 29))
    assert week.total == 1 and week.hours[3][6] == 1  # Sun 1 Feb is the fourth day


def test_calendar_sanity_of_the_oracle() -> None:
    # Sunday = 0 in the API; 4 January 2026 is a Sunday
    assert calendar.weekday(2026, 1, 4) == calendar.SUNDAY
    assert fires({"minute": [0], "hour": [0], "dayOfMonth": ["*"], "month": ["*"], "dayOfWeek": [0]},
                 datetime(2026, 1, 4, tzinfo=UTC))


@pytest.mark.parametrize(("expression", "gap"), [
    ("0 0 31 2 *", None),  # 31 February: never
    ("0 0 29 2 *", timedelta(days=1461)),  # leap days, four years apart (2001-2028)
    ("* * * * *", timedelta(minutes=1)),
    ("*/5 * * * *", timedelta(minutes=5)),
    ("0 0,12 * * *", timedelta(hours=12)),
    ("30 23 * * *", timedelta(days=1)),
    ("0 22 * * 5", timedelta(days=7)),
    ("0 9 * * 1-4", timedelta(days=4)),  # Thursday 09:00 to Monday 09:00
    ("0 0 1 * 1", timedelta(days=7)),  # the API's union: the 1st or a Monday
    ("0 0 30 * *", timedelta(days=60)),  # 30 January to 30 March: February has no 30th
    ("0 8,17 * * 1-5", timedelta(days=2, hours=15)),  # Friday 17:00 to Monday 08:00
])
def test_longest_gap_between_firings(expression: str, gap: timedelta | None) -> None:
    assert cron.longest_gap(cron.cron_to_schedule(expression)) == gap


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sched=schedules)
def test_longest_gap_bounds_every_gap_cronsim_walks(sched: dict[str, Any]) -> None:
    """No two consecutive firings walked by cronsim (up to 2,000 from 2026) are further apart than
    the longest gap; a schedule with no gap has no firings."""
    gap = cron.longest_gap(cron.normalize_schedule(sched))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    walked = firings.next_firings(sched, after=start, count=2000)
    if gap is None:
        assert walked == []
        return
    assert walked and all(b - a <= gap for a, b in itertools.pairwise(walked))
