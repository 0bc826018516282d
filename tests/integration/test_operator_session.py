"""The operator's session (``reconciler/operator/opening.py``): opened from the operator's own
configuration through ``Session.assemble``, the constructor the CLI's ``Session.open`` ends in; its
rules compiled once; it tells only the operator's channels, never reads the operator's own
environment for a secret, and a finalizer is not held by a sync window. Against the served local
service and a loopback webhook receiver."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reconciler.api.client import Client
from reconciler.engine.apply import PlanRefusedError
from reconciler.engine.plan import build_plan
from reconciler.engine.types import Desired
from reconciler.notify.send import Channel, envelope
from reconciler.operator import act, decide, opening
from reconciler.operator.config import ApiSecret, OperatorConfig
from reconciler.operator.status import Result
from reconciler.service.testing import LocalServer
from reconciler.session import Options, Session
from reconciler.specs.config import load_config

from .conftest import TOKEN
from .receiver import Receiver, serve
from .specs import PROJECT, manifest, write_specs

FRI_2330 = datetime(2026, 12, 4, 23, 30, tzinfo=UTC)
WINDOWS = ("syncWindows:\n  - {name: weekend freeze, kind: deny, schedule: '0 22 * * 5', duration: 56h}\n"
           "targets:\n  prod:\n    ignoreChanges:\n      - paths: [batchPredictionJob.numConcurrent]\n")
POLICY = ("apiVersion: reconciler.io/v1alpha1\nkind: Policy\nrules:\n  - name: prod-note\n    targets: [prod]\n"
          "    severity: warn\n    expression: 'false'\n    message: judged as prod\n")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from serve()


def _project(tmp_path: Path, receiver: Receiver) -> Path:
    hook = "notifications:\n  - name: ops\n    webhook: {urlFrom: {env: HOOK_URL}}\n"
    root = write_specs(tmp_path / "specs", [manifest("demo-a")], project=PROJECT + WINDOWS + hook)
    (tmp_path / "policy.yaml").write_text(POLICY)
    return root / "reconciler.yaml"


def _operator(config_file: Path, tmp_path: Path, endpoint: str, **extra: Any) -> Session:
    config = OperatorConfig(secret=ApiSecret("ops", "api"), project=load_config(config_file), target="prod",
                            policy_files=(str(tmp_path / "policy.yaml"),), policy_target="prod", **extra)
    return opening.open_session(config, opening.compile_rules(config), endpoint=endpoint)


def test_the_cli_and_the_operator_open_sessions_through_one_constructor(tmp_path: Path, receiver: Receiver) -> None:
    config_file = _project(tmp_path, receiver)
    options = Options(paths=(config_file.parent,), paths_given=True, target="prod", endpoint="https://dr.example/",
                      environ={"DATAROBOT_API_TOKEN": "t"})
    cli = Session.open(options)
    assert cli == Session.assemble(options, config=load_config(config_file), connection=cli.connection)
    operator = _operator(config_file, tmp_path, "https://dr.example/")
    # the operator's session has what the CLI's has from the same reconciler.yaml and target ...
    assert operator.config_file == cli.config_file and operator.controls == cli.controls
    assert [w.name for w in operator.controls.windows] == ["weekend freeze"]
    assert operator.controls.ignore and operator.scope == cli.scope
    # ... with its own rules (--policy files, seen as --policy-target), endpoint, source and no environment
    assert operator.policy_target == "prod" and operator.policies.digest is not None and not cli.policies
    assert operator.origin().endpoint == "https://dr.example/" and operator.connection.source == "Secret ops/api"
    assert operator.options.source == "operator" and operator.options.environ == {}
    verdicts = operator.steps.manifest_verdicts(decide.document_from_body({**manifest("demo-a"), "metadata": {
        "name": "demo-a", "namespace": "ns"}}))
    assert [(v.rule, v.denied, v.message) for v in verdicts] == [("prod-note", False, "judged as prod")]


def test_the_rules_are_compiled_once_for_every_session_and_the_window_judged_at_one_moment(
        tmp_path: Path, receiver: Receiver) -> None:
    config_file = _project(tmp_path, receiver)
    config = OperatorConfig(secret=ApiSecret("ops", "api"), project=load_config(config_file), target="prod",
                            policy_files=(str(tmp_path / "policy.yaml"),), policy_target="prod")
    rules = opening.compile_rules(config)  # at start, once
    first = opening.open_session(config, rules, endpoint="https://a.example/")
    rotated = opening.open_session(config, rules, endpoint="https://b.example/")  # new credentials
    assert first.policies is rotated.policies is rules.compiled  # not compiled again
    assert rotated.origin().endpoint == "https://b.example/"
    state = first.window(FRI_2330)
    assert state is not None and not state.open and state.now == FRI_2330
    assert first.controls is first.controls  # merged once per session, not per event


def test_the_operator_session_tells_only_the_operators_channels(tmp_path: Path, receiver: Receiver) -> None:
    config_file = _project(tmp_path, receiver)
    body = envelope("apply.finished", source="cli", summary="s", definitions=[], counts={})
    cli = Session.open(Options(paths=(config_file.parent,), paths_given=True, environ={"HOOK_URL": receiver.url}))
    assert cli.wants("apply.finished")
    assert [d.ok for d in asyncio.run(cli.notify(body))] == [True]
    # the operator's channels are its environment's (drift.found only); reconciler.yaml's are not its own
    mine = Channel(name="webhook", kind="webhook", url=receiver.url, events=frozenset({"drift.found"}))
    operator = _operator(config_file, tmp_path, "https://dr.example/", notify=(mine,))
    assert not operator.wants("apply.finished") and operator.wants("drift.found")
    assert asyncio.run(operator.notify(body)) == []
    drift = envelope("drift.found", source="operator", summary="d", definitions=[], counts={})
    assert [d.ok for d in asyncio.run(operator.notify(drift))] == [True]
    assert [json.loads(r.body)["event"] for r in receiver.wait(2)] == ["apply.finished", "drift.found"]


def test_the_operator_session_never_reads_the_operators_environment(server: LocalServer, tmp_path: Path,
                                                                   receiver: Receiver,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPERATOR_OWN_SECRET", "must-not-leave")
    operator = _operator(_project(tmp_path, receiver), tmp_path, server.api_url)
    job = manifest("demo-leak")["spec"]["batchPredictionJob"]
    body = {**job, "name": "demo-leak", "predictionInstance": {"hostName": "collector.example.com",
                                                               "apiKeyFrom": {"env": "OPERATOR_OWN_SECRET"}}}
    plan = build_plan(desired=[Desired(name="demo-leak", body=body, comparable=body)], live=[], scope=None)

    async def go() -> Any:
        async with Client(endpoint=server.api_url, token=TOKEN) as client:
            return await operator.apply(client, plan, at=datetime(2026, 12, 2, 12, tzinfo=UTC))
    with pytest.raises(PlanRefusedError, match="environment variable OPERATOR_OWN_SECRET is not set") as refused:
        asyncio.run(go())
    assert "must-not-leave" not in str(refused.value)


def test_a_finalizer_deletes_inside_a_closed_window(server: LocalServer, tmp_path: Path, receiver: Receiver) -> None:
    operator = _operator(_project(tmp_path, receiver), tmp_path, server.api_url)
    resource = {**manifest("demo-final"), "metadata": {"name": "demo-final", "namespace": "ns"}}

    async def go() -> tuple[Any, tuple[bool, str]]:
        async with Client(endpoint=server.api_url, token=TOKEN) as client:
            created = await act.reconcile(operator, client, decide.parse(resource), recorded_id=None,
                                          mode=decide.Mode.apply, now=datetime(2026, 12, 2, 12, tzinfo=UTC))
            frozen = dataclasses.replace(operator, options=dataclasses.replace(operator.options, clock=lambda: FRI_2330))
            deferred = await act.reconcile(frozen, client, decide.parse(resource), recorded_id=None,
                                           mode=decide.Mode.apply, now=FRI_2330)
            assert deferred.result is Result.adopted  # it matches: nothing to write, nothing deferred
            return created, await act.finalize(frozen, client, recorded_id=created.definition_id, name="demo-final",
                                               deletion_policy="Delete", prevent_destroy=False)
    created, (deleted, message) = asyncio.run(go())
    assert created.result is Result.created and deleted and message == f"deleted definition {created.definition_id}"
