"""The one road from flags to a plan and its apply, shared by every entry point.

Why: the CLI commands, ``watch``, ``ci comment`` and the operator used to assemble the pipeline
each on their own (context, seeding, selection, guards), and the copies drifted: a flag one had,
another lacked; a guard ran twice. Now each builds :class:`Options` from its flags and goes::

    Session.open(options)      one precedence for where requests go (flags > the chosen target of
                               reconciler.yaml > the environment > the embedded local service);
                               the project config is read once
    session.load()             validate every manifest (InvalidManifests carries the report),
                               then the selection (--selector/--only/--changed-since)
    session.client()           the API client; the embedded service is seeded from the config
    session.plan(client, m)    live fetched once, engine.plan with the selection and every guard
    session.read_saved(path)   a saved plan: format, digest, schema, and made for this place
    session.check_fresh(c, p)  refuses a saved plan the live state moved away from
    session.apply(client, p)   the window checked, engine.apply_plan, the channels told
    session.embedded_runner()  the in-process service's job runner while a command waits

The operator opens its session once at start from its own configuration (``Session.assemble``,
the constructor :meth:`Session.open` ends in too) and goes through the same steps for one
resource: ``Session.steps`` (:mod:`reconciler.session_steps`: references by name, ignore rules,
policies), :meth:`Session.window` and :meth:`Session.apply`.

Every failure is a :class:`reconciler.errors.ReconcilerError`; the command line maps them to
exit codes in one place (:mod:`reconciler.cli.console`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx
import orjson

from reconciler import errors
from reconciler.api import aio
from reconciler.api import errors as api_errors
from reconciler.api.client import (
    DEFAULT_CONCURRENCY,
    LOCAL_DB_URL,
    Client,
    Connection,
    RetryPolicy,
    open_client,
    resolve_connection,
)
from reconciler.api.forked import ForkedListing
from reconciler.api.live import fetch_live
from reconciler.api.live_memo import LiveMemo
from reconciler.api.secrets import resolver
from reconciler.contract import validators
from reconciler.engine import apply as applying
from reconciler.engine import collector, policy, windows
from reconciler.engine import plan as plans
from reconciler.engine import refs as engine_refs
from reconciler.engine.normalize import desired_from_manifest
from reconciler.engine.select import (
    ChangedSet,
    Selection,
    SelectionError,
    select_documents,
    selection_from_options,
)
from reconciler.engine.types import Desired
from reconciler.notify import config as notify_config
from reconciler.notify import events as notify_events
from reconciler.notify import send as notify_send
from reconciler.notify.send import Channel, Delivery
from reconciler.session_steps import Rules, Steps
from reconciler.specs import environments, secrets
from reconciler.specs.cache import CACHE_DIR_ENV, NO_CACHE_ENV
from reconciler.specs.config import SEED_COLLECTIONS, ProjectConfig, TargetConfig, find_config, load_config
from reconciler.specs.controls import Controls
from reconciler.specs.files import read_limited
from reconciler.specs.incremental import Derivation, Validated, validate_with_cache
from reconciler.specs.load import LoadedDocument
from reconciler.specs.model import Manifest
from reconciler.specs.scope import Scope
from reconciler.specs.validate import ValidationReport

__all__ = ["MAX_PLAN_BYTES", "ChangesFinder", "InvalidManifests", "Manifests", "Options", "Session",
           "require_paths", "run", "seed_local_service"]

T = TypeVar("T")
log = logging.getLogger("reconciler")

# A saved plan that creates 10,000 definitions is about 50 MB; a file far beyond is not one.
MAX_PLAN_BYTES = 256 * 1024 * 1024


class ChangesFinder(Protocol):
    """What git says changed since a ref (``reconciler.gitops.changes.changed_since``), injected so
    that the session does not depend on the layer above it."""

    def __call__(self, ref: str, *, paths: Sequence[Path], overlays_dir: Path | None, config_file: Path | None,
                 current: Sequence[Desired], variables: Mapping[str, Any] | None) -> ChangedSet: ...


@dataclass(frozen=True, kw_only=True)
class Options:
    """Every flag any entry point takes. ``paths`` are the manifests (or, for commands that read
    none, where the project config is looked for); ``paths_given``: the user named them."""

    paths: tuple[Path, ...] = (Path("specs"),)
    paths_given: bool = False
    config: Path | None = None
    target: str | None = None
    endpoint: str | None = None
    token_file: Path | None = None
    allow_http: bool = False
    concurrency: int = DEFAULT_CONCURRENCY
    selector: tuple[str, ...] = ()
    only: tuple[str, ...] = ()
    changed_since: str | None = None
    changes: ChangesFinder | None = None
    environ: Mapping[str, str] | None = None
    source: str = "cli"  # what notifications say sent them: cli or operator
    clock: Callable[[], datetime] | None = None  # the time sync windows are checked at (default: now, UTC)
    # the validated-manifest cache (reconciler.specs.cache): its directory (default: $RECONCILER_CACHE_DIR,
    # else .reconciler/cache beside reconciler.yaml, or in the working directory), or none at all
    cache_dir: Path | None = None
    no_cache: bool = False


class InvalidManifests(errors.InvalidInput):
    """Some manifest is invalid: nothing was planned or applied. ``report`` has every issue."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(f"INVALID: {len(report.errors)} error(s) in {report.files} file(s); nothing was planned "
                         "or applied")
        self.report = report


