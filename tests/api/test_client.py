"""The client against httpx.MockTransport: pagination, retries, Retry-After, safe creates, https."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from reconciler.api import errors
from reconciler.api.client import Client, RetryPolicy, check_endpoint, parse_retry_after, resolve_connection

BASE = "https://dr.example.com/api/v2/"
TOKEN = "tok-SECRET-123456"


class Recorder:
    """Sleeps recorded instead of slept, so retry tests take no time."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def client(handler: Callable[[httpx.Request], httpx.Response], **kw: Any) -> tuple[Client, Recorder]:
    rec = Recorder()
    return Client(endpoint=BASE, token=TOKEN, transport=httpx.MockTransport(handler), sleep=rec,
                  retry=kw.pop("retry", RetryPolicy(attempts=5, initial=0.1)), **kw), rec


def item(i: int, name: str | None = None) -> dict[str, Any]:
    return {"id": f"{i:024x}", "name": name or f"def-{i}", "enabled": False, "batchPredictionJob": {}}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_pagination_follows_absolute_next_links_as_given() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        assert request.headers["Authorization"] == f"Token {TOKEN}"
        offset = int(request.url.params.get("offset", 0))
        nxt = f"{BASE}batchPredictionJobDefinitions/?offset={offset + 2}&limit=2&x=1" if offset < 4 else None
        return httpx.Response(200, json={"count": 2, "next": nxt, "previous": None, "totalCount": 6,
                                         "data": [item(offset), item(offset + 1)]})

    c, _ = client(handler, page_size=2)
    got = run(c.list_definitions())
    assert [g["id"] for g in got] == [f"{i:024x}" for i in range(6)]
    assert seen == [f"{BASE}batchPredictionJobDefinitions/?offset=0&limit=2",
                    f"{BASE}batchPredictionJobDefinitions/?offset=2&limit=2&x=1",
                    f"{BASE}batchPredictionJobDefinitions/?offset=4&limit=2&x=1"]
    assert c.calls["GET"] == 3


def test_next_link_to_another_origin_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": [], "next": "https://evil.example.com/steal"})

    c, _ = client(handler)
    with pytest.raises(errors.APIError, match="another origin"):
        run(c.list_definitions())


def test_retries_429_503_and_honours_retry_after() -> None:
    answers = [httpx.Response(429, headers={"Retry-After": "3"}, json={"message": "slow down"}),
               httpx.Response(503, json={"message": "busy"}),
               httpx.Response(502), httpx.Response(504),
               httpx.Response(200, json=item(1))]

    def handler(request: httpx.Request) -> httpx.Response:
        return answers.pop(0)

    c, rec = client(handler)
    assert run(c.get_definition(f"{1:024x}"))["name"] == "def-1"
    assert c.calls["GET"] == 5
    assert rec.sleeps[0] == 3.0  # Retry-After wins
    assert all(0 < s <= 0.8 for s in rec.sleeps[1:])  # exponential with jitter, capped by attempt
    assert rec.sleeps[3] > 0.1 * 2 ** 3 * 0.5 - 1e-9  # attempt 4: between 0.4 and 0.8


def test_gives_up_after_the_attempts_and_raises_the_mapped_error() -> None:
    c, rec = client(lambda r: httpx.Response(503, json={"message": "down"}, headers={"x-request-id": "r1"}))
    with pytest.raises(errors.APIServerError) as info:
        run(c.get_definition("a" * 24))
    assert info.value.status == 503 and "request id r1" in str(info.value)
    assert c.calls["GET"] == 5 and len(rec.sleeps) == 4


@pytest.mark.parametrize(("status", "cls"), [(404, errors.APINotFoundError), (409, errors.APIConflictError),
                                              (422, errors.APIValidationError), (401, errors.APIAuthError)])
def test_client_errors_are_not_retried(status: int, cls: type[errors.APIError]) -> None:
    c, rec = client(lambda r: httpx.Response(status, json={"message": "no"}))
    with pytest.raises(cls):
        run(c.update_definition("a" * 24, {"enabled": False}))
    assert c.calls["PATCH"] == 1 and rec.sleeps == []


