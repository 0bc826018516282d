"""The dashboard's session cookie and CSRF tokens, and where a login may send the browser."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from reconciler.service.ui.common import local_target
from reconciler.service.ui.session import LoginKeys


def test_cookie_is_signed_expiring_and_never_holds_the_token() -> None:
    keys = LoginKeys("service-token-123", max_age=1)
    session, cookie = keys.new(logged_in=True)
    assert "service-token-123" not in cookie
    assert keys.read(cookie) == session
    assert keys.read(cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB")) is None  # forged signature
    assert LoginKeys("another-token", max_age=60).read(cookie) is None  # a new token ends every session
    assert LoginKeys("service-token-123", max_age=60).read(cookie) == session  # every replica accepts it
    time.sleep(2.1)
    assert keys.read(cookie) is None  # expired by its signed timestamp, whatever the browser keeps


def test_csrf_token_belongs_to_one_session() -> None:
    keys = LoginKeys("service-token-123", max_age=60)
    first, _ = keys.new(logged_in=True)
    second, _ = keys.new(logged_in=True)
    assert keys.csrf_ok(first, keys.csrf(first))
    assert not keys.csrf_ok(first, keys.csrf(second)) and not keys.csrf_ok(first, None)
    assert not keys.token_ok("wrong") and keys.token_ok("service-token-123")


def test_without_a_service_token_every_session_is_logged_in() -> None:
    keys = LoginKeys(None, max_age=60)
    session, cookie = keys.new(logged_in=False)
    assert session.logged_in and not keys.requires_login and not keys.token_ok("")
    assert keys.read(cookie) == session


def test_login_only_sends_the_browser_within_the_dashboard() -> None:
    assert local_target("/ui/jobs/?status=RUNNING") == "/ui/jobs/?status=RUNNING"
    for elsewhere in ("https://evil.example/", "//evil.example/ui/", "/api/v2/", "/ui\\..\\x", "", None):
        assert local_target(elsewhere) == "/ui/"


def test_no_ui_leaves_the_dashboard_out(tmp_path: Path) -> None:
    from reconciler.service.testing import LocalServer

    with LocalServer(db_url=f"sqlite:///{tmp_path}/with.db") as server:
        assert httpx.get(f"{server.url}/ui/", timeout=30).status_code == 200  # no token: open on loopback
    with LocalServer(db_url=f"sqlite:///{tmp_path}/without.db", settings={"ui": False}) as server:
        assert httpx.get(f"{server.url}/ui/", timeout=30).status_code == 404
        assert httpx.get(f"{server.url}/ui/static/ui.js", timeout=30).status_code == 404
