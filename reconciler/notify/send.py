"""Deliver one notification to its channels: never raises, never waits beyond its bounds.

A webhook gets the JSON body (``schemas/notification.schema.json``) with ``X-Reconciler-Event``,
``X-Reconciler-Delivery`` (the event id, the same in every retry) and, with a secret,
``X-Reconciler-Signature-256: sha256=HEX``: the HMAC-SHA256 of the exact body bytes, as GitHub
signs its webhooks. A chat channel gets a title and a short text through apprise (the [notify]
extra). Each attempt has a timeout; a failed attempt (no answer, 5xx, 429) is retried after a
short backoff; what still fails is logged by channel name (never the URL: chat URLs hold tokens)
and reported as a :class:`Delivery`, never raised: a notification must not fail an apply.

Imports nothing of reconciler but ``extras``: the local service sends its job.failed through it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

__all__ = ["EVENTS", "Channel", "Delivery", "channels_from_env", "envelope", "send", "signature", "text_of"]

log = logging.getLogger("reconciler.notify")

EVENTS: Final = ("apply.finished", "apply.failed", "drift.found", "plan.refused", "job.failed")
SIGNATURE_HEADER: Final = "X-Reconciler-Signature-256"
BACKOFF: Final = (0.5, 1.0, 2.0)  # seconds before the 2nd, 3rd, 4th+ attempt
TEXT_LINES: Final = 20  # definitions and errors listed in a chat message


@dataclass(frozen=True, kw_only=True)
class Channel:
    """One resolved channel: ``kind`` webhook or apprise, the URL and the HMAC secret (values:
    never printed, ``repr`` hides them), the events it takes, per-attempt timeout and retries."""

    name: str
    kind: str
    url: str = field(repr=False)
    secret: str | None = field(default=None, repr=False)
    events: frozenset[str] = frozenset(EVENTS)
    timeout: float = 5.0
    retries: int = 2

    def wants(self, event: str) -> bool:
        return event in self.events


ENV_WEBHOOK: Final = "RECONCILER_NOTIFY_WEBHOOK_URL"
ENV_SECRET: Final = "RECONCILER_NOTIFY_WEBHOOK_SECRET"
ENV_APPRISE: Final = "RECONCILER_NOTIFY_APPRISE_URL"
ENV_EVENTS: Final = "RECONCILER_NOTIFY_EVENTS"


def channels_from_env(environ: Mapping[str, str], *, events: frozenset[str]) -> tuple[Channel, ...]:
    """The channels of a long-running process (``reconciler serve``, ``reconciler operator``; the
    chart fills these from a Secret): ``RECONCILER_NOTIFY_WEBHOOK_URL`` (and ``_WEBHOOK_SECRET`` for
    the signature), ``RECONCILER_NOTIFY_APPRISE_URL``; ``RECONCILER_NOTIFY_EVENTS`` (comma-separated)
    narrows ``events``, the ones this process sends. Never from a flag: no URL or secret in a
    process list."""
    chosen = events
    if environ.get(ENV_EVENTS, "").strip():
        chosen = events & {e.strip() for e in environ[ENV_EVENTS].split(",")}
    out: list[Channel] = []
    if environ.get(ENV_WEBHOOK):
        out.append(Channel(name="webhook", kind="webhook", url=environ[ENV_WEBHOOK],
                           secret=environ.get(ENV_SECRET) or None, events=chosen))
    if environ.get(ENV_APPRISE):
        out.append(Channel(name="apprise", kind="apprise", url=environ[ENV_APPRISE], events=chosen))
    return tuple(out)


@dataclass(frozen=True, kw_only=True)
class Delivery:
    channel: str
    ok: bool
    attempts: int
    error: str | None = None


def envelope(event: str, *, source: str, summary: str, target: Mapping[str, Any] | None = None,
             definitions: Sequence[Mapping[str, Any]] = (), counts: Mapping[str, int] | None = None,
             errors: Sequence[str] = (), job: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A notification body (``schemas/notification.schema.json``, specVersion 1)."""
    if event not in EVENTS:
        raise ValueError(f"unknown notification event {event!r}; known: {', '.join(EVENTS)}")
    return {"specVersion": "1", "id": uuid.uuid4().hex, "event": event,
            "time": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"), "source": source,
            "summary": summary, "target": dict(target) if target is not None else None,
            "definitions": [dict(d) for d in definitions], "counts": dict(counts or {}), "errors": list(errors),
            "job": dict(job) if job is not None else None}


