"""Controls declared in reconciler.yaml and manifests: ignore rules and sync windows, as values,
and the checks a JSON Schema cannot make (field paths, selectors, cron), located at file:line:col.

Why here: the project config is parsed in the specs layer; the engine decides with these values
(:mod:`reconciler.engine.ignore`, :mod:`reconciler.engine.windows`) and imports them from here,
as it does :class:`~reconciler.specs.scope.Scope`. ``reconciler.yaml``::

    ignoreChanges:                      # every target
      - paths: [enabled]
        selector: team=growth           # --selector syntax; optional
        names: ["demo-*"]               # shell-style patterns; optional
    syncWindows:
      - {kind: deny, schedule: "0 22 * * 5", duration: 2d6h, name: weekend freeze}
    targets:
      prod:
        ignoreChanges: [{paths: [batchPredictionJob.numConcurrent]}]
        syncWindows: [{kind: allow, schedule: "0 9 * * 1-4", duration: 8h}]

A target's rules and windows are added to the project's.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

from reconciler.contract import cron, fieldpaths

if TYPE_CHECKING:  # the checks' types only: the engine imports these values without jsonschema
    from reconciler.contract.issues import Issue, Located, Path_

__all__ = ["Controls", "IgnoreRule", "SyncWindow", "config_issues", "manifest_issues", "parse_controls",
           "parse_duration", "parse_selector"]

_DURATION: Final = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?\Z")


@dataclass(frozen=True, kw_only=True)
class IgnoreRule:
    """Ignore ``paths`` on the definitions the selector and name patterns choose (all without them)."""

    paths: tuple[str, ...]
    selector: tuple[tuple[str, str, bool], ...] = ()  # (label, value, equal)
    names: tuple[str, ...] = ()

    def matches(self, *, names: Iterable[str], labels: Mapping[str, str]) -> bool:
        if not all((labels.get(k) == v) == eq for k, v, eq in self.selector):
            return False
        return not self.names or any(fnmatch.fnmatchcase(n, p) for n in names for p in self.names)


@dataclass(frozen=True, kw_only=True)
class SyncWindow:
    """Opens at each firing of ``schedule`` (five-field cron, UTC) for ``duration``."""

    kind: Literal["allow", "deny"]
    schedule: str
    duration: timedelta
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or f"{self.kind} {self.schedule!r} for {_duration_text(self.duration)}"

    def as_dict(self) -> dict[str, str]:
        """As reconciler.yaml writes it (a saved plan keeps its windows: apply checks them again)."""
        return {"name": self.name, "kind": self.kind, "schedule": self.schedule,
                "duration": _duration_text(self.duration)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SyncWindow:
        kind = data["kind"]
        if kind not in ("allow", "deny"):
            raise ValueError(f"sync window kind {kind!r} is not allow or deny")
        duration = parse_duration(str(data["duration"]))
        if duration is None:
            raise ValueError(f"sync window duration {data['duration']!r} is not a positive length of time")
        return cls(kind=kind, schedule=str(data["schedule"]), duration=duration, name=str(data.get("name") or ""))


@dataclass(frozen=True, kw_only=True)
class Controls:
    """The ignore rules and sync windows that apply to one target (or the project)."""

    ignore: tuple[IgnoreRule, ...] = ()
    windows: tuple[SyncWindow, ...] = ()
    targets: Mapping[str, Controls] = field(default_factory=dict)

    def for_target(self, name: str | None) -> Controls:
        """The project's rules and windows plus the target's own."""
        own = self.targets.get(name) if name is not None else None
        if own is None:
            return Controls(ignore=self.ignore, windows=self.windows)
        return Controls(ignore=(*self.ignore, *own.ignore), windows=(*self.windows, *own.windows))


def _duration_text(value: timedelta) -> str:
    minutes = int(value.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    return "".join(f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (mins, "m")) if n) or "0m"


def parse_duration(text: str) -> timedelta | None:
    """``2h``, ``1h30m``, ``1d`` as a timedelta; None when malformed or zero."""
    found = _DURATION.match(text)
    if not found or not text:
        return None
    days, hours, minutes = (int(g) if g else 0 for g in found.groups())
    value = timedelta(days=days, hours=hours, minutes=minutes)
    return value if value > timedelta(0) else None


def parse_selector(text: str) -> tuple[tuple[str, str, bool], ...] | None:
    """``team=growth,tier!=critical`` as ``(label, value, equal)`` triples; None when malformed."""
    out: list[tuple[str, str, bool]] = []
    for part in (p.strip() for p in text.split(",")):
        negate = "!=" in part
        key, sep, wanted = part.partition("!=" if negate else "=")
        key, wanted = key.strip(), wanted.strip()
        if not sep or not key or not wanted or "=" in wanted:
            return None
        out.append((key, wanted, not negate))
    return tuple(out)


def _rules(raw: Sequence[Mapping[str, Any]]) -> tuple[IgnoreRule, ...]:
    return tuple(IgnoreRule(paths=tuple(r["paths"]), selector=parse_selector(r["selector"]) or ()
                            if r.get("selector") else (), names=tuple(r.get("names") or ())) for r in raw)


def _windows(raw: Sequence[Mapping[str, Any]]) -> tuple[SyncWindow, ...]:
    return tuple(SyncWindow(kind=w["kind"], schedule=w["schedule"], name=w.get("name") or "",
                            duration=parse_duration(w["duration"]) or timedelta(minutes=1)) for w in raw)


def parse_controls(data: Mapping[str, Any]) -> Controls:
    """A schema-valid config document's controls. Pure."""
    targets = {name: Controls(ignore=_rules(raw.get("ignoreChanges") or ()),
                              windows=_windows(raw.get("syncWindows") or ()))
               for name, raw in (data.get("targets") or {}).items() if isinstance(raw, dict)}
    return Controls(ignore=_rules(data.get("ignoreChanges") or ()), windows=_windows(data.get("syncWindows") or ()),
                    targets={k: v for k, v in targets.items() if v.ignore or v.windows})


