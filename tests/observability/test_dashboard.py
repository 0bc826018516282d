"""The dashboard at ``/ui`` in a real browser: Playwright driving Debian's chromium against a real
``reconciler serve`` child process (running jobs) on 127.0.0.1.

Screenshots for the README: set ``RECONCILER_SCREENSHOTS=docs/img`` to write them there (else they
go to a temporary directory, so that a test run leaves the repository alone).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from reconciler.service.testing import LocalServer

from .seed import TOKEN, Seeded

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the dev extra)")

CHROMIUM = Path(os.environ.get("RECONCILER_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
STEP_MS = 15_000  # the longest wait for one step (a job's run included)

Served = tuple[LocalServer, httpx.Client, Seeded]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"chromium is required in CI: {CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium, or set RECONCILER_CHROMIUM)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any, served: Served) -> Iterator[Any]:
    server, _, _ = served
    context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(STEP_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("RECONCILER_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def log_in(page: Any, *, token: str = TOKEN) -> None:
    page.goto("/ui/")
    assert page.url.endswith("/ui/login?next=%2Fui%2F")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Log in").click()


def test_login_sets_a_safe_session_cookie_and_wrong_tokens_are_refused(page: Any) -> None:
    response = page.goto("/ui/")
    headers = response.all_headers()
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "unsafe-inline" not in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
    page.get_by_label("API token").fill("not-the-token")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("alert").inner_text().startswith("That token is not valid")
    assert page.get_by_label("API token").get_attribute("aria-invalid") == "true"

    page.get_by_label("API token").fill(TOKEN)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/ui/$"))
    (cookie,) = page.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
    assert TOKEN not in cookie["value"]  # signed session id, never the token
    assert page.evaluate("document.cookie") == ""  # no script reads it

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/ui/login"))
    page.goto("/ui/jobs/")
    assert "/ui/login" in page.url


def test_search_and_a_definition_page_show_the_manifest_and_next_firings(page: Any, served: Served,
                                                                         shots: Path) -> None:
    _, _, seeded = served
    log_in(page)
    page.wait_for_url(re.compile(r"/ui/$"))
    assert "43 definition(s)" in page.locator("caption").inner_text()
    page.get_by_label("Search by name").fill("churn")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"q=churn"))
    rows = page.locator("tbody tr")
    assert rows.count() == 1
    assert "0 2 * * *" in rows.first.inner_text()
    page.get_by_label("Search by name").fill("nightly-batch")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"q=nightly-batch"))
    assert page.locator("caption").inner_text().startswith("40 definition(s)")
    page.screenshot(path=str(shots / "dashboard-definitions.png"))

    page.goto(f"/ui/definitions/{seeded.quick_id}")
    assert page.get_by_role("heading", level=1).inner_text() == "churn-nightly"
    manifest = page.get_by_label("Manifest YAML").inner_text()
    assert "kind: BatchPredictionJobDefinition" in manifest and "name: churn-nightly" in manifest
    assert yaml.safe_load(manifest)["spec"]["schedule"] == {"cron": "0 2 * * *"}  # as export writes it
    assert page.locator("ol.firings li").count() == 10
    assert page.locator("ol.firings li").first.inner_text().endswith("02:00:00 UTC")


def test_run_now_then_watch_the_job_complete(page: Any, served: Served, shots: Path) -> None:
    _, api, seeded = served
    log_in(page)
    page.goto(f"/ui/definitions/{seeded.quick_id}")
    page.get_by_role("button", name="Run now").click()
    page.wait_for_url(re.compile(r"/ui/jobs/[0-9a-f]{24}$"))
    job_id = page.url.rsplit("/", 1)[1]
    # the page polls (or reloads) until the job is done; no reload by the test
    page.locator(".status", has_text="COMPLETED").wait_for()
    facts = page.locator("dl.facts").inner_text()
    assert f"{seeded.rows:,}" in facts and "100%" in facts
    assert api.get(f"batchPredictions/{job_id}/").json()["status"] == "COMPLETED"
    assert page.get_by_role("button", name="Abort this job").count() == 0
    page.screenshot(path=str(shots / "dashboard-job.png"))
    page.goto("/ui/jobs/")
    assert page.locator(f"a[href='/ui/jobs/{job_id}']").count() == 1
    polled = page.request.get(f"/ui/jobs/progress.json?id={job_id}").json()  # what the page's script reads
    assert polled[job_id]["status"] == "COMPLETED" and polled[job_id]["percentage"] == 100


def test_usable_without_javascript(browser: Any, served: Served) -> None:
    """With scripting off, the login, Run now and a running job's page (a meta refresh) still work."""
    server, _, seeded = served
    context = browser.new_context(base_url=server.url, java_script_enabled=False)
    context.set_default_timeout(STEP_MS)
    try:
        page = context.new_page()
        log_in(page)
        page.wait_for_url(re.compile(r"/ui/$"))
        page.goto(f"/ui/definitions/{seeded.quick_id}")
        page.get_by_role("button", name="Run now").click()
        page.wait_for_url(re.compile(r"/ui/jobs/[0-9a-f]{24}$"))
        page.locator(".status", has_text="COMPLETED").wait_for()  # by the page's own refresh, if it was running
        # a job that stays active (it waits for an upload): its page refreshes itself, Abort is a plain form
        page.goto(f"/ui/definitions/{seeded.waiting_id}")
        page.get_by_role("button", name="Run now").click()
        page.wait_for_url(re.compile(r"/ui/jobs/[0-9a-f]{24}$"))
        assert '<meta http-equiv="refresh" content="3">' in page.content()
        with page.expect_navigation():  # the refresh, with no script running
            pass
        page.get_by_role("button", name="Abort this job").click()
        page.locator(".status", has_text="ABORTED").wait_for()
    finally:
        context.close()