def test_connection_errors_and_timeouts_are_retried_and_wrapped() -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            raise httpx.ConnectError("refused", request=request)
        if calls["n"] == 2:
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(204)

    c, _ = client(handler)
    assert run(c.delete_definition("a" * 24)) is True
    c2, _ = client(lambda r: (_ for _ in ()).throw(httpx.ReadTimeout("slow", request=r)))
    with pytest.raises(errors.APITimeoutError) as info:
        run(c2.delete_definition("a" * 24))
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)


def test_create_after_a_lost_answer_looks_the_name_up_instead_of_posting_again() -> None:
    store: list[dict[str, Any]] = []
    posts = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            posts["n"] += 1
            body = json.loads(request.content)
            store.append({**item(len(store) + 1, body["name"])})
            if posts["n"] == 1:
                raise httpx.ReadTimeout("answer lost after the write", request=request)
            return httpx.Response(202, json=store[-1])
        search = request.url.params.get("searchName", "")
        data = [s for s in store if search in s["name"]] + [item(99, search + "-longer")]
        return httpx.Response(200, json={"data": data, "next": None})

    c, _ = client(handler)
    created = run(c.create_definition({"name": "demo-a", "enabled": False}))
    assert created["name"] == "demo-a" and len(store) == 1 and posts["n"] == 1
    assert c.calls["GET"] == 1


def test_create_retries_when_the_lookup_finds_nothing() -> None:
    posts = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            posts["n"] += 1
            if posts["n"] == 1:
                # dropped on an open connection: the write may or may not have happened (a ConnectError
                # would mean nothing was sent, so no lookup: see test_a_refused_connection_...)
                raise httpx.ReadError("dropped, the write is unknown", request=request)
            return httpx.Response(202, json=item(1, "demo-a"))
        return httpx.Response(200, json={"data": [], "next": None})

    c, _ = client(handler)
    assert run(c.create_definition({"name": "demo-a"}))["id"] == f"{1:024x}"
    assert posts["n"] == 2 and c.calls["GET"] == 1


def test_create_on_429_is_retried_without_lookup() -> None:
    answers = [httpx.Response(429, headers={"Retry-After": "0"}), httpx.Response(202, json=item(1, "demo-a"))]
    c, _ = client(lambda r: answers.pop(0))
    assert run(c.create_definition({"name": "demo-a"}))["name"] == "demo-a"
    assert c.calls == {"POST": 2}


def test_bounded_concurrency() -> None:
    state = {"now": 0, "peak": 0}

    async def handler(request: httpx.Request) -> httpx.Response:
        state["now"] += 1
        state["peak"] = max(state["peak"], state["now"])
        await asyncio.sleep(0.01)
        state["now"] -= 1
        return httpx.Response(200, json=item(1))

    c = Client(endpoint=BASE, token=TOKEN, transport=httpx.MockTransport(handler), concurrency=3)

    async def many() -> None:
        await asyncio.gather(*(c.get_definition("a" * 24) for _ in range(20)))

    run(many())
    assert state["peak"] == 3


def test_https_rule() -> None:
    assert check_endpoint("https://x.example.com/api/v2") == "https://x.example.com/api/v2/"
    assert check_endpoint("http://127.0.0.1:8080/api/v2/").startswith("http://127.0.0.1")
    assert check_endpoint("http://localhost/api/v2/")
    assert check_endpoint("http://[::1]:9/api/v2/")
    with pytest.raises(errors.EndpointError, match="--allow-http"):
        check_endpoint("http://dr.example.com/api/v2")
    assert check_endpoint("http://dr.example.com/api/v2", allow_http=True)
    with pytest.raises(errors.EndpointError):
        Client(endpoint="http://dr.example.com/api/v2", token=TOKEN)
    with pytest.raises(errors.EndpointError, match="credentials"):
        check_endpoint("https://u:p@dr.example.com/")


def test_resolve_connection_precedence(tmp_path: Any) -> None:
    env = {"DATAROBOT_ENDPOINT": "https://env.example.com/api/v2", "DATAROBOT_API_TOKEN": TOKEN}
    assert resolve_connection(environ={}).local
    t = resolve_connection(environ=env)
    assert (t.endpoint, t.source) == ("https://env.example.com/api/v2/", "env")
    (tmp_path / "tok").write_text("filetoken\n")
    t = resolve_connection(endpoint="https://flag.example.com/", token_file=tmp_path / "tok", environ=env)
    assert t.source == "flag" and t.token is not None and t.token.reveal() == "filetoken"
    t = resolve_connection(config_endpoint="https://cfg.example.com/", config_token={"env": "T"}, config_name="prod",
                       environ={"T": "cfgtoken"})
    assert t.source == "config:prod" and TOKEN not in repr(t) and "cfgtoken" not in repr(t)
    with pytest.raises(errors.EndpointError, match="needs a token"):
        resolve_connection(environ={"DATAROBOT_ENDPOINT": "https://e.example.com/"})