def _path_issues(doc: Located, base: Path_, paths: Any) -> list[Issue]:
    from reconciler.contract.issues import issue_at

    issues = []
    for index, path in enumerate(paths if isinstance(paths, list) else ()):
        if isinstance(path, str):
            problem = fieldpaths.check_path(path)
            if problem is not None:
                message, _, hint = problem.partition("; ")
                issues.append(issue_at(doc, (*base, index), message, hint or None))
    return issues


def manifest_issues(doc: Located) -> list[Issue]:
    """A schema-valid manifest's ``spec.ignoreChanges`` paths that the schema does not have."""
    spec = doc.data.get("spec") if isinstance(doc.data, dict) else None
    if not isinstance(spec, dict):
        return []
    return _path_issues(doc, ("spec", "ignoreChanges"), spec.get("ignoreChanges"))


def _window_issues(doc: Located, at: Path_, window: Mapping[str, Any]) -> list[Issue]:
    """A window whose cron cannot be read or never fires, whose duration is not positive, or that
    reopens before it closes: an allow window that never closes restricts nothing (an error); a deny
    window that never closes is a freeze with no end (a warning: README's example uses it)."""
    from reconciler.contract.issues import issue_at

    schedule, duration = window.get("schedule"), window.get("duration")
    issues: list[Issue] = []
    length = parse_duration(duration) if isinstance(duration, str) else None
    if isinstance(duration, str) and length is None:
        issues.append(issue_at(doc, (*at, "duration"), f"duration {duration!r} is not a positive length of time",
                               "write days, hours and minutes, e.g. 30m, 2h, 1h30m or 1d"))
    if not isinstance(schedule, str):
        return issues
    try:
        lists = cron.cron_to_schedule(schedule)
    except cron.CronError as exc:
        return [*issues, issue_at(doc, (*at, "schedule"), f"sync window schedule {schedule!r}: {exc.message}",
                                  exc.hint or "write a five-field cron string (UTC), e.g. '0 22 * * 5'")]
    gap = cron.longest_gap(lists)
    if gap is None:
        reason = cron.never_fires(lists) or "the schedule never fires"
        issues.append(issue_at(doc, (*at, "schedule"), f"sync window schedule {schedule!r}: {reason}, so the "
                               "window never opens", "add a day that exists in those months, or restrict dayOfWeek "
                               "instead"))
    elif length is not None and length >= gap and window.get("kind") == "deny":
        # Argo CD's idiom for a change freeze with no end ('* * * * *' for 1h): kept, but said
        issues.append(issue_at(doc, (*at, "duration"),
                               f"deny window never closes: it opens again within {_duration_text(gap)} of each opening and "
                               f"stays open {duration}, so every apply with changes is refused until it is removed",
                               f"intended as a change freeze, keep it (--force overrides); otherwise make the "
                               f"duration shorter than {_duration_text(gap)}", severity="warning"))
    elif length is not None and length >= gap:
        issues.append(issue_at(doc, (*at, "duration"),
                               f"allow window never closes: duration {duration!r} is not shorter than the "
                               f"{_duration_text(gap)} between openings of {schedule!r}, so it restricts nothing",
                               f"make the duration shorter than {_duration_text(gap)}, or open the window less often"))
    return issues


def _section_issues(doc: Located, base: Path_, section: Mapping[str, Any]) -> list[Issue]:
    from reconciler.contract.issues import issue_at

    issues: list[Issue] = []
    for i, rule in enumerate(section.get("ignoreChanges") or ()):
        issues += _path_issues(doc, (*base, "ignoreChanges", i, "paths"), rule.get("paths"))
        selector = rule.get("selector")
        if isinstance(selector, str) and parse_selector(selector) is None:
            issues.append(issue_at(doc, (*base, "ignoreChanges", i, "selector"),
                                   f"selector {selector!r} is not LABEL=VALUE or LABEL!=VALUE terms",
                                   "write e.g. team=growth,tier!=critical (every term must match)"))
    for i, window in enumerate(section.get("syncWindows") or ()):
        issues += _window_issues(doc, (*base, "syncWindows", i), window)
    return issues


def config_issues(doc: Located) -> list[Issue]:
    """A schema-valid project config's ignore paths, selectors and window schedules that cannot be used."""
    data = doc.data if isinstance(doc.data, dict) else {}
    issues = _section_issues(doc, (), data)
    for name, target in sorted((data.get("targets") or {}).items()):
        if isinstance(target, dict):
            issues += _section_issues(doc, ("targets", name), target)
    return issues
