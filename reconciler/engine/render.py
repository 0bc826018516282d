"""Views of a plan: text (Terraform-like), JSON (versioned, ``schemas/plan.schema.json``) and
Markdown (a pull-request comment). Pure: every renderer takes a :class:`Plan` and returns a string;
no I/O. One entry point, :func:`render`; the summary line is the plan's own (computed once).

Colour is not written here: the text and diff views are also :class:`Line` values, each with a
semantic :class:`Style`, which the command line prints with rich (:mod:`reconciler.cli.console`).

Names and values come from live definitions too: every line of text and markdown goes through
:func:`reconciler.display.printable`, so a name holding a line break or U+202E cannot fake a line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from reconciler.display import printable, value_text
from reconciler.engine import diff as diffs
from reconciler.engine import render_controls as controls_view
from reconciler.engine.plan import MARKERS, Action, ActionKind, Plan, to_dict

__all__ = ["MARKDOWN_LIMIT", "Format", "Line", "Style", "compact_time", "diff_lines", "list_rows", "plain", "render",
           "render_action", "render_diff", "schedule_text", "text_lines"]

MARKDOWN_LIMIT: Final = 65_000  # GitHub's comment limit is 65,536 characters
LIST_LIMIT: Final = 50  # names listed per unmanaged/orphan section in text and markdown
NOTICE_LIMIT: Final = 20  # errors and warnings listed each in markdown



class Format(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


class Style(StrEnum):
    """What a line is, for the printer to colour: never an escape code."""

    heading = "heading"
    add = "add"
    remove = "remove"
    change = "change"
    warning = "warning"
    error = "error"


_MARKED: Final = {"+": Style.add, "-": Style.remove, "~": Style.change}


@dataclass(frozen=True, slots=True)
class Line:
    """One line of the text or diff view and its style (None: plain)."""

    text: str
    style: Style | None = None


def plain(lines: Iterable[Line]) -> str:
    """The lines as text, without styles: what is printed with colour off."""
    return "".join(line.text + "\n" for line in lines)


def _marked(text: str) -> Line:
    """A line styled by its own marker (``+``, ``-``, ``~``) if it has one."""
    return Line(text, _MARKED.get(text.lstrip()[:1]))


_value = value_text  # one value format for every plan line


def _change_line(change: diffs.Change) -> str:
    if change.op is diffs.Op.add:
        return f"+ {change.path} = {_value(change.new)}"
    if change.op is diffs.Op.remove:
        return f"- {change.path} = {_value(change.old)} -> (unset)"
    return f"~ {change.path}: {_value(change.old)} -> {_value(change.new)}"


def render_action(action: Action, *, show_defaults: bool = False) -> list[str]:
    """One header line, then one line per changed field (none for deletes and noops); each
    printable (:func:`reconciler.display.printable`). A create lists what its manifest sets and
    folds the API's defaults into one line, unless ``show_defaults``."""
    lines = [action.line() + (f"  ({action.source})" if action.source else "")]
    changes: tuple[diffs.Change, ...] = action.changes
    defaults: tuple[diffs.Change, ...] = ()
    if action.kind is ActionKind.create and not show_defaults:
        from reconciler.engine.folding import split_defaults

        changes, defaults = split_defaults(action.changes)
    if action.kind is not ActionKind.delete:
        lines.extend("    " + _change_line(c) for c in changes)
    if defaults:
        lines.append(f"    + {len(defaults)} default{'s' if len(defaults) != 1 else ''} (--show-defaults lists them)")
    lines.extend(f"    = {r.path} {_value(r.name)} is {r.kind} {r.id}" for r in action.references)
    return [printable(line) for line in lines]


def _names(title: str, names: tuple[str, ...]) -> list[str]:
    if not names:
        return []
    shown = ", ".join(names[:LIST_LIMIT]) + (f", … and {len(names) - LIST_LIMIT} more" if len(names) > LIST_LIMIT else "")
    return [printable(f"{title} ({len(names)}): {shown}")]


