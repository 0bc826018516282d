"""Ignore rules, suspend and sync windows end to end: the commands against the served local service."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.engine import windows
from reconciler.service.testing import LocalServer
from reconciler.session import Options, Session, run

from .conftest import TOKEN
from .specs import PROJECT, manifest, write_specs

SCHEDULE = {"cron": "0 2 * * *"}


def _env(server: LocalServer, tmp_path: Path) -> dict[str, str]:
    return {"DATAROBOT_ENDPOINT": server.api_url, "DATAROBOT_API_TOKEN": TOKEN, "NO_COLOR": "1",
            "RECONCILER_LOCAL_DB_URL": f"sqlite:///{tmp_path}/unused.db"}


def _cli(env: dict[str, str], *args: str, code: int) -> Any:
    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == code, (args, result.stdout, result.stderr)
    return result


def _live(server: LocalServer) -> dict[str, dict[str, Any]]:
    with httpx.Client(headers={"Authorization": f"Token {TOKEN}"}) as h:
        data = h.get(server.api_url + "batchPredictionJobDefinitions/").json()["data"]
    return {item["name"]: item for item in data}


def _patch(server: LocalServer, definition_id: str, body: dict[str, Any]) -> None:
    with httpx.Client(headers={"Authorization": f"Token {TOKEN}"}) as h:
        h.patch(server.api_url + f"batchPredictionJobDefinitions/{definition_id}", json=body).raise_for_status()


# -- ignore rules ----------------------------------------------------------------------------------

def test_on_call_disables_a_definition_and_the_next_apply_leaves_it_disabled(server: LocalServer,
                                                                             tmp_path: Path) -> None:
    env = _env(server, tmp_path)
    docs = [manifest("demo-a", enabled=True, schedule=SCHEDULE, ignoreChanges=["enabled"]),
            manifest("demo-b", enabled=True, schedule=SCHEDULE)]
    root = write_specs(tmp_path / "specs", docs)
    _cli(env, "apply", "-p", str(root), "--auto-approve", code=0)
    live = _live(server)
    assert live["demo-a"]["enabled"] is True  # an ignored field is sent on create
    for name in ("demo-a", "demo-b"):  # the incident: both disabled in the UI
        _patch(server, live[name]["id"], {"enabled": False})

    shown = _cli(env, "plan", str(root), "-o", "json", code=0)
    data = json.loads(shown.stdout)
    assert data["summary"]["ignored"] == 1 and data["summary"]["update"] == 1
    (noop,) = [a for a in data["actions"] if a["name"] == "demo-a"]
    assert noop["kind"] == "noop" and noop["ignored"] == [{"path": "enabled", "op": "change", "old": False,
                                                           "new": True}]
    text = _cli(env, "plan", str(root), code=0).stdout
    assert "Plan: 0 to create, 1 to update, 0 to delete. 1 difference ignored." in text
    assert "demo-a: enabled: live false, manifest true" in text
    markdown = _cli(env, "plan", str(root), "-o", "markdown", code=0).stdout
    assert "1 difference ignored (ignoreChanges), not applied" in markdown and "`demo-a` enabled" in markdown

    _cli(env, "apply", "-p", str(root), "--auto-approve", code=0)
    live = _live(server)
    assert live["demo-a"]["enabled"] is False  # still disabled: the apply did not re-enable it
    assert live["demo-b"]["enabled"] is True  # no rule: corrected as before


def test_a_config_rule_keeps_a_hand_set_nested_field_and_still_updates_the_rest(server: LocalServer,
                                                                               tmp_path: Path) -> None:
    env = _env(server, tmp_path)
    project = PROJECT + ("ignoreChanges:\n  - paths: [batchPredictionJob.intakeSettings.url]\n"
                         "    selector: team=growth\n    names: ['demo-*']\n")
    doc = manifest("demo-a")
    doc["metadata"]["labels"] = {"team": "growth"}
    root = write_specs(tmp_path / "specs", [doc], project=project)
    _cli(env, "apply", "-p", str(root), "--auto-approve", code=0)
    _patch(server, _live(server)["demo-a"]["id"], {"intakeSettings": {
        "type": "s3", "url": "s3://bucket/moved-by-hand.csv", "credentialId": doc["spec"]["batchPredictionJob"][
            "intakeSettings"]["credentialId"]}})
    doc["spec"]["batchPredictionJob"]["passthroughColumns"] = ["id"]
    write_specs(root, [doc], project=project)
    applied = _cli(env, "apply", "-p", str(root), "--auto-approve", code=0)
    assert "(1 change) (1 difference ignored)" in applied.stdout
    job = _live(server)["demo-a"]["batchPredictionJob"]
    assert job["intakeSettings"]["url"] == "s3://bucket/moved-by-hand.csv" and job["passthroughColumns"] == ["id"]
    # another team's manifest is not selected by the rule: its url is corrected
    doc["metadata"]["labels"] = {"team": "risk"}
    write_specs(root, [doc], project=project)
    assert "(1 change)" in _cli(env, "plan", str(root), code=0).stdout


def test_a_path_the_schema_does_not_have_is_a_located_error(tmp_path: Path) -> None:
    doc = manifest("demo-a", ignoreChanges=["enabled", "batchPredictionJob.numConcurent"])
    root = write_specs(tmp_path / "specs", [doc])
    result = _cli({"NO_COLOR": "1"}, "validate", str(root), code=3)
    file = root / "demo-a.yaml"
    line = next(i for i, text in enumerate(file.read_text().splitlines(), 1) if "numConcurent" in text)
    assert f"{file}:{line}:" in result.stdout
    assert "unknown field path 'batchPredictionJob.numConcurent'" in result.stdout
    assert "did you mean `batchPredictionJob.numConcurrent`?" in result.stdout
    # in reconciler.yaml too, for a target's rule
    bad = PROJECT + "targets:\n  prod:\n    ignoreChanges:\n      - paths: [enabeld]\n"
    write_specs(root, [manifest("demo-a")], project=bad)
    result = _cli({"NO_COLOR": "1"}, "validate", str(root), code=3)
    assert f"{root / 'reconciler.yaml'}:10:" in result.stdout and "did you mean `enabled`?" in result.stdout
    result = _cli({"NO_COLOR": "1", "RECONCILER_LOCAL_DB_URL": f"sqlite:///{tmp_path}/x.db"}, "plan", str(root),
                  code=1)
    assert "reconciler.yaml:10:" in result.stderr and "did you mean `enabled`?" in result.stderr


# -- suspend ---------------------------------------------------------------------------------------

def test_a_suspended_definition_is_listed_and_nothing_is_written_for_it(server: LocalServer, tmp_path: Path) -> None:
    env = _env(server, tmp_path)
    root = write_specs(tmp_path / "specs", [manifest("demo-a"), manifest("demo-b", suspend=True)])
    applied = _cli(env, "apply", "-p", str(root), "--auto-approve", code=0)
    assert "Suspended (spec.suspend), nothing written (1):\n  demo-b (would create)" in applied.stdout
    assert set(_live(server)) == {"demo-a"}
    write_specs(root, [manifest("demo-a"), manifest("demo-b")])
    _cli(env, "apply", "-p", str(root), "--auto-approve", code=0)
    b_id = _live(server)["demo-b"]["id"]
    # suspended again, with a change, and pruned: neither updated nor deleted
    changed = manifest("demo-b", suspend=True)
    changed["spec"]["batchPredictionJob"]["passthroughColumns"] = ["id"]
    write_specs(root, [manifest("demo-a"), changed])
    plan = json.loads(_cli(env, "plan", str(root), "--prune", "-o", "json", code=0).stdout)
    assert plan["suspended"] == [{"name": "demo-b", "id": b_id, "pending": "update", "changes": 1,
                                  "source": f"{root / 'demo-b.yaml'}:1"}]
    assert plan["summary"]["suspended"] == 1 and not plan["has_changes"]
    markdown = _cli(env, "plan", str(root), "-o", "markdown", code=0).stdout
    assert f"**Suspended** (`spec.suspend`), nothing written (1):\n- demo-b [id {b_id}] (would update, 1 change)" \
        in markdown
    _cli(env, "apply", "-p", str(root), "--prune", "--auto-approve", code=0)
    destroy = _cli(env, "plan", str(root), "--destroy", code=0).stdout
    assert "demo-b" not in destroy.split("Suspended")[0] and "(would delete)" in destroy
    live = _live(server)
    assert live["demo-b"]["id"] == b_id and live["demo-b"]["batchPredictionJob"]["passthroughColumns"] != ["id"]


# -- sync windows ----------------------------------------------------------------------------------

def _window_project(kind: str, opened: datetime, duration: str, *, extra: str = "") -> str:
    """A window opening every day at ``opened``'s hour and minute."""
    return (PROJECT + f"syncWindows:\n  - kind: {kind}\n    name: {kind}-test\n"
            f"    schedule: \"{opened.minute} {opened.hour} * * *\"\n    duration: {duration}\n" + extra)


