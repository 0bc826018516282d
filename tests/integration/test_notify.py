"""Notifications end to end: the commands against the served local service, a real HTTP receiver
on loopback for webhooks (body checked against schemas/notification.schema.json, HMAC signature
verified) and for apprise (its json:// service), retries, and a dead channel never failing an apply."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.contract import validators
from reconciler.service.testing import LocalServer

from .conftest import TOKEN
from .receiver import Receiver, serve
from .specs import PROJECT, manifest, write_specs

HOOK_SECRET = "hook-SECRET-5d1e"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from serve()


def _project(channels: str) -> str:
    return PROJECT + "notifications:\n" + channels


def _env(server: LocalServer, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"DATAROBOT_ENDPOINT": server.api_url, "DATAROBOT_API_TOKEN": TOKEN, "NO_COLOR": "1",
            "RECONCILER_LOCAL_DB_URL": f"sqlite:///{tmp_path}/unused.db", **extra}


def _cli(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


def _webhook(name: str = "ops", events: str = "", retries: int = 2) -> str:
    line = f"  - name: {name}\n    webhook: {{urlFrom: {{env: HOOK_URL}}, secretFrom: {{file: hook.key}}}}\n"
    line += f"    retries: {retries}\n    timeoutSeconds: 2\n"
    return line + (f"    events: [{events}]\n" if events else "")


def _bodies(receiver: Receiver, count: int) -> list[dict[str, Any]]:
    got = receiver.wait(count)
    assert len(got) == count, [r.body for r in got]
    out = []
    for request in got:
        expected = "sha256=" + hmac.new(HOOK_SECRET.encode(), request.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(request.headers["x-reconciler-signature-256"], expected)
        body = json.loads(request.body)
        validators.validator("notification").validate(body)
        assert request.headers["x-reconciler-event"] == body["event"]
        assert request.headers["x-reconciler-delivery"] == body["id"]
        out.append(body)
    return out


def test_apply_finished_and_failed_reach_a_signed_webhook(server: LocalServer, tmp_path: Path,
                                                          receiver: Receiver) -> None:
    root = write_specs(tmp_path / "specs", [manifest("demo-a"), manifest("demo-b")], project=_project(_webhook()))
    (root / "hook.key").write_text(HOOK_SECRET + "\n")
    env = _env(server, tmp_path, HOOK_URL=receiver.url)
    done = _cli(env, "apply", str(root), "--auto-approve")
    assert done.exit_code == 0, done.stdout
    (finished,) = _bodies(receiver, 1)
    assert finished["event"] == "apply.finished" and finished["source"] == "cli"
    assert finished["counts"] == {"created": 2, "updated": 0, "deleted": 0, "failed": 0, "skipped": 0}
    assert sorted(d["name"] for d in finished["definitions"]) == ["demo-a", "demo-b"]
    assert finished["target"]["name"] is None and server.api_url.startswith(finished["target"]["endpoint"])
    # a create the service refuses (a credential that does not exist): apply.failed, with the error
    broken = manifest("demo-c")
    broken["spec"]["batchPredictionJob"]["intakeSettings"]["credentialId"] = "0" * 24
    write_specs(root, [manifest("demo-a"), manifest("demo-b"), broken], project=None)
    failed = _cli(env, "apply", str(root), "--auto-approve")
    assert failed.exit_code == 1
    body = _bodies(receiver, 2)[1]
    assert body["event"] == "apply.failed" and body["counts"]["failed"] == 1
    assert body["errors"] and "demo-c" in body["errors"][0]
    # nothing to do: no notification
    write_specs(root, [manifest("demo-a"), manifest("demo-b")], project=None)
    assert _cli(env, "apply", str(root), "--auto-approve").exit_code == 0
    time.sleep(0.3)
    assert len(receiver.requests) == 2


def test_a_refused_plan_and_a_drift_check_with_changes_notify(server: LocalServer, tmp_path: Path,
                                                              receiver: Receiver) -> None:
    root = write_specs(tmp_path / "specs", [manifest("demo-a")],
                       project=_project(_webhook(events="plan.refused, drift.found")))
    (root / "hook.key").write_text(HOOK_SECRET)
    env = _env(server, tmp_path, HOOK_URL=receiver.url)
    assert _cli(env, "plan", str(root)).exit_code == 0  # changes, but not a drift check: nothing sent
    assert _cli(env, "plan", str(root), "--detailed-exitcode").exit_code == 2
    (drift,) = _bodies(receiver, 1)
    assert drift["event"] == "drift.found" and drift["definitions"] == [{"name": "demo-a", "id": None,
                                                                        "action": "create"}]
    doc = manifest("demo-b", job={**manifest("x")["spec"]["batchPredictionJob"], "deploymentId": None})
    doc["spec"]["batchPredictionJob"].pop("deploymentId")
    doc["spec"]["batchPredictionJob"]["deploymentRef"] = {"name": "no such deployment"}
    write_specs(root, [manifest("demo-a"), doc], project=None)
    assert _cli(env, "apply", str(root), "--auto-approve").exit_code == 1
    refused = _bodies(receiver, 2)[1]
    assert refused["event"] == "plan.refused"
    assert "no deployment (by label) named 'no such deployment'" in refused["errors"][0]


def test_a_failed_delivery_is_retried_with_the_same_id(server: LocalServer, tmp_path: Path,
                                                      receiver: Receiver) -> None:
    receiver.statuses = [503]
    root = write_specs(tmp_path / "specs", [manifest("demo-a")], project=_project(_webhook()))
    (root / "hook.key").write_text(HOOK_SECRET)
    assert _cli(_env(server, tmp_path, HOOK_URL=receiver.url), "apply", str(root), "--auto-approve").exit_code == 0
    first, second = _bodies(receiver, 2)
    assert first == second  # the same delivery, retried


def test_an_unreachable_channel_is_logged_and_never_fails_or_blocks_the_apply(
        server: LocalServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    root = write_specs(tmp_path / "specs", [manifest("demo-a")], project=_project(_webhook(retries=1)))
    (root / "hook.key").write_text(HOOK_SECRET)
    caplog.set_level(logging.WARNING, logger="reconciler.notify")
    started = time.monotonic()
    result = _cli(_env(server, tmp_path, HOOK_URL=dead), "apply", str(root), "--auto-approve")
    assert result.exit_code == 0 and "Apply complete: 1 created" in result.stdout
    assert time.monotonic() - started < 15
    assert "notification apply.finished to 'ops' not delivered after 2 attempt(s)" in caplog.text
    assert dead not in caplog.text  # the URL (which may hold a token) is never logged


def test_a_chat_channel_through_apprise_reaches_the_receiver(server: LocalServer, tmp_path: Path,
                                                            receiver: Receiver) -> None:
    apprise_url = receiver.url.replace("http://", "json://")
    root = write_specs(tmp_path / "specs", [manifest("demo-a")], project=_project(
        "  - name: chat\n    apprise: {urlFrom: {file: chat.url}}\n    events: [apply.finished]\n"))
    (root / "chat.url").write_text(apprise_url)
    assert _cli(_env(server, tmp_path), "apply", str(root), "--auto-approve").exit_code == 0
    (request,) = receiver.wait(1)
    sent = json.loads(request.body)
    assert sent["title"] == "reconciler: apply.finished"
    assert "Apply complete: 1 created" in sent["message"] and "- demo-a (create, applied)" in sent["message"]


def test_a_literal_url_is_refused_by_the_schema(tmp_path: Path) -> None:
    root = write_specs(tmp_path / "specs", [manifest("demo-a")], project=_project(
        "  - name: ops\n    webhook: {urlFrom: 'https://hooks.example.com/x'}\n"))
    result = _cli({"NO_COLOR": "1"}, "validate", str(root))
    assert result.exit_code in (1, 3)
    assert "notifications" in (result.stdout + result.stderr)


def test_a_chat_channel_without_apprise_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    import asyncio
    import sys

    from reconciler.notify.send import Channel, envelope, send

    monkeypatch.setitem(sys.modules, "apprise", None)  # as if the [notify] extra were not installed
    caplog.set_level(logging.WARNING, logger="reconciler.notify")
    chat = Channel(name="chat", kind="apprise", url="slack://a/b/c", retries=2)
    (delivery,) = asyncio.run(send([chat], envelope("plan.refused", source="cli", summary="Plan refused.")))
    assert not delivery.ok and delivery.attempts == 1  # no retry can install a package
    assert "pip install 'reconciler-gitops[notify]'" in (delivery.error or "")
    assert "[notify] extra" in caplog.text and "slack://" not in caplog.text
