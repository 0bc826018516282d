"""The ``reconciler`` command line. A thin shell: parse arguments, call the pure core, print.

Exit codes are a contract with CI (see README): 0 success/no changes, 1 error, 2 changes present
(with --detailed-exitcode), 3 invalid manifests. Machine output goes to stdout, logs to stderr.
Each area registers its own commands (``register(app)``) so that this file stays small.
"""

from __future__ import annotations

import importlib
import sys
from typing import Annotated, Any

import click
import typer
import typer.core

from reconciler.__about__ import __version__
from reconciler.cli.console import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_INVALID,
    EXIT_OK,
    stderr_console,
    stdout_console,
)

__all__ = ["EXIT_CHANGES", "EXIT_ERROR", "EXIT_INVALID", "EXIT_OK", "app", "main", "stderr_console", "stdout_console"]

# click exits 2 on a usage error (unknown option, bad value); 2 means "changes present" to CI
# (`plan --detailed-exitcode`), so a mistyped flag must not pass for a plan with changes. Typer
# may carry its own copy of click, so both are set.
for _usage_error in {click.exceptions.UsageError, getattr(typer.core, "_click", click).exceptions.UsageError}:
    _usage_error.exit_code = EXIT_ERROR

app = typer.Typer(
    name="reconciler",
    help="GitOps for batch prediction job definitions: validate manifests, plan and apply them against "
    "the DataRobot API or the embedded local service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Exit codes: 0 success, no changes; 1 error (API failure, refused plan, usage error); "
    "2 changes present (plan --detailed-exitcode); 3 invalid manifests. "
    "`reconciler COMMAND --help` describes each command.",
)

# Typer's help shows a type for every option, `<bool>` for a flag too, as if `--prune` took a
# value (and `--prune true` would pass `true` on as a path). A flag takes none: show no type.
_display_type_rich = getattr(typer.core.TyperOption, "display_type_rich", None)
if callable(_display_type_rich):
    _typed = _display_type_rich

    def _flag_shows_no_type(self: typer.core.TyperOption, ctx: Any) -> str | None:
        if self.is_flag and self.metavar is None:
            return None
        shown = _typed(self, ctx)
        return None if shown is None else str(shown)

    typer.core.TyperOption.display_type_rich = _flag_shows_no_type  # type: ignore[method-assign]


def _version_callback(value: bool) -> None:
    if value:
        print(f"reconciler {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version_callback, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """reconciler keeps batch prediction job definitions in git and the API in sync."""


# Each area registers its own commands with ``register(app)``; the modules keep heavy imports
# inside the commands so that `reconciler --help` stays quick.
COMMAND_MODULES = ("reconciler.cli.validate", "reconciler.cli.schema", "reconciler.cli.plan", "reconciler.cli.apply", "reconciler.cli.diff", "reconciler.cli.export",
                   "reconciler.cli.listing", "reconciler.cli.run", "reconciler.cli.models", "reconciler.cli.serve", "reconciler.cli.operator",
                   "reconciler.cli.ci", "reconciler.cli.watch", "reconciler.cli.schedule")


def _register_commands() -> None:
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(app)


_register_commands()


def main() -> None:
    from reconciler.extras import MissingExtra

    try:
        app()
    except MissingExtra as exc:  # a feature of an extra that is not installed: say which pip install
        stderr_console().print(f"error: {exc}", markup=False)
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:  # pragma: no cover - interactive
        sys.exit(130)
