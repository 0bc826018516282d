"""``reconciler schedule``'s pure core: the suggested spread keeps its promise (checked by counting
the week again with the moved schedules), and the text and JSON views say what the week holds."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from reconciler.contract import cron, firings
from reconciler.engine import schedule as view

MONDAY = date(2026, 1, 5)
NOW = datetime(2026, 1, 5, tzinfo=UTC)


def crowd(count: int, expression: str, prefix: str) -> dict[str, Any]:
    return {f"{prefix}-{i:02d}": cron.cron_to_schedule(expression) for i in range(count)}


def moved(schedules: dict[str, Any], spread: view.Spread) -> dict[str, Any]:
    out = dict(schedules)
    for move in spread.moves:
        out[move.name] = move.schedule
    return out


def over(week: firings.Week, limit: int) -> list[datetime]:
    return sorted(at for at in week.per_minute if week.count_at(at) > limit)


def check_spread(schedules: dict[str, Any], limit: int) -> view.Spread:
    week = firings.week(schedules, first_day=MONDAY)
    result = view.spread(schedules, week, limit=limit)
    assert len({m.name for m in result.moves}) == len(result.moves)  # each moves at most once
    for move in result.moves:
        before = cron.normalize_schedule(dict(schedules[move.name]))
        after = cron.normalize_schedule(move.schedule)
        assert {k: v for k, v in before.items() if k != "minute"} == {k: v for k, v in after.items() if k != "minute"}
        assert after["minute"] == [int(m) + move.shift for m in before["minute"]]  # a pure shift within the hour
        assert all(0 <= int(m) <= 59 for m in after["minute"])
        assert move.after == firings.to_cron(move.schedule) and move.before == firings.to_cron(schedules[move.name])
    again = firings.week(moved(schedules, result), first_day=MONDAY)
    assert again.total == week.total  # nothing lost, nothing added
    assert [b.at for b in result.crowded] == over(again, limit)  # what is still crowded is said, exactly
    return result


def test_forty_one_at_two_are_spread_within_the_hour() -> None:
    schedules = crowd(41, "0 2 * * 1", "nightly")
    result = check_spread(schedules, limit=5)
    assert result.crowded == ()
    assert len(result.moves) == 36  # five stay at 02:00
    assert Counter(m.shift for m in result.moves) == Counter({1: 5, 2: 5, 3: 5, 4: 5, 5: 5, 6: 5, 7: 5, 8: 1})


def test_every_minute_definitions_are_never_moved_and_are_reported() -> None:
    schedules = {**crowd(3, "* * * * *", "always"), **crowd(4, "0 2 * * *", "daily")}
    result = check_spread(schedules, limit=4)  # room for one more in every minute
    assert sorted(m.name for m in result.moves) == ["daily-00", "daily-01", "daily-02"] and result.crowded == ()
    result = check_spread(schedules, limit=2)  # none: the every-minute ones alone crowd every minute
    assert result.moves == () and len(result.crowded) == 7 * 24 * 60
    assert {b.count for b in result.crowded} == {3, 7}


def test_no_room_in_the_hour_is_reported_not_hidden() -> None:
    schedules = crowd(5, "0-59 3 * * *", "busy")  # every minute of 03:xx, as a list: movable but no room
    result = check_spread(schedules, limit=2)
    assert result.moves == () and len(result.crowded) == 7 * 60


def test_nothing_to_move_under_the_limit() -> None:
    result = check_spread(crowd(3, "0 2 * * *", "d"), limit=3)
    assert result.moves == () and result.crowded == ()
    with pytest.raises(ValueError):
        view.spread({}, firings.week({}, first_day=MONDAY), limit=0)


minute_lists = st.one_of(st.just(["*"]), st.lists(st.integers(0, 59), min_size=1, max_size=3, unique=True))
some_schedules = st.dictionaries(
    st.text(alphabet="abcdefgh", min_size=1, max_size=6),
    st.fixed_dictionaries({"minute": minute_lists,
                           "hour": st.one_of(st.just(["*"]), st.lists(st.integers(0, 23), min_size=1, max_size=2, unique=True)),
                           "dayOfMonth": st.just(["*"]), "month": st.just(["*"]),
                           "dayOfWeek": st.one_of(st.just(["*"]), st.lists(st.integers(0, 6), min_size=1, max_size=2,
                                                                           unique=True))}),
    max_size=8)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedules=some_schedules, limit=st.integers(1, 3))
def test_spread_keeps_its_promise_on_any_set(schedules: dict[str, Any], limit: int) -> None:
    check_spread(schedules, limit)


def test_default_limit_is_the_busiest_hour_spread_evenly() -> None:
    week = firings.week(crowd(130, "0 2 * * 1", "n"), first_day=MONDAY)
    assert view.default_limit(week) == 3  # 130 firings over 60 minutes
    assert view.default_limit(firings.week({}, first_day=MONDAY)) == 1


def test_levels_partition_the_counts() -> None:
    for peak in (1, 2, 3, 7, 42, 1000):
        for count in range(1, peak + 1):
            low, high = firings.level_range(firings.level(count, peak), peak)
            assert low <= count <= high
    assert firings.level(0, 10) == 0 and firings.level(10, 10) == 4


def report() -> view.Report:
    schedules = {**crowd(41, "0 2 * * 1", "nightly"), "hourly": cron.cron_to_schedule("15 * * * *")}
    return view.build_report(schedules, first_day=MONDAY, tz="UTC", now=NOW, next_count=2, limit=5)


def test_text_view_names_the_hotspot_and_the_moves() -> None:
    console = Console(width=140, record=True, color_system=None)
    for part in view.render(report()):
        console.print(part)
    text = console.export_text()
    assert "41 definition(s) fire at 02:00 on Mon 05 Jan: nightly-00, nightly-01, nightly-02 and 38 more" in text
    assert 'cron "0 2 * * 1" -> "1 2 * * 1" (UTC)' in text
    assert "Mon 05 Jan" in text and " 42 " in text  # the 02:00 cell: 41 nightly + hourly
    assert "hourly      Mon 05 Jan 00:15, Mon 05 Jan 01:15" in text


def test_text_view_escapes_names_that_could_fake_a_line() -> None:
    schedules = {"evil\nSpread (at most 99 per minute)": cron.cron_to_schedule("0 2 * * *"),
                 **crowd(3, "0 2 * * *", "d")}
    console = Console(width=200, record=True, color_system=None)
    for part in view.render(view.build_report(schedules, first_day=MONDAY, now=NOW, limit=1)):
        console.print(part)
    assert "evil\\nSpread" in console.export_text()


def test_json_view_is_versioned_and_complete() -> None:
    data = json.loads(json.dumps(view.to_json(report())))
    assert data["format_version"] == 1 and data["tz"] == "UTC"
    assert data["days"][0] == "2026-01-05" and len(data["hours"]) == 7 and len(data["hours"][0]) == 24
    assert data["hours"][0][2] == 42 and data["total_firings"] == 41 + 7 * 24
    assert data["busiest"][0] == {"at": "2026-01-05T02:00:00+00:00", "count": 41,
                                  "names": [f"nightly-{i:02d}" for i in range(41)]}
    assert len(data["spread"]["moves"]) == 36 and data["spread"]["limit"] == 5
    assert data["spread"]["moves"][0]["schedule"]["minute"] in ([1], [2], [3], [4], [5], [6], [7], [8])
    assert data["next"]["hourly"] == ["2026-01-05T00:15:00+00:00", "2026-01-05T01:15:00+00:00"]
