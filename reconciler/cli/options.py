"""The flags every command shares, defined once, and :func:`session_options` turning them into
:class:`reconciler.session.Options`. A flag one entry point has, the others that need it take
from here, so ``watch`` and ``ci comment`` cannot lack one that ``plan`` has."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from reconciler.api.client import DEFAULT_CONCURRENCY
from reconciler.session import ChangesFinder, Options

__all__ = ["AllowHttpOpt", "CacheDirOpt", "ChangedSinceOpt", "ConcurrencyOpt", "ConfigOpt", "EndpointOpt",
           "NoCacheOpt", "NoColorOpt", "OnlyOpt", "PathsArg", "SelectorOpt", "TargetOpt", "TokenFileOpt", "VerboseOpt", "session_options"]

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
    "--cache-dir", metavar="DIR", help="Cache of validated manifest files (default: $RECONCILER_CACHE_DIR, else "
    ".reconciler/cache beside reconciler.yaml); point CI's cache here.")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Load and validate every manifest file again, "
                                          "reading and writing no cache (also RECONCILER_NO_CACHE=1).")]


def session_options(paths: Sequence[Path] | None, *, config: Path | None = None, target: str | None = None,
                    endpoint: str | None = None, token_file: Path | None = None, allow_http: bool = False,
                    concurrency: int = DEFAULT_CONCURRENCY, selector: Sequence[str] | None = None,
                    only: Sequence[str] | None = None, changed_since: str | None = None,
                    default: Path = Path("specs"), cache_dir: Path | None = None, no_cache: bool = False) -> Options:
    """The session's options from the shared flags; no paths means ``default`` (specs/)."""
    changes: ChangesFinder | None = None
    if changed_since is not None:
        from reconciler.gitops import changes as git_changes

        changes = git_changes.changed_since
    return Options(paths=tuple(paths or [default]), paths_given=bool(paths), config=config, target=target,
                   endpoint=endpoint, token_file=token_file, allow_http=allow_http, concurrency=concurrency,
                   selector=tuple(selector or ()), only=tuple(only or ()), changed_since=changed_since,
                   changes=changes, cache_dir=cache_dir, no_cache=no_cache)
