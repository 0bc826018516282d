"""The controls' part of a plan's text and markdown views: ignored differences, suspended
definitions and the sync window. Pure; every line goes through :func:`reconciler.display.printable`
(names and values come from live definitions too). Kept apart from :mod:`reconciler.engine.render`
so that the views' common code stays small.
"""

from __future__ import annotations

from typing import Final

from reconciler.display import printable, value_text
from reconciler.engine import diff as diffs
from reconciler.engine.plan import Plan

__all__ = ["markdown_lines", "text_lines", "window_line"]

LIMIT: Final = 50  # definitions listed per section


_value = value_text  # one value format for every plan line


def _change(change: diffs.Change) -> str:
    if change.op is diffs.Op.add:
        return f"{change.path}: (unset) -> {_value(change.new)}"
    if change.op is diffs.Op.remove:
        return f"{change.path}: {_value(change.old)} -> (unset)"
    return f"{change.path}: live {_value(change.old)}, manifest {_value(change.new)}"


def window_line(plan: Plan) -> str | None:
    """One line on the sync windows, or None when none are declared."""
    state = plan.window
    if state is None:
        return None
    if state.open:
        return printable(f"Sync window: open ({state.reason}).")
    tail = " Apply would refuse to write (--force overrides)." if plan.has_changes else ""
    return printable(f"Sync window: closed ({state.reason}).{tail}")


def _ignored(plan: Plan) -> list[tuple[str, diffs.Change]]:
    return [(a.name, c) for a in plan.actions for c in a.ignored]


def text_lines(plan: Plan) -> list[str]:
    """Lines for ``reconciler plan``'s text view (empty when no control is in play)."""
    out: list[str] = []
    ignored = _ignored(plan)
    if ignored:
        out.append(f"Ignored differences (ignoreChanges), not applied ({len(ignored)}):")
        out += [printable(f"  {name}: {_change(c)}") for name, c in ignored[:LIMIT]]
        if len(ignored) > LIMIT:
            out.append(f"  … and {len(ignored) - LIMIT} more")
    if plan.suspended:
        out.append(f"Suspended (spec.suspend), nothing written ({len(plan.suspended)}):")
        out += [printable(f"  {held.line()}") for held in plan.suspended[:LIMIT]]
        if len(plan.suspended) > LIMIT:
            out.append(f"  … and {len(plan.suspended) - LIMIT} more")
    line = window_line(plan)
    if line:
        out.append(line)
    return out


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def markdown_lines(plan: Plan) -> list[str]:
    """Lines for the pull-request comment (empty when no control is in play)."""
    out: list[str] = []
    line = window_line(plan)
    if line:
        icon = ":white_check_mark:" if plan.window is not None and plan.window.open else ":no_entry:"
        out += [f"> {icon} {_escape(line)}", ""]
    ignored = _ignored(plan)
    if ignored:
        out.append(f"<details><summary>{len(ignored)} difference{'s' if len(ignored) != 1 else ''} ignored "
                   "(ignoreChanges), not applied</summary>\n")
        out += [f"- `{_escape(printable(name))}` {_escape(printable(_change(c)))}" for name, c in ignored[:LIMIT]]
        if len(ignored) > LIMIT:
            out.append(f"- … and {len(ignored) - LIMIT} more")
        out += ["", "</details>", ""]
    if plan.suspended:
        out.append(f"**Suspended** (`spec.suspend`), nothing written ({len(plan.suspended)}):")
        out += [f"- {_escape(printable(held.line()))}" for held in plan.suspended[:LIMIT]]
        if len(plan.suspended) > LIMIT:
            out.append(f"- … and {len(plan.suspended) - LIMIT} more")
        out.append("")
    return out
