"""The sticky pull-request comment against a real HTTP server on loopback that plays GitHub."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from .forge import JsonHandler, Ran, run_comment, run_comment_process, serve

TOKEN = "ghs_test-token-0123456789abcdef"
REPO = "acme/specs"
PR = 7


@dataclass
class FakeGitHub:
    """Issue comments of one pull request, paginated like GitHub; every request is recorded."""

    comments: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    per_page: int = 2
    fail_status: int | None = None
    fail_body: dict[str, Any] = field(default_factory=dict)
    base: str = ""
    next_id: int = 1000

    def add(self, body: str) -> dict[str, Any]:
        self.next_id += 1
        comment = {"id": self.next_id, "body": body, "html_url": f"https://github.test/c/{self.next_id}"}
        self.comments.append(comment)
        return comment


def _handler(state: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):

        def _record(self) -> dict[str, Any]:
            entry = {"method": self.command, "path": self.path, "auth": self.headers.get("Authorization"),
                     "body": self._json_body()}
            state.requests.append(entry)
            return entry

        def _failed(self) -> bool:
            if state.fail_status is None:
                return False
            self._send(state.fail_status, state.fail_body)
            return True

        def do_GET(self) -> None:
            self._record()
            if self._failed():
                return
            url = urlsplit(self.path)
            if url.path != f"/repos/{REPO}/issues/{PR}/comments":
                self._send(404, {"message": "Not Found"})
                return
            page = int(parse_qs(url.query).get("page", ["1"])[0])
            start = (page - 1) * state.per_page
            chunk = state.comments[start:start + state.per_page]
            headers = {}
            if start + state.per_page < len(state.comments):
                headers["Link"] = (f'<{state.base}/repos/{REPO}/issues/{PR}/comments?per_page={state.per_page}'
                                   f'&page={page + 1}>; rel="next"')
            self._send(200, chunk, headers)

        def do_POST(self) -> None:
            entry = self._record()
            if self._failed():
                return
            self._send(201, state.add(entry["body"]["body"]))

        def do_PATCH(self) -> None:
            entry = self._record()
            if self._failed():
                return
            cid = int(self.path.rsplit("/", 1)[-1])
            for comment in state.comments:
                if comment["id"] == cid:
                    comment["body"] = entry["body"]["body"]
                    self._send(200, comment)
                    return
            self._send(404, {"message": "Not Found"})

    return Handler


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    state = FakeGitHub()
    with serve(_handler(state)) as base:
        state.base = base
        yield state


def _env(github: FakeGitHub, extra_env: dict[str, str] | None) -> dict[str, str | None]:
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("GITHUB_")}
    env.update({"GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": REPO, "GITHUB_API_URL": github.base,
                "NO_COLOR": "1", **(extra_env or {})})
    return env


def _run(github: FakeGitHub, *args: str, stdin: str = "", extra_env: dict[str, str] | None = None) -> Ran:
    """The command in-process (typer's runner), against the loopback server."""
    return run_comment(args, stdin=stdin, env=_env(github, extra_env))


def _run_process(github: FakeGitHub, *args: str, stdin: str = "") -> Ran:
    """The installed command line in a real process, as CI runs it."""
    return run_comment_process(args, stdin=stdin, env=_env(github, None))


def _assert_no_token(result: Ran) -> None:
    assert TOKEN not in result.stdout and TOKEN not in result.stderr
    assert TOKEN[4:] not in result.stdout + result.stderr


def test_creates_then_edits_in_place(github: FakeGitHub, tmp_path: Path) -> None:
    github.add("LGTM")
    plan = tmp_path / "plan.md"
    plan.write_text("### reconciler plan\n\n**Plan: 1 to create, 0 to update, 0 to delete.**\n")
    first = _run_process(github, "--pr", str(PR), "--file", str(plan))
    assert first.returncode == 0, first.stderr
    assert "created the plan comment on pull request #7" in first.stdout
    _assert_no_token(first)
    assert [r["method"] for r in github.requests] == ["GET", "POST"]
    assert all(r["auth"] == f"Bearer {TOKEN}" for r in github.requests)
    assert github.requests[0]["path"] == f"/repos/{REPO}/issues/{PR}/comments?per_page=100"
    posted = github.comments[-1]["body"]
    assert posted.startswith("<!-- reconciler-plan -->\n### reconciler plan")

    github.requests.clear()
    second = _run(github, "--pr", str(PR), stdin="### reconciler plan\n\n**No changes.**\n")
    assert second.returncode == 0, second.stderr
    assert "updated the plan comment" in second.stdout
    assert [r["method"] for r in github.requests] == ["GET", "PATCH"]
    assert github.requests[1]["path"] == f"/repos/{REPO}/issues/comments/{github.comments[-1]['id']}"
    assert len(github.comments) == 2 and "No changes" in github.comments[-1]["body"]

    github.requests.clear()
    third = _run_process(github, "--pr", str(PR), stdin="### reconciler plan\n\n**No changes.**\n")
    assert "unchanged the plan comment" in third.stdout
    assert [r["method"] for r in github.requests] == ["GET"]  # identical body: nothing re-sent
    _assert_no_token(third)


def test_follows_pagination_to_find_the_marker(github: FakeGitHub) -> None:
    for i in range(5):
        github.add(f"review comment {i}")
    ours = github.add("<!-- reconciler-plan -->\nold plan")
    github.add("<!-- reconciler-plan target=prod -->\nprod plan")  # another target's comment is left alone
    result = _run(github, "--pr", str(PR), stdin="new plan")
    assert result.returncode == 0, result.stderr
    gets = [r for r in github.requests if r["method"] == "GET"]
    assert len(gets) == 3 and "page=3" in gets[-1]["path"]
    patches = [r for r in github.requests if r["method"] == "PATCH"]
    assert [p["path"].rsplit("/", 1)[-1] for p in patches] == [str(ours["id"])]
    assert ours["body"] == "<!-- reconciler-plan -->\nnew plan\n"
    assert github.comments[-1]["body"] == "<!-- reconciler-plan target=prod -->\nprod plan"


def test_one_comment_per_target(github: FakeGitHub) -> None:
    github.add("<!-- reconciler-plan -->\nuntargeted")
    result = _run(github, "--pr", str(PR), "--target", "prod", stdin="prod plan")
    assert result.returncode == 0, result.stderr
    assert [r["method"] for r in github.requests] == ["GET", "POST"]
    assert github.comments[-1]["body"].startswith("<!-- reconciler-plan target=prod -->\n")


def test_fork_403_explains_and_exits_1(github: FakeGitHub, tmp_path: Path) -> None:
    github.fail_status = 403
    github.fail_body = {"message": "Resource not accessible by integration"}
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"head": {"repo": {"full_name": "someone/specs", "fork": True}},
                                                  "base": {"repo": {"full_name": REPO}}}}))
    result = _run(github, "--pr", str(PR), stdin="plan", extra_env={"GITHUB_EVENT_PATH": str(event)})
    assert result.returncode == 1
    assert "403" in result.stderr and "This pull request comes from a fork" in result.stderr
    assert "pull_request_target" in result.stderr and "personal access token" in result.stderr
    assert "Resource not accessible by integration" in result.stderr
    _assert_no_token(result)


