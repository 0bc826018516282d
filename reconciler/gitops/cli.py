"""Commands of the GitOps workflows: ``reconciler ci comment`` and ``reconciler watch``.

Thin shells: the pull-request comment lives in :mod:`reconciler.gitops.github`, the watcher's
decisions in :mod:`reconciler.watch`, per-target manifests in
:mod:`reconciler.specs.environments`. Exit codes as in :mod:`reconciler.cli`.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from reconciler.specs.files import read_limited
from reconciler.terminal import EXIT_ERROR, EXIT_OK, stderr_console, stdout_console

__all__ = ["register"]


# what `ci comment` reads: a markdown plan is cut under GitHub's 65,536-character comment limit
_MAX_COMMENT_BYTES = 1024 * 1024


def _fail(message: str) -> typer.Exit:
    stderr_console().print(f"error: {message}", markup=False, style="red")
    return typer.Exit(EXIT_ERROR)


def _comment(pr: int | None, file: Path | None, target: str | None) -> None:
    from reconciler.gitops import github

    number = pr if pr is not None else github.pr_from_environment(os.environ)
    if number is None:
        raise _fail("no pull request number: pass --pr N (GITHUB_REF is not refs/pull/N/...)")
    try:
        if file is not None and str(file) != "-":
            text = read_limited(file, limit=_MAX_COMMENT_BYTES, what="plan to post",
                                hint="post the markdown plan (`reconciler plan -o markdown`), which stays under "
                                     "GitHub's comment limit").decode("utf-8")
        else:
            text = sys.stdin.read(_MAX_COMMENT_BYTES + 1)
            if len(text) > _MAX_COMMENT_BYTES:
                raise _fail(f"the plan on stdin is over {_MAX_COMMENT_BYTES} characters; pipe "
                            "`reconciler plan -o markdown` in, which stays under GitHub's comment limit")
    except OSError as exc:
        raise _fail(f"cannot read the plan {file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise _fail(f"the plan {file} is not UTF-8 text; pass the markdown plan") from None
    if not text.strip():
        raise _fail("the plan is empty; pipe `reconciler plan --output markdown` in, or pass --file PLAN.md")
    try:
        result = github.post_plan_comment(plan_markdown=text, pr=number, target=target)
    except github.GitHubError as exc:
        raise _fail(str(exc)) from None
    where = f": {result.url}" if result.url else ""
    stdout_console().print(f"{result.action} the plan comment on pull request #{number}{where}", markup=False)


def _planner(paths: list[Path], config_path: Path | None, target_name: str | None,
             endpoint: str | None) -> tuple[Any, Any, Path | None, Path | None]:
    """The engine planner for the chosen target, the environment target, the config file and its directory."""
    from reconciler.api import errors
    from reconciler.api.client import LOCAL_DB_URL, resolve_target
    from reconciler.specs import environments, secrets
    from reconciler.specs.config import ConfigError, ProjectConfig, find_config, load_config
    from reconciler.watch import EnginePlanner

    try:
        found = config_path or find_config(paths)
        config = load_config(found) if found else ProjectConfig()
        if target_name is not None:
            env_target: environments.Target | None = environments.resolve_target(config.targets, target_name)
        else:  # the default target: the embedded local service, no variables (a placeholder says --target)
            env_target = environments.default_target(config.targets) if config.targets else None
        target_cfg = config.target(target_name) if target_name else None
        api_target = resolve_target(
            endpoint=endpoint, config_endpoint=target_cfg.endpoint if target_cfg else None,
            config_token=target_cfg.token_from if target_cfg else None, config_name=target_name,
            db_url=os.environ.get("RECONCILER_LOCAL_DB_URL", LOCAL_DB_URL))
    except (ConfigError, environments.TargetError, errors.EndpointError, OSError) as exc:
        raise _fail(str(exc)) from None
    planner = EnginePlanner(target=api_target, scope=config.scope_for(target_name),
                            max_delete_fraction=config.max_delete_fraction,
                            secret_roots=secrets.secret_roots(config_path=found, allowed_dirs=config.secret_dirs,
                                                              paths=paths))
    return planner, env_target, found, found.parent if found else None


def _env_target(config_file: Path, target_name: str | None) -> Any:
    """The target read again from the config, for the watcher; raises ValueError when it cannot be."""
    from reconciler.specs import environments
    from reconciler.specs.config import ConfigError, load_config

    try:
        config = load_config(config_file)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    if target_name is not None:
        return environments.resolve_target(config.targets, target_name)
    return environments.default_target(config.targets) if config.targets else None


def register(app: typer.Typer) -> None:
    """Add ``ci`` (a group) and ``watch`` to the root command."""
    ci = typer.Typer(name="ci", help="Continuous-integration helpers.", no_args_is_help=True)
    app.add_typer(ci, name="ci")

    @ci.command("comment")
    def comment(
        pr: Annotated[int | None, typer.Option("--pr", min=1, help="Pull request number "
                                               "(default: from GITHUB_REF).")] = None,
        file: Annotated[Path | None, typer.Option("--file", "-f", help="The markdown plan (default: stdin).")] = None,
        target: Annotated[str | None, typer.Option("--target", help="Keep one comment per target.")] = None,
    ) -> None:
        """Post the markdown plan as one sticky pull-request comment, edited in place on later pushes.

        Reads GITHUB_TOKEN, GITHUB_REPOSITORY and GITHUB_API_URL (default https://api.github.com).
        """
        _comment(pr, file, target)
        raise typer.Exit(EXIT_OK)

    @app.command("watch")
    def watch(
        paths: Annotated[list[Path] | None, typer.Argument(help="Manifest files or directories "
                                                           "(default: specs/).")] = None,
        apply: Annotated[bool, typer.Option("--apply", help="Apply each valid plan that has changes "
                                            "(never prunes).")] = False,
        debounce: Annotated[int, typer.Option("--debounce", min=10, max=60_000,
                                              help="Wait this many ms for edits to settle.")] = 300,
        config: Annotated[Path | None, typer.Option("--config", help="Project config (default: found "
                                                    "in the paths or their parents).")] = None,
        target: Annotated[str | None, typer.Option("--target", help="A named target from the project config.")] = None,
        endpoint: Annotated[str | None, typer.Option("--endpoint", help="API endpoint (default: "
                                                     "$DATAROBOT_ENDPOINT, else the embedded local service).")] = None,
    ) -> None:
        """Validate and plan on every change, printing only what changed; --apply applies too.

        An invalid edit prints its errors and keeps the last good state. Ctrl-C stops (exit 0).
        """
        from reconciler.watch import watch_loop

        chosen = paths or [Path("specs")]
        missing = [str(p) for p in chosen if not p.exists()]
        if missing:
            raise _fail(f"no such file or directory: {', '.join(missing)}")
        planner, env_target, config_file, root = _planner(chosen, config, target, endpoint)
        out = stdout_console()

        def emit(line: str) -> None:
            out.print(line, markup=False)
            sys.stdout.flush()

        extra = [config_file] if config_file else []
        if env_target is not None and root is not None:
            extra.append(env_target.overlays_dir(root=root))
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C while planning: a clean stop too
            watch_loop(paths=chosen, emit=emit, planner=planner, apply=apply, debounce_ms=debounce,
                       target=env_target, overlays_root=root, extra_watch=extra,
                       reload_target=(lambda: _env_target(config_file, target)) if config_file else None,
                       secret_roots=planner.secret_roots)
        emit("stopped")
        raise typer.Exit(EXIT_OK)
