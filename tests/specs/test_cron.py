"""Cron strings into the API's five lists: exact translations, refusals, and agreement with cron (cronsim)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from cronsim import CronSim
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from reconciler.contract import cron

STAR = ["*"]


def lists(minute: object, hour: object, dom: object, month: object, dow: object) -> dict[str, object]:
    return {"minute": minute, "hour": hour, "dayOfMonth": dom, "month": month, "dayOfWeek": dow}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0 2 * * 1-5", lists([0], [2], STAR, STAR, [1, 2, 3, 4, 5])),
        ("*/15 * * * *", lists([0, 15, 30, 45], STAR, STAR, STAR, STAR)),
        ("5-20/5 0,12 1 jan,JUL *", lists([5, 10, 15, 20], [0, 12], [1], [1, 7], STAR)),
        ("0 0 * jan-mar sun", lists([0], [0], STAR, [1, 2, 3], [0])),
        ("0 0 * * 7", lists([0], [0], STAR, STAR, [0])),
        ("0 0 * * 5-7", lists([0], [0], STAR, STAR, [0, 5, 6])),
        ("0 0 * * Monday,friday", lists([0], [0], STAR, STAR, [1, 5])),
        ("0 0 1,15 * 1", lists([0], [0], [1, 15], STAR, [1])),  # both restricted, neither '*': union, as the API
        ("0 0 1-31 * 1", lists([0], [0], list(range(1, 32)), STAR, [1])),  # '1-31' is restricted for cron's rule
        ("0-59 0-23 * 1-12 0-6", lists(STAR, STAR, STAR, STAR, list(range(7)))),
        ("*/1 * */1 * *", lists(STAR, STAR, STAR, STAR, STAR)),
        ("30 6 10/10 * *", lists([30], [6], [10, 20, 30], STAR, STAR)),
        ("  0 2 * * *  ", lists([0], [2], STAR, STAR, STAR)),
        ("@daily", lists([0], [0], STAR, STAR, STAR)),
        ("@midnight", lists([0], [0], STAR, STAR, STAR)),
        ("@hourly", lists([0], STAR, STAR, STAR, STAR)),
        ("@weekly", lists([0], [0], STAR, STAR, [0])),
        ("@monthly", lists([0], [0], [1], STAR, STAR)),
        ("@YEARLY", lists([0], [0], [1], [1], STAR)),
        ("@annually", lists([0], [0], [1], [1], STAR)),
    ],
)
def test_translation(expression: str, expected: dict[str, object]) -> None:
    assert cron.cron_to_schedule(expression) == expected


def test_result_is_a_fresh_copy() -> None:
    first = cron.cron_to_schedule("0 2 * * 1-5")
    first["minute"].append(7)  # type: ignore[arg-type]
    assert cron.cron_to_schedule("0 2 * * 1-5")["minute"] == [0]


@pytest.mark.parametrize(
    ("expression", "message", "offset"),
    [
        ("0 0 */2 * 1", "dayOfMonth: '*/2' starts with '*', so cron matches days in BOTH day fields", 4),
        ("0 0 1 * */2", "dayOfWeek: '*/2' starts with '*'", 8),
        ("0 0 L * *", "dayOfMonth: 'L' is not a number", 4),
        ("0 0 15W * *", "dayOfMonth: '15W' is not a number", 4),
        ("0 0 * * 1#2", "dayOfWeek: '1#2' is not a number or a name", 8),
        ("0 0 ? * *", "dayOfMonth: '?' is not a number", 4),
        ("0 0 2 * * *", "expected 5 fields", 0),
        ("0 0 * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4", 0),
        ("61 * * * *", "minute: 61 is out of range 0-59", 0),
        ("0 24 * * *", "hour: 24 is out of range 0-23", 2),
        ("0 0 0 * *", "dayOfMonth: 0 is out of range 1-31", 4),
        ("0 0 * 13 *", "month: 13 is out of range 1-12", 6),
        ("0 0 * * 8", "dayOfWeek: 8 is out of range 0-7", 8),
        ("0 0 * * 5-1", "dayOfWeek: range '5-1' runs backwards", 8),
        ("*/0 * * * *", "minute: step '0' must be a positive number", 2),
        ("0 0 * * mon-fry", "dayOfWeek: 'fry' is not a number or a name", 12),
        ("0 0 * foo *", "month: 'foo' is not a number or a name", 6),
        ("1,,2 * * * *", "minute: empty element in '1,,2'", 2),
        ("@fortnightly", "unknown macro '@fortnightly'", 0),
    ],
)
def test_refusals(expression: str, message: str, offset: int) -> None:
    with pytest.raises(cron.CronError) as caught:
        cron.cron_to_schedule(expression)
    assert message in caught.value.message
    assert caught.value.offset == offset


def test_refusal_hints() -> None:
    with pytest.raises(cron.CronError) as caught:
        cron.cron_to_schedule("0 0 L * *")
    assert caught.value.hint == "cron special characters L, W, # and ? have no equivalent in the API's lists"
    with pytest.raises(cron.CronError) as caught:
        cron.cron_to_schedule("0 0 2 * * 2026")
    assert caught.value.hint == "a seconds or year field is not supported"


def test_normalize_schedule_names_and_order() -> None:
    raw = lists([30, 0], ["*"], [15, 1], ["Jan", "october", 3], ["sun", "Saturday", 1])
    assert cron.normalize_schedule(raw) == lists([0, 30], STAR, [1, 15], [1, 3, 10], [0, 1, 6])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("schedule", "never"),
    [
        (lists([0], [0], [30, 31], [2], STAR), "day(s) 30, 31 never occur in Feb: the schedule never fires"),
        (lists([0], [0], [31], [4, 6, 9, 11], STAR), "day(s) 31 never occur in Apr, Jun, Sep, Nov: the schedule never fires"),
        (lists([0], [0], [31], [2], [1]), None),  # dayOfWeek adds Mondays
        (lists([0], [0], [29], [2], STAR), None),  # leap years
        (lists([0], [0], [31], STAR, STAR), None),
    ],
)
def test_never_fires(schedule: dict[str, cron.ScheduleValue], never: str | None) -> None:
    assert cron.never_fires(schedule) == never


def test_leap_day_only() -> None:
    assert cron.leap_day_only(lists([0], [0], [29], [2], STAR))  # type: ignore[arg-type]
    assert not cron.leap_day_only(lists([0], [0], [28, 29], [2], STAR))  # type: ignore[arg-type]
    assert not cron.leap_day_only(lists([0], [0], [29], [2, 3], STAR))  # type: ignore[arg-type]
    assert not cron.leap_day_only(lists([0], [0], [29], [2], [1]))  # type: ignore[arg-type]


# --- agreement with cron ----------------------------------------------------------------------

def cron_fires(expression: str, at: datetime) -> bool:
    """Whether Vixie cron fires at ``at``. cronsim is the oracle, not croniter: croniter reads a
    day field written as a full range ('0-6') as '*', so for '1,*/2 * 0-6' it intersects the two
    day fields where cron (and the API's lists we translate to) take their union."""
    return next(CronSim(expression, at - timedelta(minutes=1))) == at


def api_fires(schedule: dict[str, cron.ScheduleValue], at: datetime) -> bool:
    """The API's rule (reference §8): every list must match; restricted day fields are a union."""
    def has(name: str, value: int) -> bool:
        return schedule[name] == STAR or value in schedule[name]

    weekday = (at.weekday() + 1) % 7  # Sunday = 0
    if not (has("minute", at.minute) and has("hour", at.hour) and has("month", at.month)):
        return False
    dom, dow = schedule["dayOfMonth"] != STAR, schedule["dayOfWeek"] != STAR
    if dom and dow:
        return at.day in schedule["dayOfMonth"] or weekday in schedule["dayOfWeek"]
    return has("dayOfMonth", at.day) and has("dayOfWeek", weekday)


def _element(low: int, high: int, names: list[str]) -> st.SearchStrategy[str]:
    value = st.integers(low, high)
    named = st.sampled_from(names) if names else value.map(str)
    single = st.one_of(value.map(str), named)
    # croniter reads a one-value range such as '1-1' as '*' (a croniter bug), so ranges span two or more
    ranged = st.tuples(value, value).filter(lambda ab: ab[0] != ab[1]).map(lambda ab: f"{min(ab)}-{max(ab)}")
    stepped = st.tuples(st.one_of(st.just("*"), ranged, value.map(str)), st.integers(1, high - low + 1)).map(
        lambda bs: f"{bs[0]}/{bs[1]}")
    return st.one_of(single, ranged, stepped)


def _field(low: int, high: int, names: list[str] = []) -> st.SearchStrategy[str]:  # noqa: B006
    return st.one_of(st.just("*"), st.lists(_element(low, high, names), min_size=1, max_size=3).map(",".join))


# croniter knows only three-letter names; full names are covered by test_translation
MONTHS = ["jan", "Feb", "MAR", "apr", "Oct", "dec"]
DAYS = ["sun", "Mon", "TUE", "wed", "Fri", "sat"]
CRON = st.tuples(_field(0, 59), _field(0, 23), _field(1, 31), _field(1, 12, MONTHS), _field(0, 7, DAYS)).map(" ".join)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expression=CRON, data=st.data())
def test_translation_fires_like_cron(expression: str, data: st.DataObject) -> None:
    try:
        schedule = cron.cron_to_schedule(expression)
    except cron.CronError:
        assume(False)
        raise
    # datetimes in a leap year and around it; components drawn from the lists half of the time so
    # that matches are as frequent as misses
    def pick(name: str, low: int, high: int) -> int:
        values = schedule[name]
        if values != STAR and data.draw(st.booleans()):
            return int(data.draw(st.sampled_from(values)))
        return data.draw(st.integers(low, high))

    for _ in range(25):
        year = data.draw(st.sampled_from([2023, 2024, 2025]))
        month = pick("month", 1, 12)
        day = pick("dayOfMonth", 1, 31)
        start = datetime(year, month, 1)
        at = start + timedelta(days=day - 1, hours=pick("hour", 0, 23), minutes=pick("minute", 0, 59))
        if at.month != month:  # no 31 February: try the last day instead
            at = at.replace(day=1) - timedelta(days=1)
        assert api_fires(schedule, at) == cron_fires(expression, at), (expression, schedule, at)


def test_day_of_week_step_runs_through_sunday() -> None:
    # cron's day-of-week field ends at 7 (Sunday again): '1/1' is every day, '1/2' includes Sunday.
    # not ["*"]: the field does not start with '*', so it stays restricted for cron's union rule
    assert cron.cron_to_schedule("* * * * 1/1")["dayOfWeek"] == [0, 1, 2, 3, 4, 5, 6]
    assert cron.cron_to_schedule("* * * * 1/2")["dayOfWeek"] == [0, 1, 3, 5]
