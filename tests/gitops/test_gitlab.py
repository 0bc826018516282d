"""The sticky merge-request note against a real HTTP server on loopback that speaks GitLab's REST
API v4 notes routes (GET with Link/X-Next-Page pagination, POST, PUT), as GitLab documents them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from .forge import JsonHandler, Ran, run_comment, run_comment_process, serve

TOKEN = "glpat-test-token-0123456789ab"
JOB_TOKEN = "glcbt-job-token-9876543210"
PROJECT = "4242"
MR = 12
NOTES = f"/api/v4/projects/{PROJECT}/merge_requests/{MR}/notes"


@dataclass
class FakeGitLab:
    notes: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    per_page: int = 2
    refuse_job_token: bool = True  # as GitLab: the job token cannot reach the notes API
    base: str = ""
    next_id: int = 500
    link_header: bool = True  # else only X-Next-Page, as some proxies strip Link

    def add(self, body: str, *, system: bool = False) -> dict[str, Any]:
        self.next_id += 1
        note = {"id": self.next_id, "body": body, "system": system, "author": {"username": "bot"}}
        self.notes.append(note)
        return note


def _handler(state: FakeGitLab) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):

        def _authorized(self) -> dict[str, Any] | None:
            entry = {"method": self.command, "path": self.path, "private": self.headers.get("PRIVATE-TOKEN"),
                     "job": self.headers.get("JOB-TOKEN"), "body": self._json_body()}
            state.requests.append(entry)
            if entry["private"] == TOKEN:
                return entry
            if entry["job"] == JOB_TOKEN and state.refuse_job_token:
                self._send(403, {"message": "403 Forbidden"})
                return None
            if entry["job"] == JOB_TOKEN:
                return entry
            self._send(401, {"message": "401 Unauthorized"})
            return None

        def do_GET(self) -> None:
            if self._authorized() is None:
                return
            url = urlsplit(self.path)
            if url.path != NOTES:
                self._send(404, {"message": "404 Not found"})
                return
            query = parse_qs(url.query)
            page = int(query.get("page", ["1"])[0])
            start = (page - 1) * state.per_page
            headers = {"X-Page": str(page), "X-Per-Page": str(state.per_page), "X-Total": str(len(state.notes))}
            more = start + state.per_page < len(state.notes)
            headers["X-Next-Page"] = str(page + 1) if more else ""
            if more and state.link_header:
                headers["Link"] = (f'<{state.base}{NOTES}?order_by=created_at&page={page + 1}'
                                   f'&per_page={state.per_page}&sort=asc>; rel="next"')
            self._send(200, state.notes[start:start + state.per_page], headers)

        def do_POST(self) -> None:
            entry = self._authorized()
            if entry is None:
                return
            if urlsplit(self.path).path != NOTES:
                self._send(404, {"message": "404 Not found"})
                return
            self._send(201, state.add(entry["body"]["body"]))

        def do_PUT(self) -> None:
            entry = self._authorized()
            if entry is None:
                return
            note_id = int(self.path.rsplit("/", 1)[-1])
            for note in state.notes:
                if note["id"] == note_id and self.path == f"{NOTES}/{note_id}":
                    note["body"] = entry["body"]["body"]
                    self._send(200, note)
                    return
            self._send(404, {"message": "404 Note Not Found"})

    return Handler


@pytest.fixture
def gitlab() -> Iterator[FakeGitLab]:
    state = FakeGitLab()
    with serve(_handler(state)) as base:
        state.base = base
        yield state


def _env(gitlab: FakeGitLab, extra: dict[str, str] | None = None) -> dict[str, str | None]:
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith(("GITHUB_", "GITLAB_", "CI_"))}
    env.update({"GITLAB_CI": "true", "CI_API_V4_URL": f"{gitlab.base}/api/v4", "CI_PROJECT_ID": PROJECT,
                "CI_MERGE_REQUEST_IID": str(MR), "CI_PROJECT_URL": "https://gitlab.test/acme/specs",
                "GITLAB_TOKEN": TOKEN, "CI_JOB_TOKEN": JOB_TOKEN, "NO_COLOR": "1", **(extra or {})})
    return env


def _run(gitlab: FakeGitLab, *args: str, stdin: str = "", extra: dict[str, str] | None = None) -> Ran:
    """The command in-process (typer's runner), against the loopback server."""
    return run_comment(args, stdin=stdin, env=_env(gitlab, extra))


def _run_process(gitlab: FakeGitLab, *args: str, stdin: str = "") -> Ran:
    """The installed command line in a real process, as CI runs it."""
    return run_comment_process(args, stdin=stdin, env=_env(gitlab))


def _no_token(result: Ran) -> None:
    for secret in (TOKEN, JOB_TOKEN):
        assert secret not in result.stdout + result.stderr and secret[6:] not in result.stdout + result.stderr


def test_found_from_gitlab_ci_creates_then_edits_the_note_in_place(gitlab: FakeGitLab) -> None:
    gitlab.add("Looks good")
    first = _run_process(gitlab, stdin="### reconciler plan\n\n**Plan: 1 to create, 0 to update, 0 to delete.**\n")
    assert first.returncode == 0, first.stderr
    note = gitlab.notes[-1]
    assert first.stdout.strip() == (f"created the plan note on merge request !{MR}: "
                                    f"https://gitlab.test/acme/specs/-/merge_requests/{MR}#note_{note['id']}")
    assert [r["method"] for r in gitlab.requests] == ["GET", "POST"]
    assert all(r["private"] == TOKEN and r["job"] is None for r in gitlab.requests)  # GITLAB_TOKEN wins
    assert gitlab.requests[0]["path"] == f"{NOTES}?sort=asc&order_by=created_at&per_page=100"
    assert note["body"].startswith("<!-- reconciler-plan -->\n### reconciler plan")
    _no_token(first)

    gitlab.requests.clear()
    second = _run(gitlab, stdin="### reconciler plan\n\n**No changes.**\n")
    assert second.returncode == 0, second.stderr
    assert "updated the plan note" in second.stdout
    assert [(r["method"], r["path"]) for r in gitlab.requests] == [
        ("GET", f"{NOTES}?sort=asc&order_by=created_at&per_page=100"), ("PUT", f"{NOTES}/{note['id']}")]
    assert len(gitlab.notes) == 2 and "No changes" in note["body"]

    gitlab.requests.clear()
    third = _run(gitlab, stdin="### reconciler plan\n\n**No changes.**\n")
    assert "unchanged the plan note" in third.stdout
    assert [r["method"] for r in gitlab.requests] == ["GET"]  # identical body: nothing re-sent


@pytest.mark.parametrize("link_header", [True, False])
def test_follows_pages_to_the_marker_and_leaves_other_targets_and_system_notes(gitlab: FakeGitLab,
                                                                               link_header: bool) -> None:
    gitlab.link_header = link_header  # without Link, X-Next-Page leads
    gitlab.add("<!-- reconciler-plan -->\nquoted by the system", system=True)
    for i in range(4):
        gitlab.add(f"review note {i}")
    ours = gitlab.add("<!-- reconciler-plan -->\nold plan")
    other = gitlab.add("<!-- reconciler-plan target=prod -->\nprod plan")
    result = _run(gitlab, "--provider", "gitlab", "--pr", str(MR), stdin="new plan")
    assert result.returncode == 0, result.stderr
    gets = [r["path"] for r in gitlab.requests if r["method"] == "GET"]
    assert len(gets) == 3 and "page=3" in gets[-1]
    puts = [r["path"] for r in gitlab.requests if r["method"] == "PUT"]
    assert puts == [f"{NOTES}/{ours['id']}"] and ours["body"] == "<!-- reconciler-plan -->\nnew plan\n"
    assert other["body"] == "<!-- reconciler-plan target=prod -->\nprod plan"
    assert gitlab.notes[0]["body"] == "<!-- reconciler-plan -->\nquoted by the system"


def test_one_note_per_target(gitlab: FakeGitLab) -> None:
    gitlab.add("<!-- reconciler-plan -->\nuntargeted")
    result = _run(gitlab, "--target", "prod", stdin="prod plan")
    assert result.returncode == 0, result.stderr
    assert [r["method"] for r in gitlab.requests] == ["GET", "POST"]
    assert gitlab.notes[-1]["body"].startswith("<!-- reconciler-plan target=prod -->\n")


def test_the_job_token_is_sent_as_job_token_and_its_refusal_says_to_set_gitlab_token(gitlab: FakeGitLab) -> None:
    refused = _run(gitlab, stdin="plan", extra={"GITLAB_TOKEN": ""})
    assert refused.returncode == 1
    assert gitlab.requests[0]["job"] == JOB_TOKEN and gitlab.requests[0]["private"] is None
    assert "GitLab refused the CI job token" in refused.stderr and "(403)" in refused.stderr
    assert "GITLAB_TOKEN" in refused.stderr and "`api` scope" in refused.stderr
    _no_token(refused)
    gitlab.refuse_job_token = False  # a GitLab that lets the job token write notes: it is used as is
    allowed = _run(gitlab, stdin="plan", extra={"GITLAB_TOKEN": ""})
    assert allowed.returncode == 0, allowed.stderr
    assert gitlab.requests[-1]["method"] == "POST" and gitlab.requests[-1]["job"] == JOB_TOKEN


def test_bad_token_missing_settings_and_unknown_merge_request(gitlab: FakeGitLab) -> None:
    bad = _run(gitlab, stdin="plan", extra={"GITLAB_TOKEN": "glpat-wrong"})
    assert bad.returncode == 1 and "GitLab rejected the token" in bad.stderr and "(401)" in bad.stderr
    _no_token(bad)
    missing = _run(gitlab, "--pr", "99", stdin="plan")
    assert missing.returncode == 1 and f"merge request !99 of project {PROJECT} was not found" in missing.stderr
    no_mr = _run(gitlab, stdin="plan", extra={"CI_MERGE_REQUEST_IID": ""})
    assert no_mr.returncode == 1 and "merge_request_event" in no_mr.stderr
    no_tokens = _run(gitlab, stdin="plan", extra={"GITLAB_TOKEN": "", "CI_JOB_TOKEN": ""})
    assert no_tokens.returncode == 1 and "neither GITLAB_TOKEN nor CI_JOB_TOKEN" in no_tokens.stderr
    no_api = _run(gitlab, stdin="plan", extra={"CI_API_V4_URL": ""})
    assert no_api.returncode == 1 and "CI_API_V4_URL is not set" in no_api.stderr
    github_default = _run(gitlab, stdin="plan", extra={"GITLAB_CI": ""})  # outside GitLab CI: GitHub, as before
    assert github_default.returncode == 1 and "GITHUB_REF is not refs/pull" in github_default.stderr


def test_long_plan_is_cut_to_gitlabs_limit() -> None:
    from reconciler.gitops import gitlab as gl

    body = gl.note_body("x" * 2_000_000, target="prod")
    assert len(body) <= gl.MAX_BODY and body.startswith("<!-- reconciler-plan target=prod -->") and "too long" in body


def test_the_example_pipeline_posts_the_plan_note() -> None:
    import yaml

    pipeline = yaml.safe_load((Path(__file__).parents[2] / "examples/gitops-repo/.gitlab-ci.yml").read_text())
    scripts = [line for job in pipeline.values() if isinstance(job, dict) for line in job.get("script") or []]
    assert any("reconciler ci comment" in line for line in scripts), scripts