def test_apply_in_a_deny_window_refuses_says_when_it_ends_and_force_overrides(server: LocalServer,
                                                                              tmp_path: Path) -> None:
    env = _env(server, tmp_path)
    opened = (datetime.now(UTC) - timedelta(minutes=5)).replace(second=0, microsecond=0)
    ends = windows.when(opened + timedelta(hours=1))
    root = write_specs(tmp_path / "specs", [manifest("demo-a")], project=_window_project("deny", opened, "1h"))
    planned = _cli(env, "plan", str(root), "--out", str(tmp_path / "plan.json"), code=0)
    assert f"Sync window: closed (deny window deny-test is open until {ends})." in planned.stdout
    assert json.loads((tmp_path / "plan.json").read_text())["sync_window"]["open"] is False
    refused = _cli(env, "apply", "-p", str(root), "--auto-approve", code=1)
    assert f"apply refused: deny window deny-test is open until {ends}. Nothing was written" in refused.stderr
    assert "--force" in refused.stderr
    _cli(env, "apply", str(tmp_path / "plan.json"), code=1)  # a saved plan: the window is checked at apply time
    assert _live(server) == {}
    forced = _cli(env, "apply", "-p", str(root), "--auto-approve", "--force", code=0)
    assert f"sync window overridden by --force: deny window deny-test is open until {ends}" in forced.stdout
    assert set(_live(server)) == {"demo-a"}
    # nothing to write: no refusal, exit 0
    _cli(env, "apply", "-p", str(root), "--auto-approve", code=0)


