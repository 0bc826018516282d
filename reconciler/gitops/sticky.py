"""What the GitHub comment and the GitLab note of a plan share: the hidden marker that finds the
comment again, the body cut to the forge's limit, the result of posting it, and the error root.

Why a module of its own: :mod:`reconciler.gitops.github` and :mod:`reconciler.gitops.gitlab` differ
in the API calls only; the body and the result are one format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from reconciler.errors import ServiceError

__all__ = ["CommentResult", "ForgeError", "marker", "plan_body"]


class ForgeError(ServiceError):
    """A GitHub or GitLab call failed; the message is safe to print (it never contains a token)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, kw_only=True)
class CommentResult:
    action: Literal["created", "updated", "unchanged"]
    comment_id: int
    url: str | None


def marker(target: str | None = None) -> str:
    """The hidden line that identifies our comment; one per target so that plans do not overwrite each other."""
    return f"<!-- reconciler-plan target={target} -->" if target else "<!-- reconciler-plan -->"


def plan_body(plan_markdown: str, *, target: str | None, limit: int, noun: str) -> str:
    """The marker, then the plan, cut to ``limit`` characters with a note (naming the ``noun``,
    comment or note) when too long."""
    body = f"{marker(target)}\n{plan_markdown.rstrip()}\n"
    if len(body) > limit:
        truncated = (f"\n\n_The plan is too long for one {noun} and was cut here; see the job log for all "
                     "of it._\n")
        body = body[: limit - len(truncated)] + truncated
    return body