@pytest.mark.parametrize(("status", "expected"), [(401, "GitHub rejected the token"), (404, "was not found")])
def test_other_errors_exit_1(github: FakeGitHub, status: int, expected: str) -> None:
    github.fail_status = status
    github.fail_body = {"message": "Bad credentials" if status == 401 else "Not Found"}
    result = _run(github, "--pr", str(PR), stdin="plan")
    assert result.returncode == 1 and expected in result.stderr
    _assert_no_token(result)


def test_missing_settings_and_pr_from_ref(github: FakeGitHub) -> None:
    no_token = _run(github, "--pr", str(PR), stdin="plan", extra_env={"GITHUB_TOKEN": ""})
    assert no_token.returncode == 1 and "GITHUB_TOKEN is not set" in no_token.stderr
    no_pr = _run(github, stdin="plan")
    assert no_pr.returncode == 1 and "--pr" in no_pr.stderr
    from_ref = _run(github, stdin="plan", extra_env={"GITHUB_REF": f"refs/pull/{PR}/merge"})
    assert from_ref.returncode == 0, from_ref.stderr
    assert github.requests[-1]["method"] == "POST"


def test_unreachable_api_is_a_clear_error(github: FakeGitHub) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = _run(github, "--pr", str(PR), stdin="plan", extra_env={"GITHUB_API_URL": f"http://127.0.0.1:{port}"})
    assert result.returncode == 1 and "cannot reach GitHub" in result.stderr
    _assert_no_token(result)


def test_long_plan_is_cut_to_githubs_limit() -> None:
    from reconciler.gitops import github as gh

    body = gh.comment_body("x" * 100_000, target=None)
    assert len(body) <= gh.MAX_BODY and body.startswith(gh.marker(None)) and "too long" in body


def test_comment_with_paths_plans_itself_and_invalid_manifests_post_nothing(github: FakeGitHub,
                                                                             tmp_path: Path) -> None:
    """`ci comment PATHS` plans through the session: invalid manifests exit 3 as plan does, and
    nothing is posted; --file with PATHS is a usage error."""
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "bad.yaml").write_text("apiVersion: reconciler.io/v1alpha1\nkind: BatchPredictionJobDefinition\n"
                                    "metadata: {name: demo-bad}\nspec: {batchPredictionJob: {numConcurrent: lots}}\n")
    invalid = _run(github, str(specs), "--pr", str(PR), extra_env={"RECONCILER_LOCAL_DB_URL": f"sqlite:///{tmp_path}/l.db"})
    assert invalid.returncode == 3, invalid.stderr
    assert "INVALID" in invalid.stderr and github.requests == []
    both = _run(github, str(specs), "--pr", str(PR), "--file", str(specs / "bad.yaml"))
    assert both.returncode == 1 and "not both" in both.stderr
