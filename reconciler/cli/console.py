"""What every command shares: the exit codes (a contract with CI), the two consoles, and the ONE
place where errors become exit codes (:func:`exit_codes`).

Commands raise :class:`reconciler.errors.ReconcilerError` (or let the session's through); this
module prints it (``error: ...``, or an invalid-manifests report) and exits with the class's
``exit_code``: 1 for an error, 3 for invalid manifests.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Final

import typer
from rich.console import Console
from rich.text import Text

from reconciler.display import printable_lines
from reconciler.engine.render import Line, Style, plain
from reconciler.errors import ReconcilerError

__all__ = ["EXIT_CHANGES", "EXIT_ERROR", "EXIT_INVALID", "EXIT_OK", "color", "exit_codes", "report_error",
           "setup_logging", "stderr_console", "stdout_console", "write_lines"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_INVALID = 3


def stdout_console(no_color: bool = False) -> Console:
    # --no-color means plain text, as Terraform's -no-color: rich's own no_color keeps bold and italic.
    return Console(no_color=no_color, color_system=None if no_color else "auto", highlight=False, soft_wrap=True)


def stderr_console(no_color: bool = False) -> Console:
    return Console(stderr=True, no_color=no_color, color_system=None if no_color else "auto", highlight=False,
                   soft_wrap=True)


def color(no_color: bool) -> bool:
    """Whether stdout gets colour: a terminal, no --no-color, no NO_COLOR."""
    return not no_color and sys.stdout.isatty() and "NO_COLOR" not in os.environ


# how each semantic style of the text and diff views looks on a terminal
STYLES: Final = {Style.heading: "bold", Style.add: "green", Style.remove: "red", Style.change: "yellow",
                 Style.warning: "yellow", Style.error: "red"}


def write_lines(lines: Iterable[Line], *, no_color: bool) -> None:
    """Print a view's lines to stdout, coloured by rich when :func:`color` says so; with colour
    off, exactly the plain text (:func:`reconciler.engine.render.plain`)."""
    if not color(no_color):
        sys.stdout.write(plain(lines))
        return
    console = Console(color_system="standard", force_terminal=True, highlight=False, soft_wrap=True, markup=False,
                      emoji=False)
    for line in lines:
        console.print(Text(line.text, style=STYLES[line.style] if line.style else ""))


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not verbose:
        logging.getLogger("httpx").setLevel(logging.WARNING)


def report_error(exc: ReconcilerError, *, no_color: bool = False, json_report: bool = False) -> int:
    """Print ``exc`` for people (stderr) and return its exit code. Invalid manifests print every
    issue, and with ``json_report`` (``plan -o json``) the report goes to stdout as
    ``validate -o json`` prints it, so that a pipeline parsing stdout gets JSON either way."""
    from reconciler.session import InvalidManifests

    err = stderr_console(no_color)
    if isinstance(exc, InvalidManifests):
        for issue in exc.report.issues:
            err.print(issue.format(), markup=False, style="yellow" if issue.severity == "warning" else "red")
        err.print(str(exc), markup=False, style="bold red")
        if json_report:
            sys.stdout.write(json.dumps(exc.report.as_json(), indent=2) + "\n")
        return exc.exit_code
    err.print(printable_lines(f"error: {exc}"), markup=False, style="red")
    return exc.exit_code


@contextlib.contextmanager
def exit_codes(*, no_color: bool = False, json_report: bool = False) -> Iterator[None]:
    """Run a command's body: a :class:`ReconcilerError` is printed and becomes its exit code."""
    try:
        yield
    except ReconcilerError as exc:
        raise typer.Exit(report_error(exc, no_color=no_color, json_report=json_report)) from None