@dataclass(frozen=True, kw_only=True)
class Manifests:
    """The valid manifests of a run (as the target sees them), and the selection narrowing it."""

    documents: tuple[LoadedDocument, ...] = ()
    desired: tuple[Desired, ...] = ()
    selection: Selection = field(default_factory=Selection)
    report: ValidationReport | None = None


def require_paths(paths: Sequence[Path], *, given: bool) -> None:
    """A path that does not exist is a usage error (exit 1), not an invalid manifest (exit 3):
    nothing was validated. ``given``: the user named the paths (else it is the default specs/)."""
    missing = [str(p) for p in paths if not os.path.lexists(p)]
    if missing:
        default = "" if given else " (the default when no path is given; pass the manifests' files or directories)"
        raise errors.UsageError(f"no such file or directory: {', '.join(missing)}{default}")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one command's async work to its end (:func:`reconciler.api.aio.run`: its value is never
    repr'd on the way out, which cost seconds for a large plan)."""
    return aio.run(coro)


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
            except api_errors.APINotFoundError:
                await client.request("POST", client.url(collection), json=dict(item))
                created += 1
    return created


_TUPLE_FIELDS = frozenset(f.name for f in dataclasses.fields(Desired) if str(f.type).startswith("tuple"))
_INIT_FIELDS = tuple(f.name for f in dataclasses.fields(Desired) if f.init)


def _desired_derivation(secret_roots: tuple[str, ...]) -> Derivation:
    """A manifest's :class:`Desired`, as the validated-manifest cache keeps it (plain data)."""

    def make(doc: LoadedDocument) -> dict[str, Any]:
        desired = desired_from_manifest(Manifest.from_document(doc), secret_roots=secret_roots)
        plain = {name: getattr(desired, name) for name in _INIT_FIELDS}
        # the comparable form as its exact bytes (UTF-8 text) in place of the form: the form is
        # those bytes read back, and working the bytes out again for every hit was an eighth of
        # loading 100,000 manifests from the cache (and the entry held the form twice); the body
        # likewise as JSON text, read when first used (a plan with no changes never reads it)
        if desired.exact is not None:
            plain["exact"] = desired.exact.decode()
            del plain["comparable"]
            with contextlib.suppress(TypeError):  # not JSON data: kept as is (then not cached at all)
                plain["body"] = orjson.dumps(desired.body).decode()
        return plain

    def revive(plain: dict[str, Any]) -> Desired:
        exact = plain.get("exact")
        if not isinstance(exact, str):
            kept: dict[str, Any] = {k: tuple(v) if k in _TUPLE_FIELDS else v for k, v in plain.items()}
            return Desired(**kept)
        fields = dict(plain)
        del fields["exact"]
        for name in _TUPLE_FIELDS:
            if name in fields:
                fields[name] = tuple(fields[name])
        body = fields.pop("body")
        if isinstance(body, str):
            return Desired.from_exact(exact.encode(), body.encode(), **fields)
        return Desired.from_exact(exact.encode(), body=body, **fields)

    return Derivation(tag="desired", make=make, revive=revive)


def _no_constant(text: str) -> Any:
    raise ValueError(f"{text} is not a JSON value")


