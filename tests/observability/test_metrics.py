"""``/metrics`` on ``reconciler serve``: scraped from a real child process over HTTP, parsed with
prometheus-client's own text parser; the database figures (jobs, rows, scheduler lag) against a real
store."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from reconciler.service import ids
from reconciler.service.metrics import read_figures
from reconciler.service.records import DefinitionRecord, ResourceRecord
from reconciler.service.store import Store
from reconciler.service.testing import LocalServer, wait_for_job

from .seed import Seeded

Served = tuple[LocalServer, httpx.Client, Seeded]


def scrape(url: str, headers: dict[str, str]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of one scrape: (name, sorted labels) -> value."""
    response = httpx.get(f"{url}/metrics", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def requests_of(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[tuple[str, str, str], float]:
    found = {}
    for (name, labels), value in samples.items():
        if name == "reconciler_http_requests_total":
            label = dict(labels)
            found[(label["method"], label["route"], label["status"])] = value
    return found


def test_metrics_count_requests_by_route_template_and_jobs_by_status(served: Served) -> None:
    server, api, seeded = served
    assert httpx.get(f"{server.url}/metrics", timeout=30).status_code == 401  # the token, like the API
    before = scrape(server.url, server.headers())

    started = api.post("batchPredictions/fromJobDefinition/", json={"jobDefinitionId": seeded.quick_id})
    assert started.status_code == 202, started.text
    job = wait_for_job(api, started.json()["id"], timeout=120)
    assert job["status"] == "COMPLETED", job
    assert api.get(f"batchPredictionJobDefinitions/{'0' * 24}/").status_code == 404
    assert api.get("no/such/route").status_code == 404
    assert httpx.get(f"{server.api_url}batchPredictions/{job['id']}/", timeout=30).status_code == 401

    after = scrape(server.url, server.headers())
    counted = requests_of(after)
    definition_route = "/api/v2/batchPredictionJobDefinitions/{definition_id}/"
    assert counted[("POST", "/api/v2/batchPredictions/fromJobDefinition/", "202")] >= 1
    assert counted[("GET", "/api/v2/batchPredictions/{job_id}/", "200")] >= 1
    assert counted[("GET", definition_route, "404")] >= 1
    assert counted[("GET", "unmatched", "404")] >= 1
    # refused requests count too, under their route's template
    assert counted[("GET", "/metrics", "401")] >= 1
    assert counted[("GET", "/api/v2/batchPredictions/{job_id}/", "401")] == 1
    # the route template, never the raw path: no id becomes a label value
    assert not any(job["id"] in route or "0" * 24 in route for _, route, _ in counted)
    assert after[("reconciler_http_request_duration_seconds_count",
                  (("method", "POST"), ("route", "/api/v2/batchPredictions/fromJobDefinition/")))] >= 1

    def jobs(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], status: str) -> float:
        return samples[("reconciler_jobs", (("status", status),))]

    # the database figures are read at most every few seconds (ServiceMetrics.cache_seconds)
    deadline = time.monotonic() + 20
    while jobs(after, "COMPLETED") == jobs(before, "COMPLETED") and time.monotonic() < deadline:
        time.sleep(0.5)
        after = scrape(server.url, server.headers())
    assert jobs(after, "COMPLETED") == jobs(before, "COMPLETED") + 1
    assert after[("reconciler_job_rows_scored_total", ())] >= before[("reconciler_job_rows_scored_total", ())] \
        + seeded.rows
    assert ("reconciler_scheduler_lag_seconds", ()) in after


def test_metrics_without_token_only_when_asked(tmp_path: Path) -> None:
    with LocalServer(db_url=f"sqlite:///{tmp_path}/open.db", token="t0ken-metrics", separate_process=True,
                     serve_args=("--metrics-without-token", "--scheduler-interval", "0")) as server:
        assert httpx.get(f"{server.url}/metrics", timeout=30).status_code == 200
        # the API still wants the token
        assert httpx.get(f"{server.api_url}batchPredictionJobs/", timeout=30).status_code == 401
        samples = scrape(server.url, {})
        assert samples[("reconciler_jobs", (("status", "RUNNING"),))] == 0


def test_scheduler_lag_is_how_long_the_oldest_due_firing_waits(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/lag.db")
    store.migrate()
    user = {"id": ids.new_id(), "username": "lag-test"}
    try:
        deployment = ids.new_id()
        store.create_resource(ResourceRecord(id=deployment, kind="deployment", name="d", body={"label": "d"},
                                             created=ids.iso(ids.utcnow()), created_by=user))
        created = ids.utcnow()
        for name, minute in (("every-hour-at-05", 5), ("every-hour-at-35", 35)):
            store.create_definition(DefinitionRecord(
                id=ids.new_id(), name=name, enabled=True, created=ids.iso(created), updated=ids.iso(created),
                created_by=user, updated_by=user,
                schedule={"minute": [minute], "hour": ["*"], "dayOfMonth": ["*"], "month": ["*"], "dayOfWeek": ["*"]},
                job={"deploymentId": deployment, "intakeSettings": {"type": "localFile"}, "numConcurrent": 1}))
        assert read_figures(store, now=created).scheduler_lag == 0  # nothing has come due since the change
        later = (created + timedelta(hours=3)).replace(minute=40, second=0, microsecond=0)
        figures = read_figures(store, now=later)
        # the :35 firing has waited 5 minutes, the :05 one 35: the oldest counts
        assert figures.scheduler_lag == 35 * 60 and figures.overdue == 2
    finally:
        store.close()