def test_allow_windows_and_deny_wins_from_the_command_line(server: LocalServer, tmp_path: Path) -> None:
    env = _env(server, tmp_path)
    now = datetime.now(UTC)
    later = (now + timedelta(hours=2)).replace(second=0, microsecond=0)
    root = write_specs(tmp_path / "specs", [manifest("demo-a")], project=_window_project("allow", later, "1h"))
    refused = _cli(env, "apply", "-p", str(root), "--auto-approve", code=1)
    assert f"outside every allow window; writes are allowed from {windows.when(later)}" in refused.stderr
    opened = (now - timedelta(minutes=5)).replace(second=0, microsecond=0)
    deny = (f"  - kind: deny\n    schedule: \"{opened.minute} {opened.hour} * * *\"\n    duration: 30m\n")
    root = write_specs(root, [manifest("demo-a")], project=_window_project("allow", opened, "1h", extra=deny))
    refused = _cli(env, "apply", "-p", str(root), "--auto-approve", code=1)
    assert "apply refused: deny window deny" in refused.stderr
    root = write_specs(root, [manifest("demo-a")], project=_window_project("allow", opened, "1h"))
    assert "Sync window: open (inside allow window allow-test)." in _cli(
        env, "apply", "-p", str(root), "--auto-approve", code=0).stdout