def test_a_chosen_target_is_never_redirected_by_the_environment() -> None:
    """``--target prod`` with DATAROBOT_ENDPOINT exported still goes to prod, with prod's token."""
    env = {"DATAROBOT_ENDPOINT": "https://other.example.com/api/v2", "DATAROBOT_API_TOKEN": "other-token",
           "PROD_TOKEN": "prod-token"}
    t = resolve_connection(config_endpoint="https://prod.example.com/api/v2", config_token={"env": "PROD_TOKEN"},
                       config_name="prod", environ=env)
    assert (t.endpoint, t.source) == ("https://prod.example.com/api/v2/", "config:prod")
    assert t.token is not None and t.token.reveal() == "prod-token"
    # A chosen target without an endpoint is the embedded local service, whatever the environment says.
    assert resolve_connection(config_name="local", environ=env).local
    # The flag still wins over the target; the target's tokenFrom still supplies the token.
    t = resolve_connection(endpoint="https://flag.example.com/", config_endpoint="https://prod.example.com/",
                       config_token={"env": "PROD_TOKEN"}, config_name="prod", environ=env)
    assert t.source == "flag" and t.token is not None and t.token.reveal() == "prod-token"
    # No tokenFrom: DATAROBOT_API_TOKEN is the fallback.
    t = resolve_connection(config_endpoint="https://prod.example.com/", config_name="prod", environ=env)
    assert t.token is not None and t.token.reveal() == "other-token"
    # A tokenFrom variable that is not exported is named, never silently replaced by another token.
    with pytest.raises(errors.EndpointError, match="PROD_TOKEN, which is not set"):
        resolve_connection(config_endpoint="https://prod.example.com/", config_token={"env": "PROD_TOKEN"},
                       config_name="prod", environ={"DATAROBOT_API_TOKEN": "other-token"})


def test_parse_retry_after() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    from datetime import UTC, datetime
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now=now) == 30.0


def test_token_never_in_logs_reprs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    answers = [httpx.Response(503), httpx.Response(401, json={"message": "bad token"})]

    def handler(request: httpx.Request) -> httpx.Response:
        return answers.pop(0)

    caplog.set_level(logging.DEBUG)
    c, _ = client(handler)
    with pytest.raises(errors.APIAuthError) as info:
        run(c.get_definition("a" * 24))
    text = caplog.text + repr(c) + str(info.value) + repr(info.value.__dict__)
    assert "retrying after 503" in caplog.text
    assert TOKEN not in text


def test_prefetch_sends_the_next_page_before_the_caller_is_done_and_still_one_call_per_page() -> None:
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params.get("offset", 0))
        seen.append(offset)
        nxt = f"{BASE}batchPredictionJobDefinitions/?offset={offset + 2}&limit=2" if offset < 4 else None
        return httpx.Response(200, json={"data": [item(offset), item(offset + 1)], "next": nxt})

    async def consume(c: Client) -> list[list[int]]:
        requested_when_handed: list[list[int]] = []
        pages = c.iter_pages(page_size=2, prefetch=True)
        async for _page in pages:
            requested_when_handed.append(list(seen))
            await asyncio.sleep(0.01)  # the caller's own work on the page
        return requested_when_handed

    c, _ = client(handler)
    assert run(consume(c)) == [[0, 2], [0, 2, 4], [0, 2, 4]]
    assert c.calls["GET"] == 3  # pages, never more


def test_prefetched_request_is_cancelled_when_the_caller_stops_early() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params.get("offset", 0))
        return httpx.Response(200, json={"data": [item(offset)], "next": f"{BASE}x/?offset={offset + 1}"})

    async def first_only(c: Client) -> int:
        pages = c.iter_pages(page_size=1, prefetch=True)
        async for page in pages:
            await pages.aclose()  # type: ignore[attr-defined]
            return len(page)
        return 0

    c, _ = client(handler)
    assert run(first_only(c)) == 1