def signature(secret: str, body: bytes) -> str:
    """``sha256=HEX``: HMAC-SHA256 of ``body`` with ``secret``; a receiver compares it in constant time."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def text_of(body: Mapping[str, Any]) -> tuple[str, str]:
    """A chat message: a title and a few lines (definitions, errors), bounded."""
    title = f"reconciler: {body['event']}"
    lines = [str(body.get("summary", ""))]
    target = body.get("target") or {}
    if target.get("name") or target.get("endpoint"):
        lines.append(f"target: {target.get('name') or ''} {target.get('endpoint') or ''}".rstrip())
    for item in list(body.get("definitions") or [])[:TEXT_LINES]:
        parts = [str(item.get(k)) for k in ("action", "outcome") if item.get(k)]
        lines.append(f"- {item.get('name')}" + (f" ({', '.join(parts)})" if parts else "")
                     + (f": {item['error']}" if item.get("error") else ""))
    lines.extend(f"error: {e}" for e in list(body.get("errors") or [])[:TEXT_LINES])
    job = body.get("job")
    if job:
        lines.append(f"job {job.get('id')} of {job.get('definitionName') or job.get('definitionId')}: "
                     f"{job.get('status')}" + (f": {job['message']}" if job.get("message") else ""))
    return title, "\n".join(line for line in lines if line)


def check_url(url: str, *, kind: str) -> str | None:
    """Why a webhook URL is refused (None: fine): https, or http only to a loopback host."""
    if kind != "webhook":
        return None
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname:
        host = parts.hostname
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if loopback:
            return None
        return "an http:// webhook URL is only accepted for a loopback host; use https://"
    return "expected an https:// URL"


async def _post(channel: Channel, data: bytes, headers: Mapping[str, str]) -> str | None:
    """One webhook attempt; None when delivered, else why (and whether to retry: see _retryable)."""
    async with httpx.AsyncClient(timeout=channel.timeout, follow_redirects=False) as http:
        response = await http.post(channel.url, content=data, headers=dict(headers))
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}"


def _apprise(channel: Channel, title: str, text: str) -> str | None:
    from reconciler.extras import require

    require("notify", f"the chat notification channel {channel.name!r} (apprise)")  # one clear message
    import apprise
    sender = apprise.Apprise()
    if not sender.add(channel.url):
        return "apprise does not recognise the URL (check its scheme: slack://, msteams://, mailto://, json://, ...)"
    return None if sender.notify(title=title, body=text) else "apprise could not deliver it (see its log)"


def _retryable(error: str) -> bool:
    return not error.startswith("HTTP 4") or error == "HTTP 429"


async def _deliver(channel: Channel, body: Mapping[str, Any], data: bytes) -> Delivery:
    headers = {"Content-Type": "application/json", "User-Agent": "reconciler",
               "X-Reconciler-Event": str(body["event"]), "X-Reconciler-Delivery": str(body["id"])}
    if channel.secret:
        headers[SIGNATURE_HEADER] = signature(channel.secret, data)
    title, text = text_of(body)
    error: str | None = check_url(channel.url, kind=channel.kind)
    if error is not None:
        log.warning("notification %s to %r not sent: %s", body["event"], channel.name, error)
        return Delivery(channel=channel.name, ok=False, attempts=0, error=error)
    attempts = 0
    for attempt in range(channel.retries + 1):
        if attempt:
            await asyncio.sleep(BACKOFF[min(attempt - 1, len(BACKOFF) - 1)])
        attempts += 1
        try:
            if channel.kind == "webhook":
                error = await _post(channel, data, headers)
            else:
                error = await asyncio.wait_for(asyncio.to_thread(_apprise, channel, title, text),
                                               timeout=channel.timeout)
        except ImportError as exc:  # the [notify] extra is missing: retrying cannot help
            error = str(exc)
            break
        except (httpx.HTTPError, TimeoutError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        except Exception as exc:  # a library bug must not fail the apply either
            error = f"{type(exc).__name__}: {exc}"
        if error is None:
            return Delivery(channel=channel.name, ok=True, attempts=attempts)
        if not _retryable(error):
            break
    log.warning("notification %s to %r not delivered after %d attempt(s): %s", body["event"], channel.name,
                attempts, error)
    return Delivery(channel=channel.name, ok=False, attempts=attempts, error=error)


async def send(channels: Sequence[Channel], body: Mapping[str, Any]) -> list[Delivery]:
    """Send ``body`` to every channel that wants its event, concurrently; never raises."""
    wanted = [c for c in channels if c.wants(str(body["event"]))]
    if not wanted:
        return []
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    try:
        return list(await asyncio.gather(*(_deliver(c, body, data) for c in wanted)))
    except Exception as exc:  # pragma: no cover - _deliver catches everything; belt and braces
        log.warning("notifications for %s failed: %s", body.get("event"), exc)
        return []