def text_lines(plan: Plan, *, show_noop: bool = False, show_defaults: bool = False) -> list[Line]:
    """The Terraform-like text view, line by line (a create's defaults folded unless ``show_defaults``)."""
    out: list[Line] = []
    writes = [a for a in plan.actions if a.kind is not ActionKind.noop or show_noop]
    if writes:
        out += [Line("reconciler will perform these actions:", Style.heading), Line("")]
        for action in writes:
            header, *changes = render_action(action, show_defaults=show_defaults)
            out.append(Line("  " + header, _MARKED.get(MARKERS[action.kind])))
            out.extend(_marked("  " + line) for line in changes)
            out.append(Line(""))
    if plan.summary.adopt or plan.summary.rename:
        out.append(Line(f"Of the updates: {plan.summary.adopt} adopted from outside the scope, "
                        f"{plan.summary.rename} renamed."))
    names = [*_names("Unmanaged, outside the scope, never touched", plan.unmanaged),
             *(_names("In scope without a manifest (pass --prune to delete)", plan.orphans) if not plan.destroy
               else _names("Orphaned (deletionPolicy: Orphan), left in place", plan.orphans))]
    out.extend(Line(text) for text in names)
    out.extend(Line(text) for text in controls_view.text_lines(plan))
    out.extend(Line(printable(f"warning: {warning}"), Style.warning) for warning in plan.warnings)
    out.extend(Line(printable(f"error: {error}"), Style.error) for error in plan.errors)
    out.append(Line(plan.summary.text if not plan.errors else f"Plan refused. {plan.summary.text}", Style.heading))
    return out


def render_text(plan: Plan, *, show_noop: bool = False, show_defaults: bool = False) -> str:
    return plain(text_lines(plan, show_noop=show_noop, show_defaults=show_defaults))


def render_json(plan: Plan, *, version: str = "") -> str:
    return json.dumps(to_dict(plan, version=version), indent=2, ensure_ascii=False) + "\n"


def render_markdown(plan: Plan, *, limit: int = MARKDOWN_LIMIT, show_defaults: bool = False) -> str:
    s = plan.summary
    head = [
        "### reconciler plan",
        "",
        f"**{plan.summary.text}**" if not plan.errors else f"**Plan refused.** {plan.summary.text}",
        "",
        "| create | update | adopt | rename | delete | unchanged |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {s.create} | {s.update} | {s.adopt} | {s.rename} | {s.delete} | {s.noop} |",
        "",
    ]
    head += _capped([printable(f"> :x: {e}") for e in plan.errors], "errors")
    head += _capped([printable(f"> :warning: {w}") for w in plan.warnings], "warnings")
    head += controls_view.markdown_lines(plan)
    tail: list[str] = []
    tail += [f"- {line}" for line in _names("Unmanaged (outside the scope, never touched)", plan.unmanaged)]
    tail += [f"- {line}" for line in _names("In scope without a manifest (pass `--prune` to delete)", plan.orphans)]
    text = "\n".join(head) + "\n"
    end = ("\n" + "\n".join(tail) + "\n") if tail else ""
    budget = limit - len(text) - len(end) - 300  # room for the cut note
    blocks: list[str] = []
    writes = [a for a in plan.actions if a.kind is not ActionKind.noop]
    used = 0
    cut = 0
    for index, action in enumerate(writes):
        lines = render_action(action, show_defaults=show_defaults)
        body = "\n".join(lines[1:]) if len(lines) > 1 else "(no field changes)"
        fence = _fence(body)
        block = (f"<details><summary><code>{_escape(lines[0])}</code></summary>\n\n{fence}diff\n{body}\n{fence}\n\n"
                 "</details>\n")
        if used + len(block) > budget:
            cut = len(writes) - index
            break
        blocks.append(block)
        used += len(block)
    note = ""
    if cut:
        note = (f"\n> Output cut to stay under {limit:,} characters: {cut} of {len(writes)} definitions not shown. "
                "Run `reconciler plan` for the full plan.\n")
    return text + "".join(blocks) + note + end


