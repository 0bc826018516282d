"""The ``reconciler`` command line. A thin shell: parse arguments, call the pure core, print.

Exit codes are a contract with CI (see README): 0 success/no changes, 1 error, 2 changes present
(with --detailed-exitcode), 3 invalid manifests. Machine output goes to stdout, logs to stderr.
Each area registers its own commands (``register(app)``) so that this file stays small.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import click
import typer
import typer.core

from reconciler.__about__ import __version__
from reconciler.contract import schemas
from reconciler.display import printable, printable_lines
from reconciler.terminal import (
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


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


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


@app.command()
def validate(
    paths: Annotated[list[Path] | None, typer.Argument(help="Manifest files or directories (default: specs/).")] = None,
    output: Annotated[OutputFormat, typer.Option("--output", "-o", help="text or json.")] = OutputFormat.text,
    target: Annotated[str | None, typer.Option("--target", help="Validate as sent to this target of the project "
                                               "config: its variables and overlays applied.")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Project config (default: reconciler.yaml "
                                                "found in the paths or their parents).")] = None,
    no_color: Annotated[bool, typer.Option("--no-color", help="No colour, even on a terminal.")] = False,
) -> None:
    """Check manifests against the schemas and report every problem with file:line:col.

    Exit 0 when every manifest is valid, 3 when any is invalid, 1 on a path that does not exist or
    an internal error.
    """
    targets = paths or [Path("specs")]
    missing = [str(p) for p in targets if not os.path.lexists(p)]
    if missing:  # nothing was validated: a usage error, not "invalid manifests"
        default = "" if paths else " (the default when no path is given; pass the manifests' files or directories)"
        stderr_console(no_color).print(printable(f"error: no such file or directory: {', '.join(missing)}{default}"),
                                       markup=False)
        raise typer.Exit(EXIT_ERROR)
    try:
        _validate(targets, output=output, target=target, config=config, no_color=no_color)
    except typer.Exit:
        raise
    except Exception as exc:  # a bug, not bad input: say so in one line, exit 1, no traceback
        stderr_console(no_color).print(
            f"internal error: {type(exc).__name__}: {exc}\n    hint: this is a bug in reconciler; please report it "
            "with the command and the manifest that caused it", markup=False)
        raise typer.Exit(EXIT_ERROR) from None


def _validate(targets: list[Path], *, output: OutputFormat, target: str | None, config: Path | None,
              no_color: bool) -> None:
    from reconciler.specs import environments, secrets
    from reconciler.specs.config import ConfigError, find_config, load_config
    from reconciler.specs.validate import ValidationReport, project_config_issues

    try:
        found = config or find_config(targets)
        if found is not None and found.is_absolute() and found.is_relative_to(Path.cwd()):
            found = found.relative_to(Path.cwd())  # messages name it as the user would type it
        # the project config is checked like the manifests: a config that plan would refuse fails here
        config_issues = project_config_issues(found) if found else []
        project = load_config(found) if found and not config_issues else None
        if config_issues and target:  # a target cannot be resolved from a broken config
            report = ValidationReport(files=1)
        else:
            # secret files stay in the project (its config's directory, else the paths) or allowedDirs
            roots = secrets.secret_roots(config_path=found, allowed_dirs=project.secret_dirs if project else (),
                                         paths=targets)
            report = environments.validate_for(targets, targets=project.targets if project else None,
                                               target_name=target, overlays_root=found.parent if found else None,
                                               secret_roots=roots)
    except (ConfigError, environments.TargetError) as exc:
        stderr_console(no_color).print(printable_lines(f"error: {exc}"), markup=False)
        raise typer.Exit(EXIT_ERROR) from None
    if config_issues:
        report.issues = sorted([*config_issues, *report.issues], key=lambda i: (i.file, i.line, i.col, i.field))
    if output is OutputFormat.json:
        sys.stdout.write(json.dumps(report.as_json(), indent=2) + "\n")
    else:
        out = stdout_console(no_color)
        for issue in report.issues:
            style = "yellow" if issue.severity == "warning" else "red"
            head, _, hint = issue.format().partition("\n")
            out.print(head, style=style, markup=False)
            if hint:
                out.print(hint, style="dim", markup=False)
        summary = (f"{report.checked} manifest(s) in {report.files} file(s): "
                   f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)")
        out.print(("OK: " if report.ok else "INVALID: ") + summary, style="green" if report.ok else "bold red",
                  markup=False)
    raise typer.Exit(EXIT_OK if report.ok else EXIT_INVALID)


@app.command("schema")
def schema_command(
    name: Annotated[str, typer.Argument(help="Schema name; `reconciler schema --list` shows them.")] = "manifest",
    list_: Annotated[bool, typer.Option("--list", help="List schema names.")] = False,
    raw: Annotated[bool, typer.Option("--raw", help="The file as stored, with $refs to sibling files.")] = False,
) -> None:
    """Print a JSON Schema, bundled into one self-contained document for editors.

    Save it and point yaml-language-server at it:
    `reconciler schema > .reconciler/manifest.schema.json`, then in a manifest
    `# yaml-language-server: $schema=.reconciler/manifest.schema.json`.
    """
    if list_:
        for known in schemas.names():
            print(known)
        raise typer.Exit(EXIT_OK)
    try:
        doc = schemas.get(name) if raw else schemas.bundle(name)
    except KeyError as exc:
        stderr_console().print(f"error: {exc.args[0]}", markup=False)
        raise typer.Exit(EXIT_ERROR) from None
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")


# Each area registers its own commands with ``register(app)``; the modules keep heavy imports
# inside the commands so that `reconciler --help` stays quick.
COMMAND_MODULES = ("reconciler.engine.cli", "reconciler.service.cli", "reconciler.operator.cli", "reconciler.gitops.cli",
                   "reconciler.schedule_command")


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
