"""Commands of the engine: ``plan``, ``apply``, ``diff``, ``export``, ``run``. A thin shell over
the pure pipeline (load → validate → model → pair/diff/plan → render) and the two I/O edges
(the API client, apply). Machine output on stdout, logs and progress on stderr; exit codes as in
:mod:`reconciler.cli` (0 ok/no changes, 1 error, 2 changes with --detailed-exitcode, 3 invalid).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import difflib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import click
import typer
import yaml

from reconciler.__about__ import __version__
from reconciler.api import errors
from reconciler.api.client import (
    DEFAULT_CONCURRENCY,
    LOCAL_DB_URL,
    Client,
    Target,
    open_client,
    resolve_target,
)
from reconciler.api.payload import Desired, desired_from_manifest, manifest_from_live
from reconciler.contract import validators
from reconciler.display import printable, printable_lines
from reconciler.engine import apply as applying
from reconciler.engine import plan as plans
from reconciler.engine import render as rendering
from reconciler.gitops import select as selecting
from reconciler.specs import environments, secrets
from reconciler.specs.config import (
    SEED_COLLECTIONS,
    ConfigError,
    ProjectConfig,
    Scope,
    find_config,
    load_config,
)
from reconciler.specs.files import read_limited
from reconciler.specs.load import LoadedDocument
from reconciler.specs.model import Manifest
from reconciler.terminal import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_INVALID,
    EXIT_OK,
    stderr_console,
    stdout_console,
)

__all__ = ["register"]

T = TypeVar("T")
# a prompt raises typer's Abort (its own copy of click) or click's, by typer's version
_ABORT = (typer.Abort, click.exceptions.Abort)
log = logging.getLogger("reconciler")

PathsArg = Annotated[list[Path] | None, typer.Argument(help="Manifest files or directories (default: specs/).")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="Project config (default: reconciler.yaml "
                                                "found in the paths or their parents).")]
TargetOpt = Annotated[str | None, typer.Option("--target", help="A named target from the project config.")]
EndpointOpt = Annotated[str | None, typer.Option("--endpoint", help="API endpoint (default: $DATAROBOT_ENDPOINT, "
                                                 "else the embedded local service).")]
TokenFileOpt = Annotated[Path | None, typer.Option("--token-file", help="File holding the API token "
                                                   "(default: $DATAROBOT_API_TOKEN).")]
AllowHttpOpt = Annotated[bool, typer.Option("--allow-http", help="Allow a plain-http remote endpoint.")]
ConcurrencyOpt = Annotated[int, typer.Option("--concurrency", min=1, max=64, help="Requests in flight.")]
NoColorOpt = Annotated[bool, typer.Option("--no-color", help="No colour, even on a terminal.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Log requests and retries to stderr.")]
SelectorOpt = Annotated[list[str] | None, typer.Option("--selector", "-l", metavar="LABEL=VALUE",
                                                       help="Only manifests with this label (repeatable; "
                                                       "LABEL!=VALUE excludes).")]
OnlyOpt = Annotated[list[str] | None, typer.Option("--only", metavar="NAME",
                                                   help="Only this definition (repeatable).")]


class ListFormat(StrEnum):
    table = "table"
    json = "json"


def schedule_text(schedule: Any) -> str:
    """The API's five lists as one cron-like line (`0 2 * * 1,2`), for people."""
    if not isinstance(schedule, dict):
        return "-"
    fields = ("minute", "hour", "dayOfMonth", "month", "dayOfWeek")
    return " ".join(",".join(str(v) for v in schedule.get(f) or ["*"]) for f in fields)


def compact_time(value: Any) -> str:
    """An API timestamp (``2026-12-02T02:00:00.000000Z``) as ``2026-12-02 02:00`` in UTC; seconds
    and fractions are shown only when they are not zero, so nothing is lost."""
    if not value:
        return "-"
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    if when.microsecond:
        return when.strftime("%Y-%m-%d %H:%M:%S.%f")
    return when.strftime("%Y-%m-%d %H:%M:%S" if when.second else "%Y-%m-%d %H:%M")


@dataclass(frozen=True, kw_only=True)
class _Context:
    target: Target
    config: ProjectConfig
    scope: Scope | None
    concurrency: int
    target_name: str | None = None
    config_dir: Path | None = None
    secret_roots: tuple[str, ...] = ()  # where secret files may resolve (reconciler.specs.secrets)


def _fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    stderr_console().print(printable_lines(f"error: {message}"), markup=False, style="red")
    return typer.Exit(code)


