"""Posting the plan to a GitHub pull request as one sticky comment.

Why sticky: a comment per push buries the conversation; one comment, found again by a hidden
marker (``<!-- reconciler-plan -->``, or ``<!-- reconciler-plan target=prod -->`` per target) and
edited in place, always shows the plan of the latest push. An identical body is not re-sent.

The REST calls (``GITHUB_API_URL``, default https://api.github.com): list the issue comments of
the pull request, following ``Link: rel="next"`` pages, then ``PATCH`` the marked comment or
``POST`` a new one. Status codes a user can act on become a :class:`GitHubError` whose message
says what to do (401 bad token, 403 no write access, notably from a fork, 404 not found).
The token is sent only in the ``Authorization`` header and never appears in a message.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, Final

import httpx

from reconciler.gitops.sticky import CommentResult, ForgeError, marker, plan_body
from reconciler.specs.files import read_limited

__all__ = ["DEFAULT_API_URL", "MAX_BODY", "CommentResult", "GitHubError", "marker", "post_plan_comment",
           "upsert_comment"]

DEFAULT_API_URL: Final = "https://api.github.com"
MAX_BODY: Final = 65_536  # GitHub refuses longer comment bodies
MAX_EVENT_BYTES: Final = 16 * 1024 * 1024  # GITHUB_EVENT_PATH is read no further


class GitHubError(ForgeError):
    """A GitHub call failed; the message is safe to print (it never contains the token)."""


def comment_body(plan_markdown: str, *, target: str | None) -> str:
    """The marker, then the plan, cut to GitHub's limit with a note when too long."""
    return plan_body(plan_markdown, target=target, limit=MAX_BODY, noun="comment")


def _github_message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return ""
    message = data.get("message") if isinstance(data, dict) else None
    return f" (GitHub says: {message})" if isinstance(message, str) and message else ""


def _is_fork_pull_request(event: Mapping[str, Any] | None) -> bool:
    pr = (event or {}).get("pull_request")
    if not isinstance(pr, dict):
        return False
    head = (pr.get("head") or {}).get("repo") or {}
    base = (pr.get("base") or {}).get("repo") or {}
    return bool(head.get("fork")) or (bool(head.get("full_name")) and head.get("full_name") != base.get("full_name"))


def _check(response: httpx.Response, *, what: str, repository: str, pr: int,
           event: Mapping[str, Any] | None) -> None:
    status = response.status_code
    if status < 400:
        return
    said = _github_message(response)
    if status == 401:
        raise GitHubError(f"GitHub rejected the token while trying to {what} (401){said}: GITHUB_TOKEN is "
                          "missing, expired or not a valid token", status=status)
    if status == 403:
        if response.headers.get("x-ratelimit-remaining") == "0":
            raise GitHubError(f"GitHub's rate limit is exhausted (403) while trying to {what}{said}; "
                              "retry after the time in the x-ratelimit-reset header", status=status)
        fork = ("this pull request comes from a fork, and " if _is_fork_pull_request(event)
                else "if this pull request comes from a fork, ")
        raise GitHubError(
            f"GitHub refused to {what} on {repository}#{pr} (403){said}: the token may not write to pull "
            f"requests. {fork[0].upper() + fork[1:]}the GITHUB_TOKEN of a `pull_request` workflow is read-only "
            "for forks. Run the comment step from a `pull_request_target` workflow (which must not run the "
            "fork's code with secrets), or use a personal access token with pull-request write access; "
            "otherwise give the job `permissions: {pull-requests: write}`", status=status)
    if status == 404:
        raise GitHubError(f"{repository}#{pr} was not found while trying to {what} (404){said}: check "
                          "GITHUB_REPOSITORY and --pr, and that the token can see the repository", status=status)
    raise GitHubError(f"GitHub answered {status} while trying to {what}{said}", status=status)


def upsert_comment(*, client: httpx.Client, repository: str, pr: int, body: str, target: str | None,
                   event: Mapping[str, Any] | None = None) -> CommentResult:
    """Edit our marked comment on ``repository``'s pull request ``pr``, or create it."""
    tag = marker(target)
    url: str | None = f"/repos/{repository}/issues/{pr}/comments"
    params: dict[str, Any] | None = {"per_page": 100}
    found: dict[str, Any] | None = None
    while url is not None and found is None:
        response = client.get(url, params=params)
        _check(response, what="list the pull request's comments", repository=repository, pr=pr, event=event)
        for comment in response.json():
            if isinstance(comment, dict) and tag in str(comment.get("body") or ""):
                found = comment
                break
        url = response.links.get("next", {}).get("url")
        params = None  # the next link carries its own query
    if found is not None:
        if found.get("body") == body:
            return CommentResult(action="unchanged", comment_id=int(found["id"]), url=found.get("html_url"))
        response = client.patch(f"/repos/{repository}/issues/comments/{found['id']}", json={"body": body})
        _check(response, what="edit the plan comment", repository=repository, pr=pr, event=event)
        data = response.json()
        return CommentResult(action="updated", comment_id=int(data["id"]), url=data.get("html_url"))
    response = client.post(f"/repos/{repository}/issues/{pr}/comments", json={"body": body})
    _check(response, what="create the plan comment", repository=repository, pr=pr, event=event)
    data = response.json()
    return CommentResult(action="created", comment_id=int(data["id"]), url=data.get("html_url"))


def _event(environ: Mapping[str, str]) -> Mapping[str, Any] | None:
    path = environ.get("GITHUB_EVENT_PATH")
    if not path:
        return None
    try:  # a pull request's event is a few kB; a file far beyond is not one
        data = json.loads(read_limited(path, limit=MAX_EVENT_BYTES, what="GitHub event").decode("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def pr_from_environment(environ: Mapping[str, str]) -> int | None:
    """The pull request number of a ``pull_request`` run (``GITHUB_REF=refs/pull/N/merge``)."""
    parts = environ.get("GITHUB_REF", "").split("/")
    if len(parts) >= 3 and parts[:2] == ["refs", "pull"] and parts[2].isdigit():
        return int(parts[2])
    return None


def post_plan_comment(*, plan_markdown: str, pr: int, target: str | None,
                      environ: Mapping[str, str] | None = None, timeout: float = 30.0) -> CommentResult:
    """``reconciler ci comment``: read the GitHub settings from the environment and upsert the comment."""
    env = os.environ if environ is None else environ
    token = env.get("GITHUB_TOKEN", "")
    repository = env.get("GITHUB_REPOSITORY", "")
    if not token:
        raise GitHubError("GITHUB_TOKEN is not set; in a workflow, pass `env: GITHUB_TOKEN: "
                          "${{ secrets.GITHUB_TOKEN }}` to this step")
    if repository.count("/") != 1 or not all(repository.split("/")):
        raise GitHubError(f"GITHUB_REPOSITORY must be OWNER/NAME, got {repository!r}")
    api = (env.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
               "X-GitHub-Api-Version": "2022-11-28", "User-Agent": "reconciler-ci"}
    try:
        with httpx.Client(base_url=api, headers=headers, timeout=timeout) as client:
            return upsert_comment(client=client, repository=repository, pr=pr,
                                  body=comment_body(plan_markdown, target=target), target=target,
                                  event=_event(env))
    except httpx.HTTPError as exc:  # connection refused, timeout: the message names the URL, never the headers
        raise GitHubError(f"cannot reach GitHub at {api}: {type(exc).__name__}: {exc}") from None
