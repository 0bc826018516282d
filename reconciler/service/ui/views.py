"""The dashboard's pages: definitions, a definition, jobs, a job, the week's schedule.

Server-rendered (Jinja2, autoescaped); one small script (``static/ui.js``) updates running jobs'
progress and is not needed: without JavaScript, a page that shows a running job refreshes itself
(``<noscript>`` meta refresh). "Run now" and "Abort" go through the same functions as the API's
``POST batchPredictions/fromJobDefinition/`` and ``DELETE batchPredictions/{id}/``. The session
gate and the security headers are :mod:`~reconciler.service.ui.common`'s.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import urlencode

import yaml
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from reconciler.contract import export, firings
from reconciler.service import errors, ids, render
from reconciler.service.deps import current_user
from reconciler.service.records import JOB_STATUSES, DefinitionRecord, JobRecord
from reconciler.service.routes import jobs as job_routes
from reconciler.service.settings import ServiceSettings
from reconciler.service.store import Store
from reconciler.service.ui.common import (
    PREFIX,
    duration,
    error,
    keys_of,
    page,
    poster,
    redirect,
    secure,
    store_of,
    viewer,
    when,
)
from reconciler.service.ui.login import login, login_page, logout
from reconciler.service.ui.session import COOKIE

__all__ = ["router"]

PAGE_SIZE: Final = 50
HISTORY: Final = 20  # jobs on a definition's page
NEXT_FIRINGS: Final = 10
REFRESH_SECONDS: Final = 3  # the no-script refresh of a page that shows a running job
ACTIVE: Final = ("INITIALIZING", "RUNNING")

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def newest_jobs(store: Store, *, limit: int, offset: int = 0, statuses: Sequence[str] = (),
                definition_id: str | None = None) -> tuple[list[JobRecord], int]:
    """A page of jobs, newest first (the store lists oldest first: the page is read from the end)."""
    total = store.list_jobs(offset=0, limit=1, statuses=statuses, definition_id=definition_id).total
    count = min(limit, total - offset)
    if count <= 0:
        return [], total
    found = store.list_jobs(offset=max(0, total - offset - count), limit=count, statuses=statuses,
                            definition_id=definition_id)
    return list(reversed(found.items)), total


def job_view(job: JobRecord, *, now: datetime) -> dict[str, Any]:
    """What a page and the progress poll show of a job (the API's own figures: ``render.job``)."""
    body = render.job(job, base_url="", now=now)
    return {"id": job.id, "status": job.status, "active": job.status in ACTIVE, "details": job.status_details,
            "percentage": round(float(body["percentageCompleted"]), 1),
            "percentageText": f"{float(body['percentageCompleted']):.0f}%",
            "scoredRows": f"{job.scored_rows:,}", "failedRows": f"{job.failed_rows:,}",
            "elapsed": duration(body["elapsedTimeSec"]), "created": when(job.created),
            "definitionId": job.definition_id, "definitionName": job.definition_name, "source": job.source}


def definition_view(record: DefinitionRecord, *, now: datetime) -> dict[str, Any]:
    upcoming = (firings.next_firing(record.schedule, after=now)
                if record.enabled and record.schedule is not None else None)
    return {"id": record.id, "name": record.name, "enabled": record.enabled,
            "cron": firings.to_cron(record.schedule) if record.schedule is not None else None,
            "next": when(upcoming) if upcoming else "-", "lastStatus": record.last_started_job_status,
            "lastTime": when(record.last_started_job_time)}


# -- pages ------------------------------------------------------------------------------------


async def root() -> Response:
    return redirect(PREFIX + "/")


async def definitions_page(request: Request, q: str = Query("", max_length=100),
                           offset: int = Query(0, ge=0, le=2**31 - 1)) -> Response:
    seen = viewer(request)
    if isinstance(seen, Response):
        return seen
    session, cookie = seen
    found = store_of(request).list_definitions(offset=offset, limit=PAGE_SIZE, search_name=q or None)
    now = ids.utcnow()

    def link(to: int) -> str:
        return f"{PREFIX}/?{urlencode({'q': q, 'offset': to} if q else {'offset': to})}"

    return page(request, "definitions.html", session=session, cookie=cookie, title="Job definitions",
                nav="definitions", q=q, items=[definition_view(r, now=now) for r in found.items],
                total=found.total, offset=offset,
                previous=link(max(0, offset - PAGE_SIZE)) if offset > 0 else None,
                next=link(offset + PAGE_SIZE) if offset + PAGE_SIZE < found.total else None)


async def definition_page(request: Request, definition_id: str) -> Response:
    seen = viewer(request)
    if isinstance(seen, Response):
        return seen
    session, cookie = seen
    store = store_of(request)
    try:
        record = store.get_definition(definition_id)
    except errors.HTTPNotFound:
        return error(request, session, 404, f"There is no job definition {definition_id}.", back=f"{PREFIX}/")
    now = ids.utcnow()
    manifest = yaml.safe_dump(export.manifest_from_live(render.definition(record, now=now)), sort_keys=False)
    history, total = newest_jobs(store, limit=HISTORY, definition_id=definition_id)
    upcoming = (firings.next_firings(record.schedule, after=now, count=NEXT_FIRINGS)
                if record.enabled and record.schedule is not None else [])
    jobs = [job_view(job, now=now) for job in history]
    return page(request, "definition.html", session=session, cookie=cookie, title=record.name, nav="definitions",
                definition=definition_view(record, now=now), manifest=manifest, jobs=jobs, total_jobs=total,
                upcoming=[when(m) for m in upcoming],
                refresh=REFRESH_SECONDS if any(j["active"] for j in jobs) else None)


async def run_now(request: Request, definition_id: str) -> Response:
    posted = await poster(request)
    if isinstance(posted, Response):
        return posted
    session, _ = posted
    settings: ServiceSettings = request.app.state.settings
    try:
        job = job_routes.queue_from_definition(request, store_of(request), definition_id, await current_user(settings))
    except errors.HTTPProblem as exc:
        return error(request, session, exc.status_code, f"The job was not started: {exc.message}",
                      back=f"{PREFIX}/definitions/{definition_id}")
    return redirect(f"{PREFIX}/jobs/{job.id}")


async def jobs_page(request: Request, status: str = Query("", max_length=16),
                    offset: int = Query(0, ge=0, le=2**31 - 1)) -> Response:
    seen = viewer(request)
    if isinstance(seen, Response):
        return seen
    session, cookie = seen
    statuses = [status] if status in JOB_STATUSES else []
    found, total = newest_jobs(store_of(request), limit=PAGE_SIZE, offset=offset, statuses=statuses)
    now = ids.utcnow()
    jobs = [job_view(job, now=now) for job in found]

    def link(to: int) -> str:
        return f"{PREFIX}/jobs/?{urlencode({'status': status, 'offset': to} if statuses else {'offset': to})}"

    return page(request, "jobs.html", session=session, cookie=cookie, title="Jobs", nav="jobs", jobs=jobs,
                total=total, status_filter=status if statuses else "", statuses=JOB_STATUSES, offset=offset,
                previous=link(max(0, offset - PAGE_SIZE)) if offset > 0 else None,
                next=link(offset + PAGE_SIZE) if offset + PAGE_SIZE < total else None,
                refresh=REFRESH_SECONDS if any(j["active"] for j in jobs) else None)


async def job_page(request: Request, job_id: str) -> Response:
    seen = viewer(request)
    if isinstance(seen, Response):
        return seen
    session, cookie = seen
    try:
        job = store_of(request).get_job(job_id)
    except errors.HTTPNotFound:
        return error(request, session, 404, f"There is no job {job_id}.", back=f"{PREFIX}/jobs/")
    view = job_view(job, now=ids.utcnow())
    return page(request, "job.html", session=session, cookie=cookie, title=f"Job {job.id}", nav="jobs", job=view,
                refresh=REFRESH_SECONDS if view["active"] else None)


async def abort_job(request: Request, job_id: str) -> Response:
    posted = await poster(request)
    if isinstance(posted, Response):
        return posted
    session, _ = posted
    try:
        job_routes.abort(request, store_of(request), request.app.state.settings, job_id)
    except errors.HTTPProblem as exc:
        return error(request, session, exc.status_code, f"The job was not aborted: {exc.message}",
                      back=f"{PREFIX}/jobs/{job_id}")
    return redirect(f"{PREFIX}/jobs/{job_id}")


async def progress(request: Request, job_ids: list[str] = Query([], alias="id")) -> Response:
    """The polled figures of up to a page of jobs (the script on the jobs pages)."""
    keys = keys_of(request)
    session = keys.read(request.cookies.get(COOKIE))
    if session is None or not session.logged_in:
        return secure(JSONResponse({"message": "log in to the dashboard first"}, status_code=401))
    store, now, found = store_of(request), ids.utcnow(), {}
    for job_id in job_ids[:PAGE_SIZE]:
        try:
            found[job_id] = job_view(store.get_job(job_id), now=now)
        except errors.HTTPNotFound:
            continue
    return secure(JSONResponse(found))


async def schedule_page(request: Request, tz: str = Query("UTC", max_length=64)) -> Response:
    seen = viewer(request)
    if isinstance(seen, Response):
        return seen
    session, cookie = seen
    try:
        zone = firings.time_zone(tz)
    except ValueError as exc:
        return error(request, session, 400, str(exc), back=f"{PREFIX}/schedule")
    store = store_of(request)
    now = ids.utcnow()
    first_day = now.astimezone(zone).date()

    def count() -> firings.Week:
        scheduled = {d.name: d.schedule for d in store.scheduled_definitions() if d.schedule is not None}
        return firings.week(scheduled, first_day=first_day, tz=tz)

    week = await run_in_threadpool(count)
    peak = week.peak_hour
    rows = []
    for day, hours in zip(week.days, week.hours, strict=True):
        start = datetime.combine(day, datetime.min.time())
        rows.append({"label": f"{day:%a %d %b}", "cells": [
            {"count": n, "level": firings.level(n, peak),
             "title": f"{start + timedelta(hours=h):%a %d %b %H:00}-{h:02d}:59 ({tz}): {n} firing(s)"}
            for h, n in enumerate(hours)]})
    legend = [{"level": 0, "label": "none"}]
    for index in range(1, 5):
        low, high = firings.level_range(index, peak)
        if low <= high:
            legend.append({"level": index, "label": f"{low}-{high}" if low < high else str(low)})
    busiest = [{"count": b.count, "at": f"{b.at:%H:%M on %a %d %b}", "names": list(b.names[:10]),
                "more": max(0, b.count - 10)} for b in week.busiest(5)]
    return page(request, "schedule.html", session=session, cookie=cookie, title="Schedule: the week ahead",
                nav="schedule", tz=tz, rows=rows, legend=legend, busiest=busiest, total=week.total,
                definitions=sum(len(g) for g in week.groups), cap=max(1, math.ceil(peak / 60)))


async def not_found(request: Request, rest: str) -> Response:
    seen = viewer(request)
    if isinstance(seen, Response):
        return seen
    session, _ = seen
    return error(request, session, 404, f"There is no page {rest!r} in the dashboard.", back=f"{PREFIX}/")


for path, endpoint, methods in (
    ("", root, ["GET"]),
    ("/", definitions_page, ["GET"]),
    ("/definitions/{definition_id:hex24}", definition_page, ["GET"]),
    ("/definitions/{definition_id:hex24}/run", run_now, ["POST"]),
    ("/jobs/", jobs_page, ["GET"]),
    ("/jobs/progress.json", progress, ["GET"]),
    ("/jobs/{job_id:hex24}", job_page, ["GET"]),
    ("/jobs/{job_id:hex24}/abort", abort_job, ["POST"]),
    ("/schedule", schedule_page, ["GET"]),
    ("/login", login_page, ["GET"]),
    ("/login", login, ["POST"]),
    ("/logout", logout, ["POST"]),
    ("/{rest:path}", not_found, ["GET"]),
):
    router.add_api_route(path, endpoint, methods=methods, response_class=HTMLResponse)

