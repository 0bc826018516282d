"""Schedules at a glance: a week of firings as a heatmap, the busiest minutes, each definition's
next firings, and a suggested spread that keeps every minute under a cap. Pure: no clock (the
caller passes ``now`` and the first day), no I/O; views return rich renderables or plain data.

Why a spread: DataRobot runs a bounded number of batch jobs at once, so definitions that all fire
at 02:00 queue behind each other. :func:`spread` moves definitions by a few minutes within their
hour (the job still runs at about the time it was meant to) until no minute has more than
``limit`` of them, and names the ones it could not place. The firing computation itself is the
contract's (:mod:`reconciler.contract.firings`), shared with the local service's dashboard.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from reconciler.contract import cron, firings
from reconciler.contract.firings import Busy, Schedule, Week
from reconciler.display import printable

__all__ = ["FORMAT_VERSION", "Move", "Report", "Spread", "build_report", "default_limit", "heatmap", "render",
           "spread", "to_json"]

FORMAT_VERSION: Final = 1
NAMES_SHOWN: Final = 3  # names listed per busy minute in text; JSON lists them all
NAMES_PER_MOVE: Final = 12  # names listed per group of equal moves in text
GROUPS_SHOWN: Final = 30  # groups of equal moves listed in text
_WEEK_MINUTES: Final = 7 * 24 * 60 + 60  # a week, plus the hour a clock repeats when daylight saving ends
_PAD: Final = 60  # a shift moves a firing by at most 59 minutes either way
# heat levels of a cell, as a share of the busiest hour: none, low, ..., the busiest
LEVEL_STYLES: Final = ("grey42", "black on #cfe8f3", "black on #8ac4e0", "black on #f2b05e", "bold white on #c0392b")


@dataclass(frozen=True, slots=True)
class Move:
    """Shift ``name``'s minutes by ``shift`` (within the hour): ``before`` -> ``after`` (cron text)."""

    name: str
    shift: int
    before: str
    after: str
    schedule: dict[str, list[int | str]]


@dataclass(frozen=True, slots=True)
class Spread:
    """Moves that keep every minute at ``limit`` definitions or fewer; ``crowded`` are the minutes
    still above it afterwards (definitions that fire every minute, or no room left in the hour)."""

    limit: int
    moves: tuple[Move, ...]
    crowded: tuple[Busy, ...]


@dataclass(frozen=True, slots=True)
class Report:
    """Everything ``reconciler schedule`` shows, computed once for the text and JSON views."""

    week: Week
    busiest: tuple[Busy, ...]
    spread: Spread
    upcoming: Mapping[str, tuple[datetime, ...]]
    definitions: int


def default_limit(week: Week) -> int:
    """The lowest cap the busiest hour can meet by moving definitions within it (its firings
    spread evenly over its 60 minutes): the cap :func:`spread` aims at unless told otherwise."""
    return max(1, math.ceil(week.peak_hour / 60))


def _minutes(schedule: Schedule) -> list[int] | None:
    values = cron.normalize_field("minute", list(schedule["minute"]))
    return None if values == ["*"] else [int(v) for v in values]


def _shifts(minutes: Sequence[int]) -> tuple[int, ...]:
    """Shifts that keep every minute inside 0-59 (a pure move in time), nearest first, later first."""
    return _shifts_between(-min(minutes), 59 - max(minutes))


@functools.cache
def _shifts_between(low: int, high: int) -> tuple[int, ...]:
    return tuple(sorted((d for d in range(low, high + 1) if d), key=lambda d: (abs(d), -d)))


