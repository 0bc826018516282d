"""Auth, access log, in-process use through ASGITransport, and ``reconciler serve`` as a process."""

from __future__ import annotations

import asyncio
import http.client
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx
import pytest
from typer.testing import CliRunner

from reconciler.cli import app as cli_app
from reconciler.service.app import create_app
from reconciler.service.middleware import redact
from reconciler.service.settings import ServiceSettings, read_token
from reconciler.service.testing import LocalServer, free_port, wait_until_healthy

TOKEN = "serving-test-token-8c2f19d4"


def test_token_is_required_except_for_health(caplog: pytest.LogCaptureFixture) -> None:
    # the server stops (its thread joined) inside the capture: a line is logged just after its
    # response is sent, so leaving the capture first could miss the last one
    with caplog.at_level(logging.INFO, "reconciler.service.access"), LocalServer(token=TOKEN) as server:
        api = server.api_url
        missing = httpx.get(api + "version/")
        assert missing.status_code == 401 and "Authorization: Token" in missing.json()["message"]
        assert httpx.get(api + "version/", headers={"Authorization": "Token nope"}).status_code == 401
        assert httpx.get(api + "version/", headers={"Authorization": f"Token {TOKEN}"}).status_code == 200
        assert httpx.get(api + "version/", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert httpx.get(api + "version/", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
        assert httpx.get(server.url + "/healthz").status_code == 200
        # the documentation is public (a browser cannot send the header); it declares the scheme
        assert httpx.get(server.url + "/docs").status_code == 200
        document = httpx.get(server.url + "/openapi.json").json()
        assert document["components"]["securitySchemes"]["apiToken"]["name"] == "Authorization"
        assert httpx.get(api + "batchPredictionJobDefinitions/").status_code == 401
        httpx.get(api + "deployments/", params={"token": TOKEN, "apiKey": "k-123"},
                  headers={"Authorization": f"Bearer {TOKEN}"})
    lines = [r.getMessage() for r in caplog.records if r.name == "reconciler.service.access"]
    assert any('"GET /api/v2/version/ HTTP/1.1" 401' in line for line in lines)
    assert any("/api/v2/deployments/?token=***&apiKey=***" in line for line in lines), lines
    assert not any(TOKEN in line or "k-123" in line for line in lines)


def test_the_access_log_hides_every_url_encoding_of_the_token(caplog: pytest.LogCaptureFixture) -> None:
    """Read from the log the server writes: a token pasted into a path or a query string, as is,
    percent-encoded (either hex case, or twice), plus-encoded, or under a secret-like name that
    is itself percent-encoded, never shows."""
    token = "tok/en+with space=&%-1f9"
    spellings = {quote(token, safe=""), quote(token, safe="").lower(), quote_plus(token),
                 quote(quote(token, safe=""), safe=""), token.replace(" ", "+")}
    with caplog.at_level(logging.INFO, "reconciler.service.access"), LocalServer(token=token) as server:
        headers = {"Authorization": f"Bearer {token}"}
        for spelled in spellings:
            httpx.get(f"{server.api_url}deployments/{spelled}/", headers=headers)
            httpx.get(f"{server.api_url}deployments/?q={spelled}&api%5Fkey=k-456&limit=1", headers=headers)
    lines = [r.getMessage() for r in caplog.records
             if r.name == "reconciler.service.access" and "/deployments/" in r.getMessage()]
    assert len(lines) == 2 * len(spellings), lines
    for line in lines:
        assert not any(spelled in line for spelled in (*spellings, token, "k-456")), line
    assert all("***" in line for line in lines)
    assert any("/api/v2/deployments/?q=***&api%5Fkey=***&limit=1" in line for line in lines), lines


def test_redact_hides_secret_params_and_the_token() -> None:
    assert redact("GET /x?a=1&api_token=abc&password=p&b=2 tok-xyz", "tok-xyz") == (
        "GET /x?a=1&api_token=***&password=***&b=2 ***")


def test_in_process_through_asgi_transport_without_lifespan(tmp_path: Path) -> None:
    app = create_app(ServiceSettings(db_url=f"sqlite:///{tmp_path}/a/b.db"))

    async def scenario() -> tuple[int, int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://reconciler.local/api/v2/") as client:
            dep = (await client.post("deployments/", json={"label": "d"})).json()["id"]
            made = await client.post("batchPredictionJobDefinitions/", json={
                "deploymentId": dep, "intakeSettings": {"type": "s3", "url": "s3://b/k.csv"}})
            listed = await client.get("batchPredictionJobDefinitions/")
            assert listed.json()["next"] is None
            return made.status_code, listed.json()["totalCount"]

    assert asyncio.run(scenario()) == (202, 1)
    assert (tmp_path / "a" / "b.db").is_file()
    app.state.store.close()


def test_serve_refuses_a_public_host_without_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECONCILER_SERVICE_TOKEN", raising=False)
    result = CliRunner().invoke(cli_app, ["serve", "--host", "0.0.0.0", "--port", "1"])
    assert result.exit_code == 1
    assert "refusing to listen on 0.0.0.0 without a token" in result.output
    unknown = CliRunner().invoke(cli_app, ["serve", "--executor", "nowhere", "--port", "1"])
    assert unknown.exit_code == 1 and unknown.output.startswith("error: ") and "nowhere" in unknown.output


def test_read_token_prefers_the_file(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text(f"{TOKEN}\n", encoding="utf-8")
    assert read_token(token_file=secret, environ={"RECONCILER_SERVICE_TOKEN": "other"}) == TOKEN
    assert read_token(environ={"RECONCILER_SERVICE_TOKEN": " env-token "}) == "env-token"
    assert read_token(environ={}) is None
    (tmp_path / "empty").write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="empty"):
        read_token(token_file=tmp_path / "empty")


def test_serve_process_logs_each_request_and_stops_gracefully(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN, encoding="utf-8")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "RECONCILER_SERVICE_TOKEN"}
    process = subprocess.Popen(
        [sys.executable, "-c", "from reconciler.cli import main; main()", "serve", "--port", str(port),
         "--db", f"sqlite:///{tmp_path}/serve.db", "--token-file", str(token_file)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", process=process)  # type: ignore[arg-type]
        headers = {"Authorization": f"Token {TOKEN}"}
        assert httpx.get(f"http://127.0.0.1:{port}/api/v2/version/", headers=headers).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/api/v2/version/?token={TOKEN}").status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    # uvicorn shuts down gracefully, then re-raises the captured SIGTERM (exit status -15)
    assert process.returncode in (0, -signal.SIGTERM), stderr[-2000:]
    assert "token required" in stderr and TOKEN not in stderr
    assert stderr.count('"GET /api/v2/version/') == 2 and "token=***" in stderr
    assert "Shutting down" in stderr and "Finished server process" in stderr


def test_idle_keep_alive_connections_outlive_the_sdks_poll_interval() -> None:
    """The SDK polls a job every 5 s on one pooled connection and does not reconnect when the server
    closed it meanwhile; uvicorn's default closes idle connections after 5 s. Both the test helper
    (thread) and ``reconciler serve`` (process) keep a connection idle for 6 s usable."""
    with LocalServer() as in_thread, LocalServer(separate_process=True) as served:
        connections = [http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                       for server in (in_thread, served)]
        sockets = []
        for connection in connections:
            connection.request("GET", "/api/v2/version/")
            first = connection.getresponse()
            assert first.status == 200 and first.read()
            sockets.append(connection.sock)
        time.sleep(6)
        for connection, sock in zip(connections, sockets, strict=True):
            connection.request("GET", "/api/v2/version/")  # raises RemoteDisconnected if it was closed
            again = connection.getresponse()
            assert again.status == 200 and again.read()
            assert connection.sock is sock  # the same TCP connection, not a new one
            connection.close()
