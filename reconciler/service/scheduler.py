"""Runs enabled, scheduled job definitions at their scheduled minutes (UTC).

Each pass (``tick``) looks at every enabled definition with a schedule and asks one question: what
is the latest minute at or before *now* on which it should have fired? If that firing is newer
than the last one claimed (``last_scheduled_run_time``) and not older than the definition's last
change, the pass claims it and queues a job in one transaction
(:meth:`Store.start_scheduled_job`). The claim is a conditional UPDATE only one process can win,
so any number of service processes on one database start exactly one job per firing.

Only the LATEST due firing is considered, so a service that was down for an hour runs an
every-minute definition once on start, not sixty times. ``updated`` bounds the look-back: only
firings strictly after the definition's last change count, so a definition enabled at 10:37:20
first runs at the time ``nextScheduledRunTime`` showed then (10:38 for every minute), and one
enabled at 10:37 does not fire for 02:00 of the same day. (A PATCH in the few seconds between a
firing and the next pass therefore skips that one firing.)

The clock is a parameter, so tests drive time without sleeping; ``start`` runs passes on a
daemon thread every ``interval`` seconds until ``stop``.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from cronsim import CronSim, CronSimError

from reconciler.service import ids, schedule
from reconciler.service.errors import HTTPNotFound
from reconciler.service.records import DefinitionRecord, JobRecord
from reconciler.service.runner.adapters.base import initial_status
from reconciler.service.store import Store

__all__ = ["Scheduler", "latest_firing"]

log = logging.getLogger("reconciler.service.scheduler")
Clock = Callable[[], datetime]


def latest_firing(spec: schedule.Schedule, *, at: datetime) -> datetime | None:
    """The last whole minute at or before ``at`` (UTC) on which the schedule fires, or None."""
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware; pass a UTC datetime")
    # cronsim in reverse yields matches strictly before its start; start one minute later so
    # that ``at``'s own minute counts.
    start = at.astimezone(UTC).replace(second=0, microsecond=0, tzinfo=None) + timedelta(minutes=1)
    return _latest_from_cron(schedule.to_cron(spec), start)


@functools.lru_cache(maxsize=8192)
def _latest_from_cron(expression: str, start: datetime) -> datetime | None:
    """Cached by (cron text, minute): a pass asks this for every enabled definition every few
    seconds, and thousands of definitions share a few hundred schedules (a pass over 10,000
    definitions went from 0.35 s of CPU to a fraction of that)."""
    try:
        found: datetime = next(CronSim(expression, start, reverse=True))
    except (CronSimError, StopIteration):
        return None
    return found.replace(tzinfo=UTC)


def _may_be_due(schedule_text: str, updated: str, last: str | None, now: datetime) -> bool:
    """What :meth:`Scheduler.due` says, from the stored text (never more often False than it)."""
    firing = _firing_of_text(schedule_text, now.astimezone(UTC).replace(second=0, microsecond=0))
    if firing is None or firing <= ids.parse_iso(updated):
        return False
    return last is None or firing > ids.parse_iso(last)


@functools.lru_cache(maxsize=8192)
def _firing_of_text(schedule_text: str, minute: datetime) -> datetime | None:
    """:func:`latest_firing` of a schedule as stored (JSON text) in ``minute``: definitions share
    schedules, and decoding one is most of the cost."""
    try:
        spec = orjson.loads(schedule_text)
    except orjson.JSONDecodeError:
        return datetime.max.replace(tzinfo=UTC)  # unreadable here: let the whole record decide
    return latest_firing(spec, at=minute)


class Scheduler:
    """One per service process; safe to run several against one database."""

    def __init__(self, store: Store, *, interval: float = 5.0, clock: Clock = ids.utcnow) -> None:
        self.store = store
        self.interval = interval
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def due(self, definition: DefinitionRecord, now: datetime) -> datetime | None:
        """The firing to run now for ``definition``, or None (pure: no database)."""
        if not definition.enabled or definition.schedule is None:
            return None
        firing = latest_firing(definition.schedule, at=now)
        if firing is None or firing <= ids.parse_iso(definition.updated):
            return None  # only firings after the last change: what nextScheduledRunTime promised
        last = definition.last_scheduled_run_time
        if last is not None and firing <= ids.parse_iso(last):
            return None
        return firing

    def tick(self) -> list[JobRecord]:
        """One pass: queue a job for every definition with an unclaimed due firing. The pass reads
        only the timing columns; a definition that looks due is read whole and decided again."""
        now = self.clock()
        started: list[JobRecord] = []
        for definition_id, schedule_text, updated, last in self.store.scheduled_timings():
            if not _may_be_due(schedule_text, updated, last, now):
                continue
            try:
                definition = self.store.get_definition(definition_id)
            except HTTPNotFound:  # deleted since the pass read it: nothing to run
                continue
            firing = self.due(definition, now)
            if firing is None:
                continue
            due = ids.iso(firing)
            unusable = self._unusable_login(definition.job)

            def make(current: DefinitionRecord, due: str = due, unusable: str | None = unusable) -> JobRecord:
                created = ids.iso(self.clock())
                status, details = initial_status(
                    current.job, f"Job submitted at {created} by the schedule (run time {due})")
                if unusable is not None and status != "FAILED":  # no client to refuse: the job fails at once
                    status, details = "FAILED", unusable
                return JobRecord(id=ids.new_id(), status=status, status_details=details, job=dict(current.job),
                                 created=created, updated=created, created_by=current.updated_by, definition_id=current.id,
                                 definition_name=current.name, source="scheduled")

            try:
                job = self.store.start_scheduled_job(definition.id, due=due, make=make)
            except Exception:  # one broken definition must not stop the others' schedules
                log.exception("could not start the scheduled job of definition %s", definition.id)
                continue
            if job is not None:
                log.info("started job %s for definition %s (scheduled run %s)", job.id, definition.id, due)
                started.append(job)
        return started

    def _unusable_login(self, job: dict[str, Any]) -> str | None:
        """Why the job's jdbc login cannot reach its data store (see ``jdbc.login_problems``), or None."""
        from reconciler.service.runner.adapters.jdbc import login_problems  # the runner's stack, on demand

        found = login_problems(job, self.store)
        return next(iter(found.values())) if found else None

    def start(self) -> None:
        """Run ``tick`` every ``interval`` seconds on a daemon thread (first pass at once)."""
        if self._thread is not None or self.interval <= 0:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="reconciler-scheduler", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # e.g. the database is briefly unreachable: try again next tick
                log.exception("scheduler pass failed; retrying in %.1fs", self.interval)
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
