"""The ``reconciler`` command line. A thin shell: parse arguments, call the pure core, print.

Exit codes are a contract with CI (see README): 0 success/no changes, 1 error, 2 changes present
(with --detailed-exitcode), 3 invalid manifests. Machine output goes to stdout, logs to stderr.
Each area registers its own commands (``register(app)``) so that this file stays small.
"""

from __future__ import annotations

import importlib
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from reconciler import schemas
from reconciler.__about__ import __version__

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_INVALID = 3

app = typer.Typer(
    name="reconciler",
    help="GitOps for batch prediction job definitions: validate manifests, plan and apply them against "
    "the DataRobot API or the embedded local service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


def stdout_console(no_color: bool = False) -> Console:
    return Console(no_color=no_color, highlight=False, soft_wrap=True)


def stderr_console(no_color: bool = False) -> Console:
    return Console(stderr=True, no_color=no_color, highlight=False, soft_wrap=True)


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

    Exit 0 when every manifest is valid, 3 when any is invalid, 1 on an internal error.
    """
    from reconciler.specs import environments
    from reconciler.specs.config import ConfigError, find_config, load_config

    targets = paths or [Path("specs")]
    try:
        found = config or (find_config(targets) if target else None)
        project = load_config(found) if found else None
        report = environments.validate_for(targets, targets=project.targets if project else None,
                                           target_name=target, overlays_root=found.parent if found else None)
    except (ConfigError, environments.TargetError) as exc:
        stderr_console(no_color).print(f"error: {exc}", markup=False)
        raise typer.Exit(EXIT_ERROR) from None
    if output is OutputFormat.json:
        body = {
            "format_version": "1.0",
            "valid": report.ok,
            "files": report.files,
            "documents": report.checked,
            "errors": [i.as_dict() for i in report.errors],
            "warnings": [i.as_dict() for i in report.warnings],
        }
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
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
COMMAND_MODULES = ("reconciler.engine.cli", "reconciler.service.cli", "reconciler.operator.cli", "reconciler.gitops.cli")


def _register_commands() -> None:
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(app)


_register_commands()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive
        sys.exit(130)