def _require_paths(paths: Sequence[Path], *, given: bool) -> None:
    """A path that does not exist is a usage error (exit 1), not an invalid manifest (exit 3):
    nothing was validated. ``given``: the user named the paths (else it is the default specs/)."""
    missing = [str(p) for p in paths if not os.path.lexists(p)]
    if missing:
        default = "" if given else " (the default when no path is given; pass the manifests' files or directories)"
        raise _fail(f"no such file or directory: {', '.join(missing)}{default}")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not verbose:
        logging.getLogger("httpx").setLevel(logging.WARNING)


def _context(*, paths: Sequence[Path], config_path: Path | None, target: str | None, endpoint: str | None,
             token_file: Path | None, allow_http: bool, concurrency: int) -> _Context:
    found: Path | None = None
    try:
        found = config_path or find_config(paths)
        config = load_config(found) if found else ProjectConfig()
        target_cfg = config.target(target) if target else None
        resolved = resolve_target(
            endpoint=endpoint, token_file=token_file,
            config_endpoint=target_cfg.endpoint if target_cfg else None,
            config_token=target_cfg.token_from if target_cfg else None, config_name=target,
            allow_http=allow_http, db_url=os.environ.get("RECONCILER_LOCAL_DB_URL", LOCAL_DB_URL))
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    except errors.EndpointError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        source = (f"the tokenFrom file of target {target!r} in {found}" if target and not token_file
                  else "the --token-file")
        raise _fail(f"cannot read {source}: {exc.filename}: {exc.strerror} (a relative path is relative to the "
                    "working directory)") from None
    return _Context(target=resolved, config=config, scope=config.scope_for(target), concurrency=concurrency,
                    target_name=target, config_dir=Path(found).parent if found else None,
                    secret_roots=secrets.secret_roots(config_path=found, allowed_dirs=config.secret_dirs, paths=paths))


def _load_desired(paths: Sequence[Path], ctx: _Context) -> list[Desired]:
    """Validate every manifest first; any invalid one stops here with exit 3 (nothing written)."""
    return [desired_from_manifest(Manifest.from_document(doc), secret_roots=ctx.secret_roots)
            for doc in _load_documents(paths, ctx)]


def _load_documents(paths: Sequence[Path], ctx: _Context, *, json_report: bool = False) -> list[LoadedDocument]:
    """The valid manifests as the target sees them; any invalid one stops here with exit 3.

    With ``json_report`` (``plan -o json``) the validation report also goes to stdout, as
    ``validate -o json`` prints it, so that a pipeline parsing stdout gets JSON either way."""
    try:
        report = environments.validate_for(paths, targets=ctx.config.targets, target_name=ctx.target_name,
                                           overlays_root=ctx.config_dir, secret_roots=ctx.secret_roots)
    except environments.TargetError as exc:
        raise _fail(str(exc)) from None
    err = stderr_console()
    for issue in report.issues:
        err.print(issue.format(), markup=False, style="yellow" if issue.severity == "warning" else "red")
    if not report.ok:
        err.print(f"INVALID: {len(report.errors)} error(s) in {report.files} file(s); nothing was planned or applied",
                  markup=False, style="bold red")
        if json_report:
            sys.stdout.write(json.dumps(report.as_json(), indent=2) + "\n")
        raise typer.Exit(EXIT_INVALID)
    return list(report.documents)


@dataclass(frozen=True, kw_only=True)
class _Manifests:
    """The valid manifests of a plan or apply run, and the selection (``--selector``/``--only``/
    ``--changed-since``) that narrows it, if any."""

    documents: Sequence[LoadedDocument] = ()
    desired: Sequence[Desired] = ()
    selection: selecting.Selection | None = None

    async def plan(self, client: Client, **options: Any) -> plans.Plan:
        if self.selection is not None:
            return await selecting.plan_against(client, documents=self.documents, desired=self.desired,
                                                selection=self.selection, **options)
        return await applying.plan_against(client, desired=self.desired, **options)


def _load_manifests(paths: Sequence[Path], ctx: _Context, *, selector: Sequence[str] | None,
                    only: Sequence[str] | None, changed_since: str | None, json_report: bool = False) -> _Manifests:
    """Validate every manifest (exit 3 on any invalid one), then resolve the selection."""
    documents = _load_documents(paths, ctx, json_report=json_report)
    desired = [desired_from_manifest(Manifest.from_document(doc), secret_roots=ctx.secret_roots) for doc in documents]
    try:
        selection = selecting.selection_for(selector=selector, only=only, changed_since_ref=changed_since,
                                            paths=paths, config=ctx.config, target_name=ctx.target_name,
                                            config_dir=ctx.config_dir, desired=desired)
    except (selecting.SelectionError, environments.TargetError) as exc:
        raise _fail(str(exc)) from None
    return _Manifests(documents=documents, desired=desired, selection=selection)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except errors.APIError as exc:
        raise _fail(str(exc)) from None