def test_abort_a_waiting_job(page: Any, served: Served) -> None:
    _, api, seeded = served
    log_in(page)
    page.goto(f"/ui/definitions/{seeded.waiting_id}")
    page.get_by_role("button", name="Run now").click()
    page.wait_for_url(re.compile(r"/ui/jobs/[0-9a-f]{24}$"))
    job_id = page.url.rsplit("/", 1)[1]
    assert page.locator(".status").first.inner_text() == "INITIALIZING"  # waits for its upload
    page.get_by_role("button", name="Abort this job").click()
    page.locator(".status", has_text="ABORTED").wait_for()
    assert api.get(f"batchPredictions/{job_id}/").json()["status"] == "ABORTED"


def test_posts_without_the_cookie_or_the_csrf_token_are_refused(page: Any, served: Served) -> None:
    server, api, seeded = served
    before = api.get("batchPredictions/", params={"limit": 1}).json()["totalCount"]
    anonymous = httpx.post(f"{server.url}/ui/definitions/{seeded.quick_id}/run", data={"csrf": "x"}, timeout=30)
    assert anonymous.status_code == 403 and "not logged in" in anonymous.text
    log_in(page)
    page.wait_for_url(re.compile(r"/ui/$"))
    forged = page.request.post(f"/ui/definitions/{seeded.quick_id}/run", form={"csrf": "0" * 64})
    assert forged.status == 403 and "CSRF" in forged.text()
    no_token = page.request.post(f"/ui/definitions/{seeded.quick_id}/run", form={})
    assert no_token.status == 403
    assert api.get("batchPredictions/", params={"limit": 1}).json()["totalCount"] == before  # nothing ran
    # the API itself still wants its token: the cookie is no bearer
    assert page.request.get("/api/v2/batchPredictionJobDefinitions/").status == 401


def test_schedule_heatmap_names_the_crowded_minute(page: Any, shots: Path) -> None:
    log_in(page)
    page.goto("/ui/schedule")
    busiest = page.locator("main li").first.inner_text()
    assert busiest.startswith("41 definition(s) fire at 02:00 on Mon"), busiest
    assert page.locator("table.heatmap tbody tr").count() == 7
    assert page.locator("table.heatmap td.heat-4").count() >= 1
    page.screenshot(path=str(shots / "dashboard-schedule.png"), full_page=True)
    page.get_by_label("Time zone").fill("Asia/Tokyo")
    page.get_by_role("button", name="Show").click()
    assert page.locator("main li").first.inner_text().startswith("41 definition(s) fire at 11:00 on Mon")


def test_keyboard_and_labels(page: Any) -> None:
    log_in(page)
    page.wait_for_url(re.compile(r"/ui/$"))
    unlabelled = page.evaluate("""() => Array.from(document.querySelectorAll(
        'input:not([type=hidden]), select, textarea, button')).filter(el => {
          const named = (el.labels && el.labels.length) || el.getAttribute('aria-label')
            || (el.tagName === 'BUTTON' && el.textContent.trim());
          return !named; }).map(el => el.outerHTML)""")
    assert unlabelled == []
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to the content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    for _ in range(10):  # from the content, the search field is reachable by keyboard alone
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "q":
            break
    assert page.evaluate("document.activeElement.id") == "q"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # focus is visible
    page.keyboard.type("hourly")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"q=hourly"))
    assert page.locator("tbody tr").count() == 1


def test_terminal_heatmap_as_the_schedule_command_draws_it(browser: Any, served: Served, shots: Path) -> None:
    """The README's picture of `reconciler schedule --live`: its renderables, recorded as HTML by
    rich and photographed in the browser."""
    import io
    from datetime import UTC, datetime, timedelta

    from rich.console import Console

    from reconciler.cli.schedule import live_schedules
    from reconciler.engine import schedule as view

    _, api, _ = served
    items = api.get("batchPredictionJobDefinitions/", params={"limit": 100}).json()["data"]
    now = datetime.now(UTC)
    monday = (now + timedelta(days=(7 - now.weekday()) % 7)).date()
    report = view.build_report(live_schedules(items), first_day=monday, tz="UTC", now=now, next_count=2, limit=5)
    assert report.busiest[0].count == 41 and report.spread.crowded == ()
    assert len(report.spread.moves) == 41 - 5
    console = Console(record=True, width=118, file=io.StringIO(), force_terminal=True, color_system="truecolor")
    console.print("$ reconciler schedule --live --next 2 --limit 5", style="bold")
    for renderable in view.render(report):
        console.print(renderable)
    text = console.export_text(clear=False)
    assert "41 definition(s) fire at 02:00 on Mon" in text and "Spread (at most 5 per minute)" in text
    page = browser.new_page(viewport={"width": 1000, "height": 470})  # the top: heatmap, busiest, spread
    try:
        page.set_content(console.export_html(inline_styles=True))
        page.add_style_tag(content="body { margin: 8px; } pre { font-size: 12px; line-height: 1.25; }")
        page.screenshot(path=str(shots / "terminal-schedule.png"))
    finally:
        page.close()
