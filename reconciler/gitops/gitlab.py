"""Posting the plan to a GitLab merge request as one sticky note, as :mod:`reconciler.gitops.github`
does on a pull request: found again by the same hidden marker and edited in place on each push;
an identical body is not re-sent.

The REST API v4 calls (``CI_API_V4_URL``): ``GET /projects/:id/merge_requests/:iid/notes`` page by
page (``Link: rel="next"``, else ``X-Next-Page``), then ``PUT .../notes/:note_id`` or ``POST
.../notes``. The project is ``CI_PROJECT_ID`` (or a ``group/project`` path, URL-encoded), the
merge request ``CI_MERGE_REQUEST_IID``. The token: ``GITLAB_TOKEN`` (a project or personal access
token with the ``api`` scope, sent as ``PRIVATE-TOKEN``); else ``CI_JOB_TOKEN`` (as ``JOB-TOKEN``),
which GitLab lets reach only a few endpoints, so a refusal then says to set ``GITLAB_TOKEN``.
Tokens go only in headers and never into a message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote, urlsplit

import httpx

from reconciler.gitops.sticky import CommentResult, ForgeError, marker, plan_body

__all__ = ["MAX_BODY", "GitLabError", "GitLabSettings", "merge_request_from_environment", "note_body",
           "post_plan_note", "settings_from_environment", "upsert_note"]

MAX_BODY: Final = 1_000_000  # GitLab refuses longer note bodies
MAX_PAGES: Final = 100  # 10,000 notes at 100 a page: a merge request beyond that is not searched further
_TOKEN_HELP = ("create a project access token with the `api` scope and at least the Reporter role (Settings > Access "
               "tokens) and give it to the job as a masked CI/CD variable GITLAB_TOKEN")


class GitLabError(ForgeError):
    """A GitLab call failed; the message is safe to print (it never contains a token)."""


@dataclass(frozen=True, kw_only=True)
class GitLabSettings:
    api_url: str
    project: str
    headers: Mapping[str, str]
    job_token: bool  # only CI_JOB_TOKEN was found
    web_url: str | None = None  # CI_PROJECT_URL, for the note's link


def note_body(plan_markdown: str, *, target: str | None) -> str:
    """The marker, then the plan, cut to GitLab's limit with a note when too long."""
    return plan_body(plan_markdown, target=target, limit=MAX_BODY, noun="note")


def settings_from_environment(environ: Mapping[str, str]) -> GitLabSettings:
    """Where and as whom to post, from GitLab CI's predefined variables (and GITLAB_TOKEN)."""
    api = (environ.get("CI_API_V4_URL") or "").rstrip("/")
    if not api:
        raise GitLabError("CI_API_V4_URL is not set; GitLab CI sets it (e.g. https://gitlab.com/api/v4): run this in "
                          "a GitLab job or export it")
    if urlsplit(api).scheme not in ("http", "https") or not urlsplit(api).hostname:
        raise GitLabError(f"CI_API_V4_URL must be an http(s) URL such as https://gitlab.com/api/v4, got {api!r}")
    project = environ.get("CI_PROJECT_ID") or environ.get("CI_PROJECT_PATH") or ""
    if not project:
        raise GitLabError("CI_PROJECT_ID is not set; GitLab CI sets it, or export the project's numeric id")
    token, job_token = environ.get("GITLAB_TOKEN", ""), False
    headers = {"User-Agent": "reconciler-ci", "Accept": "application/json"}
    if token:
        headers["PRIVATE-TOKEN"] = token
    elif environ.get("CI_JOB_TOKEN"):
        headers["JOB-TOKEN"] = environ["CI_JOB_TOKEN"]
        job_token = True
    else:
        raise GitLabError(f"no GitLab token: neither GITLAB_TOKEN nor CI_JOB_TOKEN is set; {_TOKEN_HELP}")
    return GitLabSettings(api_url=api, project=quote(project, safe=""), headers=headers, job_token=job_token,
                          web_url=(environ.get("CI_PROJECT_URL") or "").rstrip("/") or None)


def merge_request_from_environment(environ: Mapping[str, str]) -> int | None:
    """The merge request of a merge request pipeline (``CI_MERGE_REQUEST_IID``)."""
    iid = environ.get("CI_MERGE_REQUEST_IID", "")
    return int(iid) if iid.isdigit() else None


