"""A progress bar for a long apply, on a terminal only.

Why only there: a pipe or a CI log gets the one line per action that it always had (a bar redrawn
in a log is noise), and a short apply is over before a bar could tell anything. The bar is drawn
on the console the result lines go to, so rich keeps it below them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["PROGRESS_THRESHOLD", "apply_progress", "wants_progress"]

PROGRESS_THRESHOLD = 50  # writes; fewer are done before a bar would help


def wants_progress(console: Console, writes: int, *, threshold: int = PROGRESS_THRESHOLD) -> bool:
    """A bar for more than ``threshold`` writes, on a terminal that is not a CI job's log."""
    return writes > threshold and console.is_terminal and not console.is_dumb_terminal and "CI" not in os.environ


@contextlib.contextmanager
def apply_progress(console: Console, writes: int, *, threshold: int = PROGRESS_THRESHOLD,
                   label: str = "Applying") -> Iterator[Callable[[], None]]:
    """Yield ``advance()``, to call once per finished write; a no-op when no bar is wanted."""
    if not wants_progress(console, writes, threshold=threshold):
        yield lambda: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(label, total=writes)
        yield lambda: progress.advance(task)