def test_the_session_decides_at_its_clock(server: LocalServer, tmp_path: Path) -> None:
    """Exact times through the session's injectable clock: the same plan is refused inside the
    window and applied after it."""
    project = PROJECT + ("targets:\n  staging:\n    endpoint: " + server.api_url + "\n    tokenFrom: {env: TOK}\n"
                         "    syncWindows:\n      - {kind: deny, schedule: '0 22 * * 5', duration: 2d8h, "
                         "name: weekend freeze}\n")
    root = write_specs(tmp_path / "specs", [manifest("demo-a")], project=project)
    moments = iter([datetime(2026, 12, 4, 23, 30, tzinfo=UTC), datetime(2026, 12, 4, 23, 31, tzinfo=UTC),
                    datetime(2026, 12, 7, 6, 0, tzinfo=UTC)])
    session = Session.open(Options(paths=(root,), paths_given=True, target="staging", environ={"TOK": TOKEN},
                                   clock=lambda: next(moments)))
    manifests = session.load()

    async def work() -> None:
        async with session.client() as client:
            plan = await session.plan(client, manifests)
            assert plan.window is not None and plan.window.until == datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
            with pytest.raises(windows.WindowClosed, match="weekend freeze is open until 2026-12-07 06:00 UTC"):
                await session.apply(client, plan)
            assert _live(server) == {}
            outcome = await session.apply(client, plan)  # Monday 06:00: the window has closed
            assert outcome.ok

    run(work())
    assert set(_live(server)) == {"demo-a"}


def test_watch_shows_the_controls_and_its_apply_honours_the_window(server: LocalServer, tmp_path: Path) -> None:
    """``watch --apply`` goes through the session: suspended and ignored lines in its output, and
    an apply inside a deny window is refused (nothing written) until the window has ended."""
    import threading

    from reconciler.watch import watch_loop

    project = PROJECT + ("syncWindows:\n  - {kind: deny, schedule: '0 22 * * 5', duration: 2d8h, "
                         "name: weekend freeze}\n")
    root = write_specs(tmp_path / "specs", [manifest("demo-a"), manifest("demo-b", suspend=True)], project=project)
    moments = [datetime(2026, 12, 4, 23, 30, tzinfo=UTC)]
    environ = {"DATAROBOT_ENDPOINT": server.api_url, "DATAROBOT_API_TOKEN": TOKEN}
    lines: list[str] = []
    stop = threading.Event()

    def open_session() -> Session:
        return Session.open(Options(paths=(root,), paths_given=True, environ=environ, clock=lambda: moments[0]))

    def emit(line: str) -> None:
        lines.append(line)
        if "apply failed" in line or line == "applied":
            stop.set()

    watch_loop(paths=[root], emit=emit, open_session=open_session, apply=True, debounce_ms=50, stop_event=stop)
    text = "\n".join(lines)
    assert "Suspended (spec.suspend), nothing written (1):" in text and "  demo-b (would create)" in text
    assert "Sync window: closed (deny window weekend freeze is open until 2026-12-07 06:00 UTC)." in text
    assert "error: apply refused: deny window weekend freeze is open until 2026-12-07 06:00 UTC" in text
    assert _live(server) == {}
    moments[0] = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
    lines.clear()
    stop.clear()
    watch_loop(paths=[root], emit=emit, open_session=open_session, apply=True, debounce_ms=50, stop_event=stop)
    assert "applied" in lines and set(_live(server)) == {"demo-a"}


