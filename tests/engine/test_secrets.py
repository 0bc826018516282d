"""Apply reads a secret file only inside the roots its plan carries, whatever validation said: a plan
built in memory, or by another caller, gets the same check right before the file is opened."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from pathlib import Path

import httpx
import pytest

from reconciler.api.client import LOCAL_BASE_URL, Client
from reconciler.api.secrets import SecretError, resolve_secrets, resolver
from reconciler.engine import apply as applying
from reconciler.engine.plan import build_plan
from reconciler.service.app import create_app
from reconciler.service.settings import ServiceSettings

from .helpers import desired

BODY = {"name": "demo-a", "predictionInstance": {"hostName": "collector.example.com", "apiKeyFrom": {"file": ""}}}


def _body(file: str) -> dict[str, object]:
    return {**BODY, "predictionInstance": {"hostName": "collector.example.com", "apiKeyFrom": {"file": file}}}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "keys").mkdir(parents=True)
    (root / "keys" / "key").write_text("the-key\n")
    (root / "keys" / "out").symlink_to(tmp_path)
    (tmp_path / "outside").write_text("not yours")
    return root


def test_a_file_inside_the_roots_is_read(project: Path) -> None:
    resolved = resolve_secrets(_body("keys/key"), base_dir=str(project), roots=(str(project),))
    assert resolved["predictionInstance"] == {"hostName": "collector.example.com", "apiKey": "the-key"}
    # no roots: the manifest's own directory
    assert resolve_secrets(_body("key"), base_dir=str(project / "keys"))["predictionInstance"]["apiKey"] == "the-key"


@pytest.mark.parametrize("file", ["../outside", "keys/out/outside", "/etc/passwd", "keys/../../outside"])
def test_a_file_outside_the_roots_is_never_read(project: Path, file: str) -> None:
    with pytest.raises(SecretError, match=r"predictionInstance.apiKeyFrom: secret file .* is not read: it resolves to "):
        resolve_secrets(_body(file), base_dir=str(project), roots=(str(project),))


def test_without_a_directory_no_file_is_read(project: Path) -> None:
    with pytest.raises(SecretError, match="no project directory is known here"):
        resolve_secrets(_body(str(project / "keys" / "key")), base_dir=None)


def test_what_is_not_a_small_text_file_is_refused_at_once(project: Path) -> None:
    os.mkfifo(project / "keys" / "fifo")
    (project / "keys" / "zero").symlink_to("/dev/zero")
    (project / "keys" / "big").write_bytes(b"k" * (64 * 1024 + 1))
    (project / "keys" / "binary").write_bytes(b"\xff\xfe\x00")
    roots = (str(project), "/dev")
    started = time.monotonic()
    for name, reason in (("fifo", "not a regular file: it is a FIFO"), ("zero", "it is a character device"),
                         ("big", "over the 65536-byte limit for a secret file"), ("binary", "is not UTF-8 text")):
        with pytest.raises(SecretError, match=reason):
            resolve_secrets(_body(f"keys/{name}"), base_dir=str(project), roots=roots)
    assert time.monotonic() - started < 2


def test_apply_refuses_the_whole_plan_before_any_write(project: Path, tmp_path: Path) -> None:
    good = desired("demo-good", enabled=False)
    leaking = desired("demo-leak", enabled=False)
    leaking = dataclasses.replace(leaking, body={**leaking.body, "predictionInstance": {
        "hostName": "collector.example.com", "apiKeyFrom": {"file": "../outside"}}},
        base_dir=str(project), secret_roots=(str(project),))
    plan = build_plan(desired=[good, leaking], live=[], scope=None)
    app = create_app(ServiceSettings(db_url=f"sqlite:///{tmp_path}/local.db"))

    async def go() -> Client:
        async with Client(endpoint=LOCAL_BASE_URL, transport=httpx.ASGITransport(app=app),
                          check_scheme=False) as client:
            with pytest.raises(applying.PlanRefusedError) as refused:
                await applying.apply_plan(plan, client=client, resolve=resolver())
            message = str(refused.value)
            assert message.startswith("nothing was applied: secret references do not resolve: demo-leak")
            assert "secret file '../outside' is not read: it resolves to " in message
            return client

    client = asyncio.run(go())
    assert client.writes == 0
