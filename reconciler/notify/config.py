"""``notifications:`` of reconciler.yaml as channels: each URL and HMAC secret read from the
environment or a file inside the project (the bounded reader apply uses for secrets), at the
moment a notification is sent. A channel whose URL cannot be read is logged and skipped: a
notification never fails a command."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from reconciler import errors
from reconciler.api.secrets import resolve_ref
from reconciler.notify.send import EVENTS, Channel

__all__ = ["channels"]

log = logging.getLogger("reconciler.notify")


def channels(raw: Sequence[Mapping[str, Any]], *, base_dir: str | None, roots: tuple[str, ...],
             environ: Mapping[str, str] | None = None) -> list[Channel]:
    """The channels of a (schema-valid) ``notifications`` list; unreadable ones logged and left out."""
    out: list[Channel] = []
    for item in raw:
        name = str(item.get("name"))
        kind = "webhook" if "webhook" in item else "apprise"
        spec = item[kind]
        try:
            url = resolve_ref(spec["urlFrom"], where=f"notifications[{name}].{kind}.urlFrom", base_dir=base_dir,
                              roots=roots, environ=environ)
            secret = (resolve_ref(spec["secretFrom"], where=f"notifications[{name}].{kind}.secretFrom",
                                  base_dir=base_dir, roots=roots, environ=environ) if spec.get("secretFrom") else None)
        except errors.ReconcilerError as exc:
            log.warning("notification channel %r skipped: %s", name, exc)
            continue
        out.append(Channel(name=name, kind=kind, url=url, secret=secret,
                           events=frozenset(item.get("events") or EVENTS),
                           timeout=float(item.get("timeoutSeconds", 5)), retries=int(item.get("retries", 2))))
    return out