def test_a_server_refusing_the_page_size_is_asked_with_the_default_limit() -> None:
    limits: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        limits.append(request.url.params["limit"])
        if request.url.params["limit"] != "100":
            return httpx.Response(422, json={"message": "limit must be <= 100"})
        return httpx.Response(200, json={"data": [item(1)], "next": None})

    c, _ = client(handler)
    assert [d["name"] for d in run(c.list_definitions())] == ["def-1"]
    assert limits == ["1000", "100"]


def test_wait_for_job_reports_each_status_change_and_stops_at_a_terminal_one() -> None:
    states = ["INITIALIZING", "RUNNING", "RUNNING", "COMPLETED"]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": "j" * 24, "status": states.pop(0)})

    c, rec = client(handler)
    changes: list[str] = []
    job = run(c.wait_for_job("j" * 24, poll=0.5, on_status=lambda j: changes.append(j["status"])))
    assert job["status"] == "COMPLETED" and changes == ["INITIALIZING", "RUNNING", "COMPLETED"]
    assert rec.sleeps == [0.5, 0.5, 0.5]


def test_a_refused_connection_is_not_a_lost_write_so_the_create_is_sent_again_without_lookup() -> None:
    posts = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.method == "POST", "a refused connection sent nothing: no lookup needed"
        posts["n"] += 1
        if posts["n"] == 1:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(202, json=item(1, "demo-a"))

    c, _ = client(handler)
    assert run(c.create_definition({"name": "demo-a"}))["name"] == "demo-a"
    assert c.calls == {"POST": 2}


class _Kept(logging.Handler):
    """The records of one logger, whatever its propagation: an in-process CLI run earlier in the
    worker stops the retry logger's propagation (cli.console.setup_logging), and pytest then hangs
    caplog's handler on it as well as on the root, so caplog saw each record once or twice
    depending on which tests ran before."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_lost_create_whose_lookup_fails_costs_one_retry_loop_and_says_so(monkeypatch: pytest.MonkeyPatch,
                                                                          request: pytest.FixtureRequest) -> None:
    """The server went down after the write: the lookups of the retries must not retry on their own
    (6 x 6 attempts per manifest took minutes), and the error says the create may have happened."""
    retry_log = logging.getLogger("reconciler.api.retry")
    kept = _Kept()
    request.addfinalizer(functools.partial(retry_log.setLevel, retry_log.level))
    retry_log.setLevel(logging.INFO)  # setLevel, not the attribute: loggers cache isEnabledFor's answers
    monkeypatch.setattr(retry_log, "handlers", [*retry_log.handlers, kept])  # the list as it was, on teardown

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            raise httpx.ReadError("connection dropped after the write", request=request)
        raise httpx.ConnectError("connection refused", request=request)

    c, rec = client(handler, retry=RetryPolicy(attempts=5, initial=0.1))
    with pytest.raises(errors.APITransportError) as info:
        run(c.create_definition({"name": "demo-a"}))
    assert c.calls == {"POST": 1, "GET": 4} and len(rec.sleeps) == 4
    text = str(info.value)
    assert "the answer was lost (APITransportError on POST" in text and "could not be checked" in text
    assert "reconciler plan" in text and TOKEN not in text
    retries = [r.getMessage() for r in kept.records]
    assert len(retries) == 4 and retries[-1].endswith("(attempt 5/5)")  # no "retrying" after the last one
    assert retries[0].startswith("ReadError from dr.example.com, retrying in ")


def test_a_connection_error_names_the_host_it_could_not_reach() -> None:
    from reconciler.service.testing import free_port

    port = free_port()  # nothing listens there
    endpoint = f"http://127.0.0.1:{port}/api/v2/"

    async def go() -> None:
        async with Client(endpoint=endpoint, token=TOKEN, retry=RetryPolicy(attempts=1)) as c:
            await c.get_definition("6b0e702e7fb07512f4c4fc37")

    with pytest.raises(errors.APIConnectError) as info:
        run(go())
    text = str(info.value)
    assert f"cannot connect to 127.0.0.1:{port}" in text and "check the endpoint" in text and TOKEN not in text