def _approved(question: str) -> bool:
    """Ask on the terminal; only `yes` approves. Ctrl-C or Ctrl-D at the prompt is a no.

    The prompt blocks inside ``asyncio.run``, whose SIGINT handler only cancels the main task, and
    that task cannot run while ``input()`` blocks: Ctrl-C would be swallowed and the prompt would
    hang. Python's own handler is put back for the prompt, so Ctrl-C interrupts it."""
    restore = None
    if threading.current_thread() is threading.main_thread():
        restore = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        answer = typer.prompt(question, default="", show_default=False)
    except _ABORT:  # click turns Ctrl-C and Ctrl-D at a prompt into Abort
        sys.stderr.write("\n")
        return False
    finally:
        if restore is not None:
            signal.signal(signal.SIGINT, restore)
    return str(answer).strip() == "yes"


def _same_text(path: Path, text: str) -> bool:
    """Whether the regular file at ``path`` holds exactly ``text`` (read no further than that)."""
    encoded = text.encode("utf-8")
    try:
        return read_limited(path, limit=len(encoded), what="file") == encoded
    except OSError:  # over the length, not a regular file, unreadable: not the same
        return False


def _color(no_color: bool) -> bool:
    return not no_color and sys.stdout.isatty() and "NO_COLOR" not in os.environ


async def seed_local_service(client: Client, seed: Mapping[str, Sequence[Mapping[str, Any]]]) -> int:
    """Create the project's seed resources that the embedded service lacks; returns how many.

    Only ever called for the embedded local service: a remote installation owns its deployments.
    """
    created = 0
    for kind, items in seed.items():
        collection = SEED_COLLECTIONS[kind]
        for item in items:
            try:
                await client.request("GET", client.url(f"{collection}{item['id']}/"))
            except errors.APINotFoundError:
                await client.request("POST", client.url(collection), json=dict(item))
                created += 1
    return created


@contextlib.asynccontextmanager
async def _embedded_runner(client: Client, *, enabled: bool) -> AsyncIterator[None]:
    """The embedded service's job runner, for as long as a command waits on a job. In-process the
    service has no lifespan (no ``reconciler serve``), so without this a queued job never starts."""
    app = client.local_app
    if not enabled or app is None:
        yield
        return
    from reconciler.extras import require

    require("runner", "running a job in the embedded service (run --wait)")
    from reconciler.service.runner.pool import JobRunner

    runner = JobRunner(app.state.store, app.state.settings)
    app.state.runner = runner
    await runner.start()
    try:
        yield
    finally:
        await runner.stop()
        app.state.runner = None


async def _with_client(ctx: _Context, work: Any) -> Any:
    async with open_client(ctx.target, concurrency=ctx.concurrency) as client:
        if ctx.target.local and ctx.config.local_seed:
            created = await seed_local_service(client, ctx.config.local_seed)
            if created:
                log.info("seeded the embedded local service with %d resource(s) from %s", created, ctx.config.path)
        return await work(client)


def _plan_options(ctx: _Context, *, prune: bool, force: bool, destroy: bool) -> dict[str, Any]:
    if (prune or destroy) and ctx.scope is None:
        raise _fail("--prune/--destroy need an ownership scope: add `scope: {namePrefix: ...}` to reconciler.yaml")
    return {"scope": ctx.scope, "prune": prune, "force": force, "destroy": destroy,
            "max_delete_fraction": ctx.config.max_delete_fraction}


def _split_apply_args(args: Sequence[Path]) -> tuple[Path | None, list[Path]]:
    """`apply PLANFILE` or `apply PATHS...`: a single path that is not a directory and not YAML is
    a saved plan (a FIFO or a device too: reading it is then refused, never attempted as a manifest)."""
    if len(args) == 1 and os.path.lexists(args[0]) and not args[0].is_dir() and args[0].suffix.lower() not in (
            ".yaml", ".yml"):
        return args[0], []
    return None, list(args)


# A saved plan that creates 10,000 definitions is about 50 MB; a file far beyond is not one.
MAX_PLAN_BYTES = 256 * 1024 * 1024


def _no_constant(text: str) -> Any:
    raise ValueError(f"{text} is not a JSON value")


