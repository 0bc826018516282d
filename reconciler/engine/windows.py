"""Sync windows (Argo CD's): when writes may happen. Pure: the moment is always passed in, so a
test (or a saved plan applied later) decides at an exact time.

A window opens at each firing of its cron schedule (UTC) and stays open for its duration. At a
moment ``now``:

- a ``deny`` window that is open blocks writes;
- when any ``allow`` window is declared, writes happen only inside an open one;
- deny wins when both are open (as in Argo CD).

:func:`state` says whether writes are allowed now, why not, and when they next are (walking
window ends and openings, bounded); :func:`gate` is the one decision ``apply``, ``watch --apply``
and the operator take from it: go, go because ``--force`` overrides (and say so), or refuse.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from cronsim import CronSim, CronSimError

from reconciler.contract import cron
from reconciler.contract.firings import to_cron
from reconciler.errors import PlanError
from reconciler.specs.controls import SyncWindow

__all__ = ["WindowClosed", "WindowState", "gate", "state"]

_MINUTE: Final = timedelta(minutes=1)
_MAX_STEPS: Final = 512  # window ends and openings walked to find when writes are next allowed
_HORIZON: Final = timedelta(days=400)


class WindowClosed(PlanError):
    """Apply refused: a sync window blocks writes now. Exit 1; nothing was written."""


@dataclass(frozen=True, kw_only=True)
class WindowState:
    """Writes allowed (``open``) at ``now`` or not; ``reason`` says which windows decided, and
    ``until`` when writes are next allowed (None: open now, or not within 400 days)."""

    open: bool
    now: datetime
    reason: str
    until: datetime | None = None
    active: tuple[str, ...] = ()
    windows: tuple[SyncWindow, ...] = ()  # every window it was decided from

    def as_dict(self) -> dict[str, Any]:
        return {"open": self.open, "checked_at": _iso(self.now), "reason": self.reason,
                "until": _iso(self.until) if self.until else None, "active": list(self.active),
                "windows": [w.as_dict() for w in self.windows]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WindowState:
        until = data.get("until")
        return cls(open=bool(data["open"]), now=datetime.fromisoformat(data["checked_at"]), reason=data["reason"],
                   until=datetime.fromisoformat(until) if until else None, active=tuple(data.get("active") or ()),
                   windows=tuple(SyncWindow.from_dict(w) for w in data.get("windows") or ()))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def when(moment: datetime) -> str:
    """A moment for people: ``2026-12-04 22:00 UTC``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@functools.lru_cache(maxsize=256)
def _expression(schedule: str) -> str:
    """The window's cron as cronsim reads it (names, macros and steps made numbers)."""
    return to_cron(cron.cron_to_schedule(schedule))


def _last_opening(window: SyncWindow, now: datetime) -> datetime | None:
    """The window's latest opening at or before ``now`` (None: none within its duration)."""
    minute = now.astimezone(UTC).replace(second=0, microsecond=0, tzinfo=None)
    try:
        found: datetime = next(CronSim(_expression(window.schedule), minute + _MINUTE, reverse=True))
    except (CronSimError, StopIteration):
        return None
    return found.replace(tzinfo=UTC)


def _open_until(window: SyncWindow, now: datetime) -> datetime | None:
    """When the window closes, if it is open at ``now``."""
    opened = _last_opening(window, now)
    if opened is None:
        return None
    end = opened + window.duration
    # a long window may have opened before its latest firing: the latest firing decides the end,
    # and an earlier opening still open ends earlier, so the latest is the one that matters
    return end if now < end else None


def _next_opening(window: SyncWindow, now: datetime) -> datetime | None:
    minute = now.astimezone(UTC).replace(second=0, microsecond=0, tzinfo=None)
    try:
        found: datetime = next(CronSim(_expression(window.schedule), minute))
    except (CronSimError, StopIteration):
        return None
    return found.replace(tzinfo=UTC)


def _blocked(windows: Sequence[SyncWindow], now: datetime) -> tuple[list[tuple[SyncWindow, datetime]], bool]:
    """The deny windows open at ``now`` (with their ends), and whether an allow window is needed and
    none is open."""
    denies = [(w, end) for w in windows if w.kind == "deny" and (end := _open_until(w, now)) is not None]
    allows = [w for w in windows if w.kind == "allow"]
    outside = bool(allows) and not any(_open_until(w, now) is not None for w in allows)
    return denies, outside


def _walk(windows: Sequence[SyncWindow], now: datetime) -> tuple[datetime | None, bool]:
    """When writes are next allowed, and whether the walk gave up after :data:`_MAX_STEPS` window
    ends and openings (then None says nothing about the 400 days)."""
    moment = now
    for _ in range(_MAX_STEPS):
        if moment - now > _HORIZON:
            return None, False
        denies, outside = _blocked(windows, moment)
        if denies:
            if any(_never_closes(w) for w, _ in denies):
                return None, False  # reopens before it closes, for ever: no time at all, let alone 400 days
            moment = max(end for _, end in denies)
            continue
        if outside:
            openings = [o for w in windows if w.kind == "allow" and (o := _next_opening(w, moment)) is not None]
            if not openings:
                return None, False
            moment = min(openings)
            continue
        return moment, False
    return None, True


def _never_closes(window: SyncWindow) -> bool:
    gap = cron.longest_gap(cron.cron_to_schedule(window.schedule))
    return gap is not None and window.duration >= gap


def _next_allowed(windows: Sequence[SyncWindow], now: datetime) -> datetime | None:
    return _walk(windows, now)[0]


def _not_found(gave_up: bool) -> str:
    return (f"within the next {_MAX_STEPS} window openings and closings" if gave_up
            else f"within {_HORIZON.days} days")


def state(windows: Sequence[SyncWindow], now: datetime) -> WindowState | None:
    """Whether writes are allowed at ``now`` (timezone-aware); None when no window is declared."""
    if not windows:
        return None
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware; pass a UTC datetime")
    denies, outside = _blocked(windows, now)
    allows_open = tuple(w.label for w in windows if w.kind == "allow" and _open_until(w, now) is not None)
    if not denies and not outside:
        reason = (f"inside allow window {', '.join(allows_open)}" if allows_open
                  else "no deny window is open")
        return WindowState(open=True, now=now, reason=reason, active=allows_open, windows=tuple(windows))
    until, gave_up = _walk(windows, now)
    later = (f"writes are allowed from {when(until)}" if until
             else f"no time {_not_found(gave_up)} was found when writes are allowed")
    if denies:
        names = ", ".join(w.label for w, _ in denies)
        # the deny windows' own end: they may reopen at once (or overlap), so walk them alone
        end, gave_up = _walk([w for w in windows if w.kind == "deny"], now)
        if end is None:
            reason = f"deny window {names} is open and does not close {_not_found(gave_up)}"
        else:
            reason = f"deny window {names} is open until {when(end)}" + ("" if until == end else f"; {later}")
        active = tuple(w.label for w, _ in denies)
    else:
        reason = f"outside every allow window; {later}"
        active = ()
    return WindowState(open=False, now=now, reason=reason, until=until, active=active, windows=tuple(windows))


def gate(current: WindowState | None, *, writes: int, force: bool) -> str | None:
    """Apply's decision: None to go on quietly; a note to print when ``--force`` overrides a closed
    window; :class:`WindowClosed` when it is closed and there is something to write."""
    if current is None or current.open or not writes:
        return None
    if force:
        return f"sync window overridden by --force: {current.reason}"
    raise WindowClosed(f"apply refused: {current.reason}. Nothing was written; {writes} change(s) wait for the "
                       "window (pass --force to write now anyway)")