def _capped(lines: list[str], what: str) -> list[str]:
    """At most :data:`NOTICE_LIMIT` notices (each at most 1,000 characters) in a comment."""
    shown = [line if len(line) <= 1000 else line[:997] + "..." for line in lines[:NOTICE_LIMIT]]
    if len(lines) > NOTICE_LIMIT:
        shown.append(f"> … and {len(lines) - NOTICE_LIMIT} more {what}: run `reconciler plan` to see them all.")
    return shown


def _fence(body: str) -> str:
    """A code fence no line of ``body`` can close: longer than its longest run of backticks
    (CommonMark), so that a name or value holding ``\u0060\u0060\u0060`` cannot break out of the block."""
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    return "`" * max(3, longest + 1)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render(plan: Plan, fmt: Format | str, *, version: str = "", show_defaults: bool = False) -> str:
    """The plan in one format: ``text``, ``json`` (always every field) or ``markdown`` (without
    colour: see :func:`text_lines`)."""
    chosen = Format(fmt)
    if chosen is Format.json:
        return render_json(plan, version=version)
    if chosen is Format.markdown:
        return render_markdown(plan, show_defaults=show_defaults)
    return render_text(plan, show_defaults=show_defaults)


# -- the diff and list views ------------------------------------------------------------------

def diff_lines(plan: Plan, *, name: str | None = None) -> list[Line]:
    """``reconciler diff``: every changed definition field by field (with ``name``: that one, also
    when it matches)."""
    shown = [a for a in plan.actions if a.kind is not ActionKind.noop or name is not None]
    lines: list[Line] = []
    for action in shown:
        if action.kind is ActionKind.noop:
            lines.append(Line(printable(f"  {action.name}: live matches the manifest")))
            continue
        lines.extend(_marked(("" if i == 0 else "  ") + line) for i, line in enumerate(render_action(action)))
    if not shown:
        lines.append(Line("No differences."))
    return lines


def render_diff(plan: Plan, *, name: str | None = None) -> str:
    return plain(diff_lines(plan, name=name))


def schedule_text(schedule: Any) -> str:
    """The API's five lists as one cron-like line (`0 2 * * 1,2`), for people."""
    if not isinstance(schedule, dict):
        return "-"
    fields = ("minute", "hour", "dayOfMonth", "month", "dayOfWeek")
    return " ".join(",".join(str(v) for v in schedule.get(f) or ["*"]) for f in fields)


def compact_time(value: Any) -> str:
    """An API timestamp (``2026-12-02T02:00:00.000000Z``) as ``2026-12-02 02:00`` in UTC; seconds
    and fractions are shown only when they are not zero, so nothing is lost."""
    if not value:
        return "-"
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    if when.microsecond:
        return when.strftime("%Y-%m-%d %H:%M:%S.%f")
    return when.strftime("%Y-%m-%d %H:%M:%S" if when.second else "%Y-%m-%d %H:%M")


LIST_KEYS: Final = ("id", "name", "enabled", "schedule", "nextScheduledRunTime", "lastStartedJobStatus")


def list_rows(items: list[dict[str, Any]], *, owned: Callable[[str], str]) -> list[tuple[str, ...]]:
    """The ``list`` table's rows: name, id, enabled, schedule, next run, last job, owned. Every
    cell comes from the API: printable, so that no name can draw a fake row."""
    return [tuple(printable(cell) for cell in (
        str(item.get("name")), str(item.get("id")), "yes" if item.get("enabled") else "no",
        schedule_text(item.get("schedule")), compact_time(item.get("nextScheduledRunTime")),
        str(item.get("lastStartedJobStatus") or "-"), owned(str(item.get("name"))))) for item in items]