def _read_plan(path: Path) -> plans.Plan:
    """A saved plan: a regular file (bounded read), JSON, this format with a digest that matches
    its content (an edited plan is refused), then checked against schemas/plan.schema.json, so
    that a damaged file is refused with the field at fault, before any request."""
    again = f"make a fresh one with `reconciler plan --out {path}`"
    try:
        data = json.loads(read_limited(path, limit=MAX_PLAN_BYTES, what="saved plan").decode("utf-8"),
                          parse_constant=_no_constant)  # NaN and Infinity are Python's, not JSON's
    except OSError as exc:
        raise _fail(f"cannot read the plan {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise _fail(f"{path} is not a saved plan: not JSON{where}. apply takes a plan saved by `reconciler plan "
                    "--out FILE`, or manifests: *.yaml/*.yml files and directories") from None
    if not isinstance(data, dict) or "format_version" not in data:
        raise _fail(f"{path} is not a saved plan (no format_version); {again}")
    if str(data["format_version"]).split(".")[0] != plans.FORMAT_VERSION.split(".")[0]:
        raise _fail(f"{path}: plan format_version {data['format_version']!r} is not supported (this reconciler "
                    f"reads {plans.FORMAT_VERSION}); {again}")
    try:
        plans.check_digest(data)
    except ValueError as exc:
        raise _fail(f"{path}: {exc}; nothing was applied; {again}") from None
    problems = sorted(validators.validator("plan").iter_errors(data), key=lambda e: list(e.absolute_path))
    if problems:
        first = problems[0]
        field = "/".join(str(part) for part in first.absolute_path) or "(top level)"
        raise _fail(f"{path} is not a valid saved plan: {field}: {first.message}; {again}")
    try:
        return plans.from_dict(data)
    except (ValueError, KeyError) as exc:
        raise _fail(f"{path}: {exc}; {again}") from None


def _plan_target(ctx: _Context) -> plans.PlanTarget:
    """Where this command's plan is computed (recorded in saved plans; never the token)."""
    return plans.PlanTarget(name=ctx.target_name, endpoint=ctx.target.endpoint,
                            local_db=ctx.target.db_url if ctx.target.endpoint is None else None)


def _write_plan(plan: plans.Plan, out: Path) -> None:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(rendering.render_json(plan, version=__version__), encoding="utf-8")
    except OSError as exc:
        raise _fail(f"cannot save the plan to {out}: {exc.strerror}") from None


def _discard_saved_plan(out: Path) -> bool:
    """Before planning with ``--out``: remove a plan an earlier run saved at ``out``, so that when
    this run writes none (invalid manifests, a refused plan, an API error) no stale plan is left
    for a pipeline to upload and apply. Only a saved plan is removed (a JSON file with a
    format_version); any other file there is left alone. True when one was removed."""
    if out.is_dir():
        raise _fail(f"--out {out} is a directory; give a file name, e.g. --out {out / 'plan.json'}")
    if not out.is_file():
        return False
    try:
        data = json.loads(read_limited(out, limit=MAX_PLAN_BYTES, what="saved plan").decode("utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(data, dict) or "format_version" not in data:
        return False
    try:
        out.unlink()
    except OSError as exc:
        raise _fail(f"cannot remove the earlier plan {out}: {exc.strerror}") from None
    return True


def register(app: typer.Typer) -> None:
    """Add the engine's commands to the root command."""

    @app.command()
    def plan(
        paths: PathsArg = None,
        prune: Annotated[bool, typer.Option("--prune", help="Delete live definitions in scope with no manifest.")] = False,
        force: Annotated[bool, typer.Option("--force", help="Allow deleting more than maxDeleteFraction.")] = False,
        destroy: Annotated[bool, typer.Option("--destroy", help="Plan deleting every managed definition.")] = False,
        detailed_exitcode: Annotated[bool, typer.Option("--detailed-exitcode",
                                                        help="Exit 2 when the plan has changes.")] = False,
        output: Annotated[rendering.Format, typer.Option("--output", "-o", help="text, json or markdown.")] = rendering.Format.text,
        out: Annotated[Path | None, typer.Option("--out", help="Save the plan (JSON, no secrets) for apply.")] = None,
        selector: SelectorOpt = None, only: OnlyOpt = None,
        changed_since: Annotated[str | None, typer.Option(
            "--changed-since", metavar="REF", help="Only manifests changed (or removed) since this git ref's "
            "merge base with HEAD.")] = None,
        config: ConfigOpt = None, target: TargetOpt = None, endpoint: EndpointOpt = None,
        token_file: TokenFileOpt = None, allow_http: AllowHttpOpt = False,
        concurrency: ConcurrencyOpt = DEFAULT_CONCURRENCY, no_color: NoColorOpt = False, verbose: VerboseOpt = False,
    ) -> None:
        """Show what apply would change: live definitions against the manifests.

        Exit 0: no changes, or changes without --detailed-exitcode; 2: changes, with
        --detailed-exitcode; 3: invalid manifests (nothing planned); 1: an error.
        """
        _setup_logging(verbose)
        targets = paths or [Path("specs")]
        _require_paths(targets, given=bool(paths))
        # an earlier plan at --out goes first: this run leaves its own plan there, or none
        removed = out is not None and _discard_saved_plan(out)
        written = False
        try:
            ctx = _context(paths=targets, config_path=config, target=target, endpoint=endpoint,
                           token_file=token_file, allow_http=allow_http, concurrency=concurrency)
            manifests = _load_manifests(targets, ctx, selector=selector, only=only, changed_since=changed_since,
                                        json_report=output is rendering.Format.json)
            options = _plan_options(ctx, prune=prune, force=force, destroy=destroy)

            async def work(client: Client) -> plans.Plan:
                return await manifests.plan(client, **options)

            result: plans.Plan = dataclasses.replace(_run(_with_client(ctx, work)), target=_plan_target(ctx))
            sys.stdout.write(rendering.render(result, output, color=_color(no_color), version=__version__))
            if out is not None and result.errored:
                stderr_console().print(f"No plan was saved to {out}: the plan was refused, so there is nothing to "
                                       "apply.", markup=False)
            elif out is not None:
                _write_plan(result, out)
                written = True
                stderr_console().print(f"Saved the plan to {out}; apply it with `reconciler apply {out}`.",
                                       markup=False)
        finally:
            if removed and not written:
                stderr_console().print(f"Removed the plan an earlier run saved to {out}, so that it is not taken "
                                       "for this one.", markup=False)
        if result.errored:
            raise typer.Exit(EXIT_ERROR)
        raise typer.Exit(EXIT_CHANGES if detailed_exitcode and result.has_changes else EXIT_OK)

    @app.command()
    def apply(
        args: Annotated[list[Path] | None, typer.Argument(
            metavar="[PLANFILE | PATHS...]",
            help="A plan saved by `reconciler plan --out`, or manifest files/directories (default: specs/).")] = None,
        paths: Annotated[list[Path] | None, typer.Option("--path", "-p", help="Manifest files or directories "
                                                         "(default: specs/).")] = None,
        auto_approve: Annotated[bool, typer.Option("--auto-approve", help="Apply without asking.")] = False,
        prune: Annotated[bool, typer.Option("--prune", help="Delete live definitions in scope with no manifest.")] = False,
        force: Annotated[bool, typer.Option("--force", help="Allow deleting more than maxDeleteFraction.")] = False,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Walk the plan without writing.")] = False,
        selector: SelectorOpt = None, only: OnlyOpt = None,
        config: ConfigOpt = None, target: TargetOpt = None, endpoint: EndpointOpt = None,
        token_file: TokenFileOpt = None, allow_http: AllowHttpOpt = False,
        concurrency: ConcurrencyOpt = DEFAULT_CONCURRENCY, no_color: NoColorOpt = False, verbose: VerboseOpt = False,
    ) -> None:
        """Make the live definitions match the manifests (or carry out a saved plan).

        Asks for `yes` on a terminal unless --auto-approve; without a terminal, --auto-approve or a
        saved plan is needed. Exit 0: applied, or no changes; 3: invalid manifests (nothing
        written); 1: an error, a refused or stale plan, a cancelled prompt, or a failed action.
        """
        _setup_logging(verbose)
        planfile, given = _split_apply_args(args or [])
        targets = [*given, *(paths or [])] or [Path("specs")]
        if planfile is None:
            _require_paths(targets, given=bool(given or paths))
        ctx = _context(paths=[planfile.parent] if planfile else targets, config_path=config, target=target,
                       endpoint=endpoint, token_file=token_file, allow_http=allow_http, concurrency=concurrency)
        saved: plans.Plan | None = None
        manifests = _Manifests()
        if planfile is not None and (selector or only):
            raise _fail("--selector/--only choose manifests; a saved plan is applied as it is (select when planning)")
        if planfile is not None:
            saved = _read_plan(planfile)
            here = _plan_target(ctx)
            if saved.target is not None and not saved.target.same_place(here):
                raise _fail(f"the plan {planfile} was made for {saved.target.describe()}, but this apply would go to "
                            f"{here.describe()}; pass the same --target/--endpoint, or make a new plan for this target")
        else:
            manifests = _load_manifests(targets, ctx, selector=selector, only=only, changed_since=None)
        options = _plan_options(ctx, prune=prune, force=force, destroy=False) if saved is None else {}
        out, err = stdout_console(no_color), stderr_console(no_color)
        color = _color(no_color)

        async def work(client: Client) -> int:
            if saved is not None:
                stale = await applying.stale_reasons(saved, client)
                if stale:
                    raise applying.StalePlanError(stale)
                current = saved
            else:
                current = await manifests.plan(client, **options)
            sys.stdout.write(rendering.render_text(current, color=color))
            sys.stdout.flush()
            if current.errored:
                return EXIT_ERROR
            if not current.has_changes:
                return EXIT_OK
            if not auto_approve and saved is None:
                if not sys.stdin.isatty():
                    err.print("error: no terminal to ask for approval; pass --auto-approve (or apply a saved plan)",
                              markup=False, style="red")
                    return EXIT_ERROR
                if not _approved("Apply these changes? Only 'yes' is accepted"):
                    err.print("Apply cancelled; nothing was changed.", markup=False)
                    return EXIT_ERROR

            def report(result: applying.ActionResult) -> None:
                style = {"applied": "green", "failed": "red", "skipped": "yellow"}[result.outcome.value]
                out.print(result.line(), markup=False, style=style)

            try:
                outcome = await applying.apply_plan(current, client=client, on_result=report, dry_run=dry_run)
            except applying.ApplyInterrupted as exc:  # Ctrl-C: say what was and was not applied, then exit 130
                out.print(exc.result.summary, markup=False, style="bold red")
                raise
            out.print(outcome.summary, markup=False, style="bold" if outcome.ok else "bold red")
            return EXIT_OK if outcome.ok else EXIT_ERROR

        try:
            code = _run(_with_client(ctx, work))
        except applying.StalePlanError as exc:
            raise _fail(f"{exc}. Run `reconciler plan` again.") from None
        except applying.PlanRefusedError as exc:
            raise _fail(str(exc)) from None
        raise typer.Exit(code)

    @app.command()
    def diff(
        name: Annotated[str | None, typer.Argument(help="Definition name (default: every changed one).")] = None,
        paths: Annotated[list[Path] | None, typer.Option("--path", "-p", help="Manifest files or directories.")] = None,
        config: ConfigOpt = None, target: TargetOpt = None, endpoint: EndpointOpt = None,
        token_file: TokenFileOpt = None, allow_http: AllowHttpOpt = False, no_color: NoColorOpt = False,
        verbose: VerboseOpt = False,
    ) -> None:
        """Live against desired, field by field.

        Exit 0 (with or without differences: `plan --detailed-exitcode` tells them apart);
        3: invalid manifests; 1: an error.
        """
        _setup_logging(verbose)
        targets = paths or [Path("specs")]
        _require_paths(targets, given=bool(paths))
        ctx = _context(paths=targets, config_path=config, target=target, endpoint=endpoint, token_file=token_file,
                       allow_http=allow_http, concurrency=DEFAULT_CONCURRENCY)
        desired = _load_desired(targets, ctx)
        if name is not None:
            declared = sorted(d.name for d in desired)
            desired = [d for d in desired if d.name == name]
            if not desired:
                close = difflib.get_close_matches(name, declared, n=3, cutoff=0.6)
                where = ", ".join(str(t) for t in targets)
                hint = (f"did you mean {' or '.join(repr(c) for c in close)}?" if close else
                        f"{len(declared)} are declared there; `reconciler diff` with no name shows every "
                        "difference, --path reads other manifests")
                raise _fail(f"no manifest in {where} declares a definition named {name!r}; {hint}")

        async def work(client: Client) -> plans.Plan:
            return await applying.plan_against(client, desired=desired, scope=ctx.scope)

        result: plans.Plan = _run(_with_client(ctx, work))
        color = _color(no_color)
        shown = [a for a in result.actions if a.kind is not plans.ActionKind.noop or name is not None]
        lines: list[str] = []
        for action in shown:
            if action.kind is plans.ActionKind.noop:
                lines.append(printable(f"  {action.name}: live matches the manifest"))
                continue
            for i, line in enumerate(rendering.render_action(action)):
                lines.append(("" if i == 0 else "  ") + line)
        if not shown:
            lines.append("No differences.")
        text = "\n".join(lines) + "\n"
        if color:
            text = "\n".join(rendering._paint(line, True) for line in text.splitlines()) + "\n"
        sys.stdout.write(text)
        raise typer.Exit(EXIT_OK)

    @app.command()
    def export(
        search: Annotated[str | None, typer.Option("--search", help="Only definitions whose name contains this.")] = None,
        out_dir: Annotated[Path | None, typer.Option("--out", help="Directory for one manifest file each "
                                                     "(default: all on stdout).")] = None,
        force: Annotated[bool, typer.Option("--force", help="With --out: overwrite existing files that "
                                            "differ.")] = False,
        config: ConfigOpt = None, target: TargetOpt = None, endpoint: EndpointOpt = None,
        token_file: TokenFileOpt = None, allow_http: AllowHttpOpt = False, verbose: VerboseOpt = False,
    ) -> None:
        """Write manifests from live definitions (plan on them shows no changes).

        With --out, an existing file that differs from what would be written is never overwritten
        without --force: nothing is written and the files are named.

        Exit 0 on success, 1 on an error.
        """
        _setup_logging(verbose)
        ctx = _context(paths=[out_dir or Path(".")], config_path=config, target=target, endpoint=endpoint,
                       token_file=token_file, allow_http=allow_http, concurrency=DEFAULT_CONCURRENCY)

        async def work(client: Client) -> list[dict[str, Any]]:
            return await client.list_definitions(search_name=search)

        items: list[dict[str, Any]] = _run(_with_client(ctx, work))
        docs, used = [], set()
        for item in sorted(items, key=lambda i: (str(i.get("name")), str(i.get("id")))):
            doc = manifest_from_live(item)
            label = doc["metadata"]["name"]
            n = 2
            while doc["metadata"]["name"] in used:
                doc["metadata"]["name"] = f"{label[:58]}-{n}"
                doc["spec"].setdefault("name", str(item.get("name")))
                n += 1
            used.add(doc["metadata"]["name"])
            if not validators.fast_validator("manifest").is_valid(doc):
                stderr_console().print(f"warning: {item.get('name')!r} [id {item.get('id')}] exports to a manifest "
                                       "the schema rejects; run `reconciler validate` on it", markup=False)
            docs.append(doc)
        if out_dir is None:
            sys.stdout.write(yaml.safe_dump_all(docs, sort_keys=False, explicit_start=True) if docs else "")
        else:
            if out_dir.exists() and not out_dir.is_dir():
                raise _fail(f"--out {out_dir} is a file; give a directory (it is created if missing)")
            files = {out_dir / f"{doc['metadata']['name']}.yaml": yaml.safe_dump(doc, sort_keys=False) for doc in docs}
            special = [str(path) for path in files if os.path.lexists(path) and not path.is_file()]
            if special:  # a FIFO there would block the write; a device or a directory is no manifest
                raise _fail(f"export would write over something that is not a regular file: {', '.join(special[:5])}; "
                            "nothing was written. Export into an empty directory")
            clobbered = [str(path) for path, text in files.items() if path.exists() and not _same_text(path, text)]
            if clobbered and not force:
                shown = ", ".join(clobbered[:5]) + (f" and {len(clobbered) - 5} more" if len(clobbered) > 5 else "")
                raise _fail(f"export would overwrite {len(clobbered)} existing file(s) that differ: {shown}; "
                            "nothing was written. Export into an empty directory, or pass --force to overwrite them")
            try:
                out_dir.mkdir(parents=True, exist_ok=True)
                for path, text in files.items():
                    path.write_text(text, encoding="utf-8")
            except OSError as exc:
                raise _fail(f"cannot write {exc.filename}: {exc.strerror}") from None
            stderr_console().print(f"Wrote {len(docs)} manifest(s) to {out_dir}"
                                   + (f" ({len(clobbered)} overwritten)" if clobbered else ""), markup=False)
        raise typer.Exit(EXIT_OK)

    @app.command("list")
    def list_command(
        search: Annotated[str | None, typer.Option("--search", help="Only definitions whose name contains this.")] = None,
        output: Annotated[ListFormat, typer.Option("--output", "-o", help="table or json.")] = ListFormat.table,
        config: ConfigOpt = None, target: TargetOpt = None, endpoint: EndpointOpt = None,
        token_file: TokenFileOpt = None, allow_http: AllowHttpOpt = False, no_color: NoColorOpt = False,
        verbose: VerboseOpt = False,
    ) -> None:
        """List the live definitions: id, enabled, schedule, next run, last job status, ownership.

        Exit 0 on success, 1 on an error.
        """
        _setup_logging(verbose)
        ctx = _context(paths=[Path("specs") if Path("specs").is_dir() else Path(".")], config_path=config,
                       target=target, endpoint=endpoint, token_file=token_file, allow_http=allow_http,
                       concurrency=DEFAULT_CONCURRENCY)

        async def work(client: Client) -> list[dict[str, Any]]:
            return await client.list_definitions(search_name=search)

        items: list[dict[str, Any]] = sorted(_run(_with_client(ctx, work)), key=lambda i: str(i.get("name")))
        if output is ListFormat.json:
            keys = ("id", "name", "enabled", "schedule", "nextScheduledRunTime", "lastStartedJobStatus")
            sys.stdout.write(json.dumps([{k: i.get(k) for k in keys} for i in items], indent=2) + "\n")
            raise typer.Exit(EXIT_OK)
        from rich import box
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"{len(items)} live definition(s) on {ctx.target.describe()}", title_justify="left",
                      box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        # ids, names and times never wrap; only the schedule may (at its spaces)
        for column in ("name", "id", "enabled", "schedule (UTC)", "next run (UTC)", "last job", "owned"):
            table.add_column(column, no_wrap=column != "schedule (UTC)", overflow="fold")
        rows = []
        for item in items:
            name = str(item.get("name"))
            owned = "yes" if ctx.scope is not None and ctx.scope.contains(name) else ("-" if ctx.scope is None else "no")
            # every cell comes from the API: printed escaped, so no name can draw a fake row
            rows.append(tuple(printable(cell) for cell in (
                name, str(item.get("id")), "yes" if item.get("enabled") else "no",
                schedule_text(item.get("schedule")), compact_time(item.get("nextScheduledRunTime")),
                str(item.get("lastStartedJobStatus") or "-"), owned)))
        for row in rows:
            table.add_row(*row)
        console = stdout_console(no_color)
        needed = Console(width=100_000).measure(table).maximum
        if not console.is_terminal:  # a pipe or a CI log has no width: as wide as the rows, nothing folded
            console = Console(width=max(needed, 80), no_color=no_color, highlight=False, soft_wrap=True)
        elif needed > console.width:  # a narrow terminal: one short block per definition, nothing cut
            console.print(table.title, style="italic", markup=False)
            for name, id_, enabled, schedule, next_run, last_job, owned in rows:
                console.print(f"{name}\n  id {id_}   enabled {enabled}   owned {owned}\n"
                              f"  schedule {schedule}   next run {next_run}{' UTC' if next_run != '-' else ''}"
                              f"   last job {last_job}",
                              markup=False, soft_wrap=False)
            raise typer.Exit(EXIT_OK)
        console.print(table)
        raise typer.Exit(EXIT_OK)

    @app.command("run")
    def run_command(
        name: Annotated[str, typer.Argument(help="Definition name.")],
        wait: Annotated[bool, typer.Option("--wait", help="Wait until the job finishes; exit 1 unless it "
                                           "COMPLETED.")] = False,
        timeout: Annotated[float, typer.Option("--timeout", min=1, help="With --wait: give up after this many "
                                               "seconds (exit 1; the job keeps running).")] = 3600.0,
        config: ConfigOpt = None, target: TargetOpt = None, endpoint: EndpointOpt = None,
        token_file: TokenFileOpt = None, allow_http: AllowHttpOpt = False, verbose: VerboseOpt = False,
    ) -> None:
        """Start one job from a definition now; print its id and status (stdout: `JOB_ID STATUS`).

        Exit 0 when the job started (with --wait: when it COMPLETED); 1 otherwise.
        """
        _setup_logging(verbose)
        ctx = _context(paths=[Path("specs") if Path("specs").is_dir() else Path(".")], config_path=config,
                       target=target, endpoint=endpoint, token_file=token_file, allow_http=allow_http,
                       concurrency=DEFAULT_CONCURRENCY)
        err = stderr_console()

        def progress(job: dict[str, Any]) -> None:
            done = job.get("percentageCompleted")
            err.print(f"job {job.get('id')}: {job.get('status')}"
                      + (f" ({done:.0f}%)" if isinstance(done, (int, float)) else ""), markup=False)

        async def work(client: Client) -> dict[str, Any] | None:
            found = await client.find_by_name(name)
            if found is None:
                return None
            async with _embedded_runner(client, enabled=wait):
                job = await client.run_definition(str(found["id"]))
                sys.stdout.write(f"{job.get('id')} {job.get('status')}\n")
                sys.stdout.flush()
                if wait:
                    job = await client.wait_for_job(str(job["id"]), timeout=timeout, poll=0.5, on_status=progress)
                    sys.stdout.write(f"{job.get('id')} {job.get('status')}\n")
                elif client.local_app is not None:
                    err.print("note: the embedded service runs jobs only while a command waits: pass --wait, or "
                              "run `reconciler serve` (it picks up queued jobs)", markup=False)
            return job

        job = _run(_with_client(ctx, work))
        if job is None:
            raise _fail(f"no live definition named {name!r}; `reconciler list` shows the live ones")
        status = job.get("status")
        if status in ("FAILED", "ABORTED"):
            raise _fail(f"job {job.get('id')} {status}: {job.get('statusDetails') or 'no details given'}")
        if wait and status != "COMPLETED":
            raise _fail(f"job {job.get('id')} is still {status} after {timeout:g}s; it keeps running "
                        "(`reconciler run` again would start another)")
        raise typer.Exit(EXIT_OK)