def spread(schedules: Mapping[str, Schedule], week: Week, *, limit: int) -> Spread:
    """Greedy: the most crowded minute first; of the definitions firing then, the one that fires
    least often moves first, to the nearest shift within its hour at which none of its firings in
    the week lands on a minute already at ``limit``. Each definition is tried once and moves at
    most once.

    Minutes are counted as integers (minutes since the week's start, in a list): the search tries
    up to 118 shifts of every firing of a candidate, and integer indexing is what keeps 10,000
    definitions within a second or two (bench/bench_schedule.py)."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    by_cron: dict[str, tuple[int, ...]] = {}
    fired: dict[str, tuple[int, ...]] = {}
    # one slot per minute of the week, padded by an hour on both sides for shifted firings
    load = [0] * (_WEEK_MINUTES + 2 * _PAD)
    at: dict[int, set[str]] = defaultdict(set)
    for name, schedule in schedules.items():
        expression = firings.to_cron(schedule)
        if expression not in by_cron:
            by_cron[expression] = tuple(_PAD + int((moment - week.start).total_seconds()) // 60
                                        for moment in firings.firings(schedule, start=week.start, end=week.end))
        fired[name] = by_cron[expression]
        for slot in fired[name]:
            load[slot] += 1
            at[slot].add(name)
    moved: dict[str, Move] = {}
    tried: set[str] = set()
    minutes = {name: _minutes(schedule) for name, schedule in schedules.items()}
    # One pass, most crowded first: a move only lands where the load stays within the limit, so
    # it never makes a new crowded minute, and a minute checked once needs no second look. Each
    # definition is tried once: the nearest free shift it finds is where it goes, or it stays.
    for _, slot in sorted((-count, slot) for slot, count in enumerate(load) if count > limit):
        candidates = sorted((name for name in at[slot] if name not in tried and minutes[name]),
                            key=lambda name: (len(fired[name]), name))
        for name in candidates:
            if load[slot] <= limit:
                break
            tried.add(name)
            move = _place(name, schedules[name], fired[name], load, limit)
            if move is None:
                continue
            for old in fired[name]:
                load[old] -= 1
                at[old].discard(name)
            for old in fired[name]:
                load[old + move.shift] += 1
                at[old + move.shift].add(name)
            moved[name] = move
    zone = firings.time_zone(week.tz)
    crowded = tuple(Busy((week.start + timedelta(minutes=slot - _PAD)).astimezone(zone), tuple(sorted(at[slot])))
                    for slot, count in enumerate(load) if count > limit)
    return Spread(limit=limit, moves=tuple(sorted(moved.values(), key=lambda m: m.name)), crowded=crowded)


def _place(name: str, schedule: Schedule, fired: Sequence[int], load: Sequence[int], limit: int) -> Move | None:
    minutes = _minutes(schedule)
    if not minutes:
        return None
    own = set(fired)
    bad = fired[0] if fired else 0  # the firing that blocked the last shift tried: checked first
    for shift in _shifts(minutes):
        # its own firings leave their minutes as it moves: do not count them where it lands
        if load[bad + shift] - (bad + shift in own) >= limit:
            continue
        for slot in fired:
            if load[slot + shift] - (slot + shift in own) >= limit:
                bad = slot
                break
        else:
            lists = {key: list(schedule[key]) for key in cron.FIELDS}
            lists["minute"] = [m + shift for m in minutes]
            return Move(name=name, shift=shift, before=firings.to_cron(schedule), after=firings.to_cron(lists),
                        schedule=lists)
    return None


def build_report(schedules: Mapping[str, Schedule], *, first_day: date, tz: str = "UTC", now: datetime,
                 next_count: int = 3, busiest_count: int = 5, limit: int | None = None) -> Report:
    """The week from local midnight of ``first_day`` in ``tz``, and each definition's next
    ``next_count`` firings after ``now``. ``limit`` defaults to :func:`default_limit`."""
    week = firings.week(schedules, first_day=first_day, tz=tz)
    upcoming = {name: tuple(firings.next_firings(schedule, after=now, count=next_count))
                for name, schedule in sorted(schedules.items())}
    chosen = default_limit(week) if limit is None else limit
    return Report(week=week, busiest=tuple(week.busiest(busiest_count)),
                  spread=spread(schedules, week, limit=chosen), upcoming=upcoming, definitions=len(schedules))


# -- views ----------------------------------------------------------------------------------


def _cell(count: int) -> str:
    if count == 0:
        return "·"
    return str(count) if count < 1000 else f"{count // 1000}k"


def heatmap(week: Week) -> Table:
    """Seven rows (days) by 24 columns (local hours); a cell is the firings in that hour."""
    table = Table(box=None, padding=(0, 0), pad_edge=False, show_edge=False, collapse_padding=True)
    table.add_column(f"{week.tz}", justify="left", no_wrap=True, min_width=11)
    for hour in range(24):
        table.add_column(f"{hour:02d}", justify="right", width=4, no_wrap=True)
    peak = week.peak_hour
    for day, row in zip(week.days, week.hours, strict=True):
        cells = [Text(f"{_cell(count):>3} ", style=LEVEL_STYLES[firings.level(count, peak)]) for count in row]
        table.add_row(day.strftime("%a %d %b"), *cells)
    return table


def _when(moment: datetime) -> str:
    return moment.strftime("%H:%M on %a %d %b")


def _names(names: Sequence[str], *, shown: int = NAMES_SHOWN) -> str:
    listed = ", ".join(printable(n) for n in names[:shown])
    more = len(names) - shown
    return listed + (f" and {more} more" if more > 0 else "")


def render(report: Report) -> list[RenderableType]:
    """The text view: heading, heatmap, legend, busiest minutes, spread, next firings."""
    week = report.week
    last = week.days[-1]
    out: list[RenderableType] = [Text.assemble(
        ("Firings per hour", "bold"),
        f", {week.days[0]:%a %d %b} to {last:%a %d %b %Y} ({week.tz}): {week.total:,} firing(s) of "
        f"{report.definitions} scheduled definition(s)")]
    out.append(heatmap(week))
    legend = Text("legend: ")
    legend.append(" none ", style=LEVEL_STYLES[0])
    for index in range(1, len(LEVEL_STYLES)):
        low, high = firings.level_range(index, week.peak_hour)
        if low <= high:
            legend.append(" ")
            legend.append(f" {low}-{high} " if low < high else f" {low} ", style=LEVEL_STYLES[index])
    legend.append("  firings per hour", style="dim")
    out.append(legend)
    out.append(Text("Busiest minutes", style="bold"))
    if not report.busiest:
        out.append(Text("  nothing fires this week"))
    for busy in report.busiest:
        out.append(Text(f"  {busy.count} definition(s) fire at {_when(busy.at)}: {_names(busy.names)}"))
    out.append(_spread_view(report.spread, week.tz))
    if report.upcoming:
        zone = firings.time_zone(week.tz)
        table = Table(box=None, padding=(0, 2, 0, 0), title=None, show_header=True, header_style="bold")
        table.add_column("definition", no_wrap=True)
        table.add_column(f"next firings ({week.tz})")
        for name, moments in report.upcoming.items():
            shown = ", ".join(m.astimezone(zone).strftime("%a %d %b %H:%M") for m in moments) or "never"
            table.add_row(printable(name), shown)
        out.append(table)
    return out


def _spread_view(result: Spread, tz: str) -> RenderableType:
    """Moves grouped by (from, to): "move 5 definitions 1 min later: cron "0 2 * * 1" -> ..."."""
    lines: list[RenderableType] = [Text(f"Spread (at most {result.limit} per minute)", style="bold")]
    if not result.moves and not result.crowded:
        lines.append(Text(f"  no minute has more than {result.limit} definition(s): nothing to move"))
    groups: dict[tuple[int, str, str], list[str]] = defaultdict(list)
    for move in result.moves:
        groups[(move.shift, move.before, move.after)].append(move.name)
    ordered = sorted(groups.items(), key=lambda item: (item[0][1], abs(item[0][0]), -item[0][0]))
    for (shift, before, after), names in ordered[:GROUPS_SHOWN]:
        direction = "later" if shift > 0 else "earlier"
        lines.append(Text(f"  move {_names(names, shown=NAMES_PER_MOVE)} {abs(shift)} min {direction}: "
                          f"cron \"{before}\" -> \"{after}\" (UTC)"))
    if len(ordered) > GROUPS_SHOWN:
        lines.append(Text(f"  ... and {len(ordered) - GROUPS_SHOWN} more move(s); -o json lists them all"))
    for busy in result.crowded[:NAMES_SHOWN]:
        lines.append(Text(f"  still {busy.count} at {_when(busy.at)} ({tz}): {_names(busy.names)}; no quiet "
                          "minute left in that hour (or they fire every minute): move some by hand", style="yellow"))
    if len(result.crowded) > NAMES_SHOWN:
        lines.append(Text(f"  ... and {len(result.crowded) - NAMES_SHOWN} more crowded minute(s)", style="yellow"))
    return Group(*lines)


def to_json(report: Report) -> dict[str, Any]:
    """The JSON view (``-o json``): stable keys, times as ISO 8601 with their offset."""
    week = report.week
    return {
        "format_version": FORMAT_VERSION,
        "tz": week.tz,
        "days": [day.isoformat() for day in week.days],
        "hours": [list(row) for row in week.hours],
        "total_firings": week.total,
        "definitions": report.definitions,
        "busiest": [{"at": busy.at.isoformat(), "count": busy.count, "names": list(busy.names)}
                    for busy in report.busiest],
        "spread": {
            "limit": report.spread.limit,
            "moves": [{"name": m.name, "shift_minutes": m.shift, "from": m.before, "to": m.after,
                       "schedule": m.schedule} for m in report.spread.moves],
            "crowded": [{"at": busy.at.isoformat(), "count": busy.count, "names": list(busy.names)}
                        for busy in report.spread.crowded],
        },
        "next": {name: [m.isoformat() for m in moments] for name, moments in report.upcoming.items()},
    }