def _said(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return ""
    message = data.get("message") or data.get("error") if isinstance(data, dict) else None
    return f" (GitLab says: {message})" if isinstance(message, (str, dict, list)) and message else ""


def _check(response: httpx.Response, *, what: str, settings: GitLabSettings, mr: int) -> None:
    status = response.status_code
    if status < 400:
        return
    said = _said(response)
    where = f"merge request !{mr} of project {settings.project}"
    if settings.job_token and status in (401, 403, 404):
        raise GitLabError(f"GitLab refused the CI job token while trying to {what} on {where} ({status}){said}: "
                          f"the job token cannot write merge request notes; {_TOKEN_HELP}", status=status)
    if status == 401:
        raise GitLabError(f"GitLab rejected the token while trying to {what} ({status}){said}: GITLAB_TOKEN is "
                          "expired, revoked or not a token of this GitLab", status=status)
    if status == 403:
        raise GitLabError(f"GitLab refused to {what} on {where} (403){said}: the token needs the `api` scope and at "
                          "least the Reporter role in the project (a read_api token cannot write)", status=status)
    if status == 404:
        raise GitLabError(f"{where} was not found while trying to {what} (404){said}: check CI_PROJECT_ID and "
                          "--pr (the merge request's IID, as in !12), and that the token can see the project",
                          status=status)
    if status == 429:
        raise GitLabError(f"GitLab's rate limit was hit (429) while trying to {what}{said}; retry after "
                          f"{response.headers.get('retry-after', 'a while')} seconds", status=status)
    raise GitLabError(f"GitLab answered {status} while trying to {what}{said}", status=status)


def _next_page(response: httpx.Response, url: str) -> str | None:
    link = response.links.get("next", {}).get("url")
    if link:
        return str(link)
    page = response.headers.get("x-next-page", "")
    if page.isdigit():
        return str(httpx.URL(url).copy_merge_params({"page": page}))
    return None


def upsert_note(*, client: httpx.Client, settings: GitLabSettings, mr: int, body: str,
                target: str | None) -> CommentResult:
    """Edit our marked note on merge request ``mr``, or create it."""
    tag = marker(target)
    notes = f"{settings.api_url}/projects/{settings.project}/merge_requests/{mr}/notes"
    origin = urlsplit(settings.api_url)[:2]
    url: str | None = f"{notes}?sort=asc&order_by=created_at&per_page=100"
    found: dict[str, Any] | None = None
    for _ in range(MAX_PAGES):
        if url is None or found is not None:
            break
        response = client.get(url)
        _check(response, what="list the merge request's notes", settings=settings, mr=mr)
        for note in response.json():
            if isinstance(note, dict) and not note.get("system") and tag in str(note.get("body") or ""):
                found = note
                break
        url = _next_page(response, url)
        if url is not None and urlsplit(url)[:2] != origin:
            raise GitLabError(f"refusing to follow a next-page link to another origin: {urlsplit(url).netloc}")

    def link(note_id: int) -> str | None:
        return f"{settings.web_url}/-/merge_requests/{mr}#note_{note_id}" if settings.web_url else None

    if found is not None:
        note_id = int(found["id"])
        if found.get("body") == body:
            return CommentResult(action="unchanged", comment_id=note_id, url=link(note_id))
        response = client.put(f"{notes}/{note_id}", json={"body": body})
        _check(response, what="edit the plan note", settings=settings, mr=mr)
        return CommentResult(action="updated", comment_id=note_id, url=link(note_id))
    response = client.post(notes, json={"body": body})
    _check(response, what="create the plan note", settings=settings, mr=mr)
    note_id = int(response.json()["id"])
    return CommentResult(action="created", comment_id=note_id, url=link(note_id))


def post_plan_note(*, plan_markdown: str, mr: int, target: str | None, environ: Mapping[str, str] | None = None,
                   timeout: float = 30.0) -> CommentResult:
    """``reconciler ci comment`` on GitLab: read the settings from the environment and upsert the note."""
    settings = settings_from_environment(os.environ if environ is None else environ)
    try:
        with httpx.Client(headers=dict(settings.headers), timeout=timeout, follow_redirects=False) as client:
            return upsert_note(client=client, settings=settings, mr=mr, body=note_body(plan_markdown, target=target),
                               target=target)
    except httpx.HTTPError as exc:  # the message names the URL, never the headers
        raise GitLabError(f"cannot reach GitLab at {settings.api_url}: {type(exc).__name__}: {exc}") from None
