"""The flags every command shares, defined once, and :func:`session_options` turning them into
:class:`reconciler.session.Options`. A flag one entry point has, the others that need it take
from here, so ``watch`` and ``ci comment`` cannot lack one that ``plan`` has."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from reconciler.session import ChangesFinder, Options

__all__ = ["AllowHttpOpt", "CacheDirOpt", "ChangedSinceOpt", "ConcurrencyOpt", "ConfigOpt", "EndpointOpt",
           "NoCacheOpt", "NoColorOpt", "OnlyOpt", "PathsArg", "SelectorOpt", "TargetOpt", "TextOrJson", "TokenFileOpt",
           "VerboseOpt",
           "api_flags", "session_options"]

class TextOrJson(StrEnum):
    """``--output`` of the commands whose report is text for people or JSON for programs."""

    text = "text"
    json = "json"


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
ChangedSinceOpt = Annotated[str | None, typer.Option(
    "--changed-since", metavar="REF", help="Only manifests changed (or removed) since this git ref's merge base "
    "with HEAD.")]


CacheDirOpt = Annotated[Path | None, typer.Option(
    "--cache-dir", metavar="DIR", help="Cache of validated manifest files and of the last listing of each "
    "endpoint (default: $RECONCILER_CACHE_DIR, else .reconciler/cache beside reconciler.yaml); point CI's cache "
    "here.")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Load and validate every manifest file again, "
                                          "reading and writing no cache (also RECONCILER_NO_CACHE=1).")]


# The flags that say where the project config and the API are, by the Options field each sets.
_API_FLAGS: dict[str, Any] = {"config": ConfigOpt, "target": TargetOpt, "endpoint": EndpointOpt,
                              "token_file": TokenFileOpt, "allow_http": AllowHttpOpt, "concurrency": ConcurrencyOpt}


def api_flags(*, without: Collection[str] = ()) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Decorator for a typer command with an ``api: Options`` parameter: typer sees the flags
    --config, --target, --endpoint, --token-file, --allow-http and --concurrency (those not named
    in ``without``) in that parameter's place, and the command gets them set in one ``Options``
    (the rest default; :func:`session_options` adds paths and selection).

    Typer has no option groups; this keeps one definition of the flags (and their order in
    ``--help``) instead of the same six parameters written out in every command."""
    names = [name for name in _API_FLAGS if name not in without]

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        signature = inspect.signature(command, eval_str=True)
        own = list(signature.parameters.values())
        at = [parameter.name for parameter in own].index("api")
        flags = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=_API_FLAGS[name],
                                   default=getattr(Options(), name)) for name in names]
        seen = [*own[:at], *flags, *own[at + 1:]]

        @functools.wraps(command)
        def gathered(**given: Any) -> None:
            api = Options(**{name: given.pop(name) for name in names})
            command(**given, api=api)

        gathered.__signature__ = signature.replace(parameters=seen)  # type: ignore[attr-defined]
        gathered.__annotations__ = {parameter.name: parameter.annotation for parameter in seen}
        del gathered.__wrapped__  # typer must read the signature above, not the command's
        return gathered

    return decorate


def session_options(paths: Sequence[Path] | None, api: Options = Options(), *,
                    selector: Sequence[str] | None = None, only: Sequence[str] | None = None,
                    changed_since: str | None = None, default: Path = Path("specs"),
                    cache_dir: Path | None = None, no_cache: bool = False) -> Options:
    """The session's options from the shared flags; no paths means ``default`` (specs/)."""
    changes: ChangesFinder | None = None
    if changed_since is not None:
        from reconciler.gitops import changes as git_changes

        changes = git_changes.changed_since
    return replace(api, paths=tuple(paths or [default]), paths_given=bool(paths), selector=tuple(selector or ()),
                   only=tuple(only or ()), changed_since=changed_since, changes=changes, cache_dir=cache_dir,
                   no_cache=no_cache)
