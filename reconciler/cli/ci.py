"""``reconciler ci comment``: the markdown plan as one sticky pull-request comment (GitHub) or
merge-request note (GitLab: ``--provider gitlab``, or found from ``GITLAB_CI``).

Two ways in: ``ci comment PATHS --target T`` plans through the session itself (the same road as
``reconciler plan``, so the pull-request flow cannot drift from it) and posts the result, exiting
as ``plan`` would; or ``ci comment --file PLAN.md`` (or stdin) posts a plan made earlier.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli import options as o
from reconciler.cli.console import EXIT_OK, exit_codes, setup_logging, stdout_console
from reconciler.cli.plan import make_plan, plan_exit_code
from reconciler.errors import UsageError
from reconciler.session import Options, Session
from reconciler.specs.files import read_limited

__all__ = ["register"]

# what `ci comment` reads: a markdown plan is cut under GitHub's 65,536-character comment limit
_MAX_COMMENT_BYTES = 1024 * 1024


def _read_plan_text(file: Path | None) -> str:
    try:
        if file is not None and str(file) != "-":
            text = read_limited(file, limit=_MAX_COMMENT_BYTES, what="plan to post",
                                hint="post the markdown plan (`reconciler plan -o markdown`), which stays under "
                                     "GitHub's comment limit").decode("utf-8")
        else:
            text = sys.stdin.read(_MAX_COMMENT_BYTES + 1)
            if len(text) > _MAX_COMMENT_BYTES:
                raise UsageError(f"the plan on stdin is over {_MAX_COMMENT_BYTES} characters; pipe "
                                 "`reconciler plan -o markdown` in, which stays under GitHub's comment limit")
    except OSError as exc:
        raise UsageError(f"cannot read the plan {file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"the plan {file} is not UTF-8 text; pass the markdown plan") from None
    if not text.strip():
        raise UsageError("the plan is empty; pipe `reconciler plan --output markdown` in, or pass --file PLAN.md")
    return text


class Provider(StrEnum):
    auto = "auto"
    github = "github"
    gitlab = "gitlab"


def _post(text: str, *, pr: int | None, target: str | None, provider: Provider) -> None:
    if provider is Provider.gitlab or (provider is Provider.auto and os.environ.get("GITLAB_CI") == "true"):
        from reconciler.gitops import gitlab

        number = pr if pr is not None else gitlab.merge_request_from_environment(os.environ)
        if number is None:
            raise UsageError("no merge request: pass --pr N (the IID, as in !N); CI_MERGE_REQUEST_IID is set only "
                             "in merge request pipelines (rules: - if: $CI_PIPELINE_SOURCE == 'merge_request_event')")
        result = gitlab.post_plan_note(plan_markdown=text, mr=number, target=target)
        where = f": {result.url}" if result.url else ""
        stdout_console().print(f"{result.action} the plan note on merge request !{number}{where}", markup=False)
        return
    from reconciler.gitops import github

    number = pr if pr is not None else github.pr_from_environment(os.environ)
    if number is None:
        raise UsageError("no pull request number: pass --pr N (GITHUB_REF is not refs/pull/N/...)")
    result = github.post_plan_comment(plan_markdown=text, pr=number, target=target)
    where = f": {result.url}" if result.url else ""
    stdout_console().print(f"{result.action} the plan comment on pull request #{number}{where}", markup=False)


def register(app: typer.Typer) -> None:
    ci = typer.Typer(name="ci", help="Continuous-integration helpers.", no_args_is_help=True)
    app.add_typer(ci, name="ci")

    @ci.command("comment")
    @o.api_flags(without=("target",))
    def comment(
        paths: Annotated[list[Path] | None, typer.Argument(help="Manifests to plan and post (default: post the "
                                                           "markdown plan from --file or stdin).")] = None,
        pr: Annotated[int | None, typer.Option("--pr", "--mr", min=1, help="Pull request number, or a GitLab "
                                               "merge request's IID (default: from GITHUB_REF or "
                                               "CI_MERGE_REQUEST_IID).")] = None,
        provider: Annotated[Provider, typer.Option("--provider", help="github or gitlab (default: gitlab when "
                                                   "GITLAB_CI=true, else github).")] = Provider.auto,
        file: Annotated[Path | None, typer.Option("--file", "-f", help="The markdown plan (default: stdin).")] = None,
        target: Annotated[str | None, typer.Option("--target", help="The target to plan against (with PATHS); one "
                                                   "comment is kept per target.")] = None,
        detailed_exitcode: Annotated[bool, typer.Option("--detailed-exitcode", help="With PATHS: exit 2 when the "
                                                        "plan has changes.")] = False,
        selector: o.SelectorOpt = None, only: o.OnlyOpt = None, changed_since: o.ChangedSinceOpt = None,
        api: Options = Options(),
        no_color: o.NoColorOpt = False, verbose: o.VerboseOpt = False,
    ) -> None:
        """Post the markdown plan as one sticky pull-request comment (or GitLab merge-request note), edited in
        place on later pushes.

        With PATHS the plan is made here, exactly as `reconciler plan -o markdown` makes it, and the
        exit code is plan's (1 for a refused plan, 2 for changes with --detailed-exitcode, 3 for
        invalid manifests: then nothing is posted). GitHub: reads GITHUB_TOKEN, GITHUB_REPOSITORY and
        GITHUB_API_URL (default https://api.github.com). GitLab: reads CI_API_V4_URL, CI_PROJECT_ID,
        CI_MERGE_REQUEST_IID and GITLAB_TOKEN (an access token with the api scope), else CI_JOB_TOKEN.
        """
        setup_logging(verbose)
        code = EXIT_OK
        with exit_codes(no_color=no_color):
            if paths:
                if file is not None:
                    raise UsageError("give manifests to plan (PATHS) or a plan to post (--file), not both")
                from reconciler.engine import render as rendering

                options = o.session_options(paths, api=dataclasses.replace(api, target=target),
                                            selector=selector, only=only, changed_since=changed_since)
                plan = make_plan(Session.open(options))
                text = rendering.render(plan, rendering.Format.markdown)
                code = plan_exit_code(plan, detailed_exitcode=detailed_exitcode)
            elif selector or only or changed_since or api.endpoint or api.token_file or api.config:
                raise UsageError("--selector/--only/--changed-since/--endpoint/--token-file/--config choose what to "
                                 "plan: give the manifests (PATHS) too, or post a plan made earlier with --file")
            else:
                text = _read_plan_text(file)
            _post(text, pr=pr, target=target, provider=provider)
        raise typer.Exit(code)