def test_windows_that_never_open_never_close_or_last_no_time_are_located_errors(tmp_path: Path) -> None:
    project = PROJECT + ("syncWindows:\n"
                         "  - {kind: deny, schedule: '0 0 31 2 *', duration: 1h}\n"   # line 8: 31 February
                         "  - {kind: allow, schedule: '0 * * * *', duration: 2h}\n"  # line 9: reopens before closing
                         "  - {kind: deny, schedule: '0 22 * * 5', duration: 0m}\n"  # line 10: no time at all
                         "targets:\n  prod:\n    syncWindows:\n"
                         "      - {kind: allow, schedule: '0 8 * * 1-5', duration: 3d}\n")  # line 14: Fri to Mon is 3d
    root = write_specs(tmp_path / "specs", [manifest("demo-a")], project=project)
    config = root / "reconciler.yaml"
    result = _cli({"NO_COLOR": "1"}, "validate", str(root), code=3)
    out = result.stdout
    assert (f"{config}:8:28: syncWindows[0].schedule: sync window schedule '0 0 31 2 *': day(s) 31 never occur in "
            "Feb: the schedule never fires, so the window never opens") in out
    assert "hint: add a day that exists in those months, or restrict dayOfWeek instead" in out
    assert (f"{config}:9:52: syncWindows[1].duration: allow window never closes: duration '2h' is not shorter than "
            "the 1h between openings of '0 * * * *', so it restricts nothing") in out
    assert "hint: make the duration shorter than 1h, or open the window less often" in out
    assert f"{config}:10:52: syncWindows[2].duration: duration '0m' is not a positive length of time" in out
    assert (f"{config}:14:58: targets.prod.syncWindows[0].duration: allow window never closes: duration '3d' is not "
            "shorter than the 3d between openings of '0 8 * * 1-5'") in out
    assert "4 error(s)" in out and "Traceback" not in out
    # plan refuses the same config before reading anything, with the same located lines
    planned = _cli({"NO_COLOR": "1", "RECONCILER_LOCAL_DB_URL": f"sqlite:///{tmp_path}/x.db"}, "plan", str(root),
                   code=1)
    assert f"{config}:8:28: syncWindows[0].schedule:" in planned.stderr
    assert f"{config}:14:58: targets.prod.syncWindows[0].duration:" in planned.stderr


def test_a_deny_window_that_never_closes_is_a_freeze_with_a_warning(server: LocalServer, tmp_path: Path) -> None:
    """Argo CD's idiom for a freeze with no end (README's example): kept, and validate says what it does."""
    project = PROJECT + "syncWindows:\n  - {name: freeze, kind: deny, schedule: '* * * * *', duration: 1h}\n"
    root = write_specs(tmp_path / "specs", [manifest("demo-a")], project=project)
    out = _cli({"NO_COLOR": "1"}, "validate", str(root), code=0).stdout
    assert (f"{root / 'reconciler.yaml'}:8:65: warning: syncWindows[0].duration: deny window never closes: it opens "
            "again within 1m of each opening and stays open 1h, so every apply with changes is refused until it is "
            "removed") in out
    assert "OK: 1 manifest(s) in 1 file(s): 0 error(s), 1 warning(s)" in out
    refused = _cli(_env(server, tmp_path), "apply", "-p", str(root), "--auto-approve", code=1)
    assert "apply refused: deny window freeze is open and does not close within 400 days" in refused.stderr


def test_more_windows_than_a_list_may_hold_is_a_located_error(tmp_path: Path) -> None:
    """Each window is walked at every decision (plan, apply, the operator): 100 per list at most, so
    a generated config cannot make one plan take minutes (1,500 windows took over 5 minutes)."""
    windows_ = "".join(f"  - {{kind: deny, schedule: '{i % 60} {i // 60} * * 1', duration: 30m}}\n" for i in range(101))
    root = write_specs(tmp_path / "specs", [manifest("demo-a")], project=PROJECT + "syncWindows:\n" + windows_)
    result = _cli({"NO_COLOR": "1"}, "validate", str(root), code=3)
    assert f"{root / 'reconciler.yaml'}:8:3: syncWindows: expected at most 100 item(s), got 101" in result.stdout
    write_specs(root, [manifest("demo-a")], project=PROJECT + "syncWindows:\n" + windows_.split("\n", 1)[1])
    _cli({"NO_COLOR": "1"}, "validate", str(root), code=0)
