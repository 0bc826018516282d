"""Pairing: desired definitions matched to live ones, before any diffing. Pure: no I/O.

Like gitops-engine's ``Reconcile``: one list of ``(desired | None, live | None)`` pairs.
``desired`` without ``live`` is a create; ``live`` without ``desired`` a prune candidate.
Matching is by a recorded identity first (``identities``: the live id a caller recorded for a
definition, such as the operator's ``status.definitionId``: that definition is the match whatever
its live name, so a rename behind the caller's back is drift), then by definition name; a manifest
whose name matches nothing is then matched through its ``previousNames`` (a rename: an update of the
same id, never delete + create).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from reconciler.engine.types import Desired, Live

__all__ = ["MatchBy", "Pair", "pair"]


class MatchBy(StrEnum):
    id = "id"
    name = "name"
    previous_name = "previous_name"
    none = "none"


@dataclass(frozen=True, slots=True)
class Pair:
    desired: Desired | None
    live: Live | None
    by: MatchBy = MatchBy.none

    @property
    def name(self) -> str:
        if self.desired is not None:
            return self.desired.name
        assert self.live is not None
        return self.live.name


def pair(*, desired: Sequence[Desired], live: Sequence[Live],
         identities: Mapping[str, str] | None = None) -> tuple[Pair, ...]:
    """Pairs sorted by name (then live id). Live definitions sharing a name (the API forbids it,
    but a store may hold one) are matched oldest-id-first; the others stay unpaired.
    ``identities``: definition name -> the live id recorded for it, matched before any name."""
    by_id = {item.id: item for item in live}
    taken: set[str] = set()
    out: list[Pair] = []
    unmatched: list[Desired] = []
    for want in desired:
        recorded = by_id.get((identities or {}).get(want.name, ""))
        if recorded is not None and recorded.id not in taken:
            taken.add(recorded.id)
            out.append(Pair(want, recorded, MatchBy.id))
        else:
            unmatched.append(want)
    by_name: dict[str, list[Live]] = {}
    for item in sorted(live, key=lambda x: x.id):
        if item.id not in taken:
            by_name.setdefault(item.name, []).append(item)
    waiting: list[Desired] = []
    for want in unmatched:
        candidates = by_name.get(want.name)
        if candidates:
            same = candidates.pop(0)
            taken.add(same.id)
            out.append(Pair(want, same, MatchBy.name))
        else:
            waiting.append(want)
    for want in waiting:
        match: Live | None = None
        for old in want.previous_names:
            candidates = by_name.get(old)
            if candidates:
                match = candidates.pop(0)
                break
        if match is not None:
            taken.add(match.id)
            out.append(Pair(want, match, MatchBy.previous_name))
        else:
            out.append(Pair(want, None, MatchBy.none))
    out.extend(Pair(None, item, MatchBy.none) for item in live if item.id not in taken)
    out.sort(key=lambda p: (p.name, p.live.id if p.live else ""))
    return tuple(out)