@dataclass(frozen=True, kw_only=True)
class Session:
    """One command's context: the options, the project config (parsed once) and the connection."""

    options: Options
    config: ProjectConfig
    config_file: Path | None
    connection: Connection
    scope: Scope | None
    secret_roots: tuple[str, ...]
    # policy rules compiled at opening (the operator's); None: reconciler.yaml's, compiled when used
    rules: Rules | None = None
    # notification channels resolved at opening (the operator's, from its environment); None: the
    # `notifications:` of reconciler.yaml, resolved when one is sent
    channels: tuple[Channel, ...] | None = None

    @classmethod
    def assemble(cls, options: Options, *, config: ProjectConfig, connection: Connection, rules: Rules | None = None,
                 channels: Sequence[Channel] | None = None) -> Session:
        """The one constructor: :meth:`open` ends here from flags, the operator comes here from its
        own configuration at start (its project config, Secret's endpoint, policy files, channels)."""
        return cls(options=options, config=config, config_file=Path(config.path) if config.path else None,
                   connection=connection, scope=config.scope_for(options.target),
                   secret_roots=secrets.secret_roots(config_path=config.path, allowed_dirs=config.secret_dirs,
                                                     paths=options.paths),
                   rules=rules, channels=None if channels is None else tuple(channels))

    @classmethod
    def open(cls, options: Options, *, check_paths: bool = True) -> Session:
        """Read the project config and decide where requests go. ``check_paths``: the paths must
        exist (commands that read manifests)."""
        paths = list(options.paths)
        if check_paths:
            require_paths(paths, given=options.paths_given)
        environ = os.environ if options.environ is None else options.environ
        found = options.config or find_config(paths)
        config = load_config(found) if found else ProjectConfig()
        name = options.target
        target_cfg = config.target(name) if name else None
        try:
            connection = resolve_connection(
                endpoint=options.endpoint, token_file=options.token_file,
                config_endpoint=target_cfg.endpoint if target_cfg else None,
                config_token=target_cfg.token_from if target_cfg else None, config_name=name,
                allow_http=options.allow_http, environ=environ,
                db_url=environ.get("RECONCILER_LOCAL_DB_URL", LOCAL_DB_URL))
        except OSError as exc:
            source = (f"the tokenFrom file of target {name!r} in {found}" if name and not options.token_file
                      else "the --token-file")
            raise errors.UsageError(f"cannot read {source}: {exc.filename}: {exc.strerror} (a relative path is "
                                    "relative to the working directory)") from None
        return cls.assemble(options, config=config, connection=connection)

    # -- manifests --------------------------------------------------------------------------

    @property
    def config_dir(self) -> Path | None:
        return self.config_file.parent if self.config_file is not None else None

    def environment(self) -> TargetConfig | None:
        """The chosen target's variables and overlays: the entry of the config parsed once (None:
        the config declares no targets)."""
        if self.options.target is not None:
            return self.config.target(self.options.target)
        return environments.default_target(self.config.targets) if self.config.targets else None

    @functools.cached_property
    def policies(self) -> policy.Policies:
        """The policy rules, compiled once (the CEL runtime is loaded only if there are any)."""
        return self.rules.compiled if self.rules is not None else policy.compile_policies(self.config.policies.rules)

    @property
    def policy_target(self) -> str | None:
        """The target name policy rules see."""
        return self.rules.target if self.rules is not None else self.options.target

    @functools.cached_property
    def steps(self) -> Steps:
        """What manifests go through between loading and writing: references, ignore rules, policies."""
        rules = self.rules if self.rules is not None else Rules(self.policies, self.policy_target)
        return Steps(rules=rules, ignore=self.controls.ignore)

    def cache_dir(self) -> Path | None:
        """Where validated manifest files are cached; None with --no-cache or RECONCILER_NO_CACHE=1."""
        environ = os.environ if self.options.environ is None else self.options.environ
        if self.options.no_cache or environ.get(NO_CACHE_ENV, "") not in ("", "0"):
            return None
        if self.options.cache_dir is not None:
            return self.options.cache_dir
        if environ.get(CACHE_DIR_ENV):
            return Path(environ[CACHE_DIR_ENV])
        return (self.config_dir or Path(".")) / ".reconciler" / "cache"

    def _validated(self, derivation: Derivation | None = None) -> Validated:
        return validate_with_cache(list(self.options.paths), targets=self.config.targets,
                                   target_name=self.options.target, overlays_root=self.config_dir,
                                   secret_roots=self.secret_roots, cache_dir=self.cache_dir(), derivation=derivation)

    def validate(self) -> ValidationReport:
        """Every manifest as the target sees it (its variables and overlays applied), then the
        project's manifest policies over the valid ones (after the cache: rules are not in its key)."""
        return self.steps.with_manifest_issues(self._validated().report)

    def load(self, *, settle: bool = True) -> Manifests:
        """The valid manifests and the selection; :class:`InvalidManifests` when any is invalid.
        The collector is paused while loading and the manifests are then out of its reach
        (:func:`reconciler.engine.collector.settled`): they stay as long as the command.
        ``settle=False`` for a process that loads again and again (watch): a freeze each time
        would keep whatever cycles were alive then until the process ends."""
        with collector.settled() if settle else collector.paused():
            return self._load()

    def _load(self) -> Manifests:
        validated = self._validated(_desired_derivation(self.secret_roots))
        report = self.steps.with_manifest_issues(validated.report)
        if not report.ok:
            raise InvalidManifests(report)
        documents = tuple(report.documents)
        desired = self.steps.with_ignore_rules(tuple(validated.derived or ()), [doc.data for doc in documents])
        return Manifests(documents=documents, desired=desired, selection=self._selection(desired), report=report)

    def _selection(self, desired: Sequence[Desired]) -> Selection:
        options = self.options
        changed = None
        if options.changed_since is not None:
            if not options.changed_since.strip():
                raise SelectionError("--changed-since needs a git ref, e.g. --changed-since origin/main")
            if options.changes is None:
                raise errors.UsageError("--changed-since is not available in this command")
            target = self.config.target(options.target) if options.target else None
            changed = options.changes(
                options.changed_since, paths=list(options.paths),
                overlays_dir=target.overlays_dir(root=self.config_dir) if target is not None else None,
                config_file=self.config_file, current=desired,
                variables=target.variables if target is not None else None)
        return selection_from_options(selector=options.selector, only=options.only, changed=changed)

    # -- controls (reconciler.specs.controls) --------------------------------------------------

    @functools.cached_property
    def controls(self) -> Controls:
        """The ignore rules and sync windows of the project and the chosen target (merged once)."""
        return self.config.controls.for_target(self.options.target)

    def now(self) -> datetime:
        return self.options.clock() if self.options.clock is not None else datetime.now(UTC)

    def window(self, at: datetime | None = None) -> windows.WindowState | None:
        """The sync windows' state at ``at`` (default: now); None: the config declares none."""
        return windows.state(self.controls.windows, at or self.now())

    def check_window(self, plan: plans.Plan, *, force: bool = False, at: datetime | None = None) -> str | None:
        """Before writing: :class:`~reconciler.engine.windows.WindowClosed` when a sync window
        blocks the plan's writes now; with ``force``, the note that says it was overridden. The
        windows are this session's and those the plan was made under (a saved plan keeps them, so
        applying it where reconciler.yaml is not found still honours them)."""
        recorded = plan.window.windows if plan.window is not None else ()
        every = tuple(dict.fromkeys((*self.controls.windows, *recorded)))
        return windows.gate(windows.state(every, at or self.now()), writes=len(plan.writes), force=force)

    # -- the API ----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def client(self) -> AsyncIterator[Client]:
        """The API client; the embedded local service is seeded from the project config first,
        whatever the command (plan, apply, watch, run ...)."""
        transport, app = self._embedded() if self.connection.local else (None, None)
        async with open_client(self.connection, concurrency=self.options.concurrency, transport=transport,
                               local_app=app) as client:
            if self.connection.local and self.config.local_seed:
                created = await seed_local_service(client, self.config.local_seed)
                if created:
                    log.info("seeded the embedded local service with %d resource(s) from %s", created,
                             self.config.path)
            yield client

    def _embedded(self) -> tuple[httpx.AsyncBaseTransport, Any]:
        """The embedded local service, in-process: its app over the connection's database and the
        transport the client sends through (the service is imported only here)."""
        from reconciler.service.app import create_app
        from reconciler.service.settings import ServiceSettings

        db_url = self.connection.db_url
        if db_url.startswith("sqlite:///"):
            Path(db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        base = str(self.config_dir) if self.config_dir is not None else None
        notify = tuple(notify_config.channels([c for c in self.config.notifications
                                               if "job.failed" in (c.get("events") or notify_send.EVENTS)],
                                              base_dir=base, roots=self.secret_roots, environ=self.options.environ))
        # no dashboard in-process: no browser reaches an app served over the CLI's own transport
        app = create_app(ServiceSettings(db_url=db_url, notify=notify, ui=False))
        return httpx.ASGITransport(app=app), app

    def origin(self) -> plans.PlanOrigin:
        """Where this session's plans are made (recorded in saved plans; never the token)."""
        return plans.PlanOrigin(name=self.options.target, endpoint=self.connection.endpoint,
                                local_db=self.connection.db_url if self.connection.endpoint is None else None)

    def list_ahead(self) -> ForkedListing | None:
        """Start listing a remote target's live state in a forked worker, to run while the manifests
        load (:mod:`reconciler.api.forked`); pass it to :meth:`plan`. None for the embedded
        service (its database is this process's) or where forking is not safe."""
        if self.connection.local:
            return None
        # One attempt: a worker that fails for any reason leaves the listing to this process, with
        # the retries and their lines as without the worker (retrying in both doubled the wait and
        # printed every "retrying in" line twice when the endpoint was down).
        cache_dir, endpoint = self.cache_dir(), self.connection.endpoint
        memo = functools.partial(LiveMemo, cache_dir, endpoint) if cache_dir is not None and endpoint else None
        return ForkedListing.start(functools.partial(open_client, self.connection, concurrency=self.options.concurrency,
                                                     retry=RetryPolicy(attempts=1)), memo)

    async def plan(self, client: Client, manifests: Manifests, *, prune: bool = False, force: bool = False,
                   destroy: bool = False, listed: ForkedListing | None = None, settle: bool = True) -> plans.Plan:
        """List the live state once (or take what ``listed`` listed), then build the plan: the
        selection and every guard, once. ``settle=False`` for a process that plans again and again
        (watch), as for :meth:`load`."""
        if (prune or destroy) and self.scope is None:
            raise errors.UsageError("--prune/--destroy need an ownership scope: add `scope: {namePrefix: ...}` "
                                    "to reconciler.yaml")
        live = listed.take() if listed is not None else None
        if live is None:  # not listed ahead, or the worker failed: list here (its errors are raised here)
            live = await fetch_live(client)
        resolved = await self.steps.resolve(client, manifests.desired)
        selection = manifests.selection
        # the plan is settled as the manifests are (Session.load): it stays as long as the command,
        # and the collector's first pass after it would walk its actions and changes (2.5 million
        # changes in a plan of 100,000 creates: 0.7 s) for nothing
        with collector.settled() if settle else contextlib.nullcontext():
            plan = plans.build_plan(
                desired=resolved.desired, live=live, scope=self.scope, prune=prune, force=force, destroy=destroy,
                max_delete_fraction=self.config.max_delete_fraction, selection=selection,
                selected=select_documents(manifests.documents, resolved.desired, selection) if selection.active
                else None,
                manifest_names=[str((d.data.get("metadata") or {}).get("name")) for d in manifests.documents],
                origin=self.origin(), window=self.window())
        plan = engine_refs.annotate(plan, resolved)
        plan = self.steps.judge(plan, documents=manifests.documents, desired=resolved.desired, live=live,
                                removed=selection.changed.removed if selection.changed is not None else ())
        if plan.errored:
            await self.notify(notify_events.refused(plan, source=self.options.source))
        return plan

    # -- saved plans ------------------------------------------------------------------------

    def read_saved(self, path: Path) -> plans.Plan:
        """A saved plan: a regular file (bounded read), JSON, this format with a digest that
        matches its content (an edited plan is refused), checked against plan.schema.json, and
        made for the place this session goes to; refused with the field at fault otherwise."""
        again = f"make a fresh one with `reconciler plan --out {path}`"
        try:
            data = json.loads(read_limited(path, limit=MAX_PLAN_BYTES, what="saved plan").decode("utf-8"),
                              parse_constant=_no_constant)  # NaN and Infinity are Python's, not JSON's
        except OSError as exc:
            raise errors.PlanError(f"cannot read the plan {path}: {exc.strerror}") from None
        except (UnicodeDecodeError, ValueError) as exc:
            where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
            raise errors.PlanError(f"{path} is not a saved plan: not JSON{where}. apply takes a plan saved by "
                                   "`reconciler plan --out FILE`, or manifests: *.yaml/*.yml files and "
                                   "directories") from None
        if not isinstance(data, dict) or "format_version" not in data:
            raise errors.PlanError(f"{path} is not a saved plan (no format_version); {again}")
        if str(data["format_version"]).split(".")[0] != plans.FORMAT_VERSION.split(".")[0]:
            raise errors.PlanError(f"{path}: plan format_version {data['format_version']!r} is not supported (this "
                                   f"reconciler reads {plans.FORMAT_VERSION}); {again}")
        try:
            plans.check_digest(data)
        except ValueError as exc:
            raise errors.PlanError(f"{path}: {exc}; nothing was applied; {again}") from None
        problems = sorted(validators.validator("plan").iter_errors(data), key=lambda e: list(e.absolute_path))
        if problems:
            first = problems[0]
            where = "/".join(str(part) for part in first.absolute_path) or "(top level)"
            raise errors.PlanError(f"{path} is not a valid saved plan: {where}: {first.message}; {again}")
        try:
            saved = plans.from_dict(data)
        except (ValueError, KeyError) as exc:
            raise errors.PlanError(f"{path}: {exc}; {again}") from None
        if saved.policy_digest != policy.rules_digest(self.config.policies.rules):
            raise errors.PlanError(f"{path} was judged by other policy rules than the project's now (policies in "
                                   f"{self.config.path or 'reconciler.yaml'} changed since); nothing was applied; {again}")
        here = self.origin()
        if saved.origin is not None and not saved.origin.same_place(here):
            raise errors.PlanError(f"the plan {path} was made for {saved.origin.describe()}, but this apply would "
                                   f"go to {here.describe()}; pass the same --target/--endpoint, or make a new plan "
                                   "for this target")
        return saved

    async def check_fresh(self, client: Client, plan: plans.Plan) -> None:
        """Refuse a saved plan whose live state changed since it was made."""
        stale = plans.stale_reasons(plan, await fetch_live(client))
        if stale:
            raise applying.StalePlanError(stale)

    async def apply(self, client: Client, plan: plans.Plan, *,
                    on_result: Callable[[applying.ActionResult], None] | None = None,
                    dry_run: bool = False, force: bool = False, at: datetime | None = None) -> applying.ApplyResult:
        """Carry out ``plan``, then tell the notification channels (after the result is known; a
        channel that cannot be reached is logged, never an error). Refused (nothing written) while
        a sync window blocks writes at ``at`` (default: now), unless ``force`` (the caller prints
        :meth:`check_window`'s note first)."""
        if not dry_run:
            self.check_window(plan, force=force, at=at)
        result = await applying.apply_plan(plan, client=client, resolve=resolver(self.options.environ),
                                           on_result=on_result, dry_run=dry_run)
        if not dry_run and (plan.writes or not result.ok):
            await self.notify(notify_events.applied(result, origin=plan.origin or self.origin(),
                                                    source=self.options.source))
        return result

    def wants(self, event: str) -> bool:
        """Whether some notification channel takes ``event`` (nothing to build or send otherwise)."""
        if self.channels is not None:
            return any(c.wants(event) for c in self.channels)
        return any(event in (c.get("events") or notify_send.EVENTS) for c in self.config.notifications)

    async def notify(self, body: Mapping[str, Any]) -> list[Delivery]:
        """Send one notification (``reconciler.notify``) to the channels of reconciler.yaml that
        take its event; never raises."""
        if self.channels is not None:
            return await notify_send.send(self.channels, body)
        if not self.config.notifications:
            return []
        base = str(self.config_dir) if self.config_dir is not None else None
        found = notify_config.channels(self.config.notifications, base_dir=base, roots=self.secret_roots,
                                       environ=self.options.environ)
        return await notify_send.send(found, body)

    @contextlib.asynccontextmanager
    async def embedded_runner(self, client: Client, *, enabled: bool = True) -> AsyncIterator[None]:
        """The embedded service's job runner, for as long as a command waits on a job. In-process
        the service has no lifespan (no ``reconciler serve``), so without this a queued job never
        starts."""
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
