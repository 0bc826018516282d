"""What every command shares: the exit codes (a contract with CI) and the two consoles.

Kept apart from :mod:`reconciler.cli` so that command modules (engine, gitops, ...) can import
these without importing the root command, which imports them in turn to register their commands.
"""

from __future__ import annotations

from rich.console import Console

__all__ = ["EXIT_CHANGES", "EXIT_ERROR", "EXIT_INVALID", "EXIT_OK", "stderr_console", "stdout_console"]

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
