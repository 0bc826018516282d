"""``reconciler schedule``: over manifests and, with ``--live``, over a real local service."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.service.testing import LocalServer
from tests.service.helpers import body, refs

MANIFEST = """\
apiVersion: reconciler.io/v1alpha1
kind: BatchPredictionJobDefinition
metadata:
  name: {name}
spec:
  enabled: {enabled}
  schedule:
    cron: "{cron}"
  batchPredictionJob:
    deploymentId: 64b0c0ffee000000000d0001
    intakeSettings:
      type: s3
      url: s3://bucket/in.csv
      credentialId: 64b0c0ffee000000000c0001
    outputSettings:
      type: s3
      url: s3://bucket/out.csv
      credentialId: 64b0c0ffee000000000c0001
"""


def manifests(tmp_path: Path, crowd: int = 6) -> Path:
    specs = tmp_path / "specs"
    specs.mkdir()
    for i in range(crowd):
        (specs / f"nightly-{i}.yaml").write_text(MANIFEST.format(name=f"nightly-{i}", enabled="true",
                                                                 cron="0 2 * * 1"))
    (specs / "hourly.yaml").write_text(MANIFEST.format(name="hourly", enabled="true", cron="15 * * * *"))
    (specs / "off.yaml").write_text(MANIFEST.format(name="off", enabled="false", cron="0 2 * * 1"))
    return specs


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_json_counts_the_week_names_the_busiest_minute_and_spreads_it(tmp_path: Path) -> None:
    result = invoke("schedule", str(manifests(tmp_path)), "--from", "2026-03-02", "--limit", "2", "--next", "2",
                    "-o", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["tz"] == "UTC" and doc["days"][0] == "2026-03-02" and doc["definitions"] == 7  # "off" never fires
    assert doc["hours"][0][2] == 6 + 1  # Monday 02:00-02:59: the six nightly ones and hourly at 02:15
    assert doc["hours"][1][2] == 1
    assert doc["total_firings"] == 6 + 7 * 24
    top = doc["busiest"][0]
    assert top["at"] == "2026-03-02T02:00:00+00:00" and top["count"] == 6
    assert top["names"] == [f"nightly-{i}" for i in range(6)]
    spread = doc["spread"]
    assert spread["limit"] == 2 and spread["crowded"] == []
    assert len(spread["moves"]) == 4  # two stay at 02:00, four move to quiet minutes
    landed: dict[str, int] = {}
    for move in spread["moves"]:
        assert move["from"] == "0 2 * * 1" and abs(move["shift_minutes"]) <= 59
        landed[move["to"]] = landed.get(move["to"], 0) + 1
    assert max(landed.values()) <= 2 and "15 2 * * 1" not in landed  # not onto hourly's minute when full
    assert len(doc["next"]["hourly"]) == 2
    first = datetime.fromisoformat(doc["next"]["nightly-0"][0])
    assert first > datetime.now(UTC) and first.weekday() == 0 and (first.hour, first.minute) == (2, 0)


def test_text_shows_the_heatmap_in_a_local_time_zone(tmp_path: Path) -> None:
    result = invoke("schedule", str(manifests(tmp_path)), "--from", "2026-03-02", "--tz", "Europe/Berlin",
                    "--no-color")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "Firings per hour, Mon 02 Mar to Sun 08 Mar 2026 (Europe/Berlin)" in text
    assert "6 definition(s) fire at 03:00 on Mon 02 Mar: nightly-0, nightly-1, nightly-2 and 3 more" in text
    monday = next(line for line in text.splitlines() if line.startswith("Mon 02 Mar"))
    assert monday.split()[3:6] == ["1", "1", "1"] and monday.split()[6] == "7"  # 00h, 01h, 02h Berlin; 03h: 6+1
    assert "Spread (at most 1 per minute)" in text and "move " in text


def test_bad_input_is_an_error_that_says_how_to_fix_it(tmp_path: Path) -> None:
    specs = manifests(tmp_path)
    result = invoke("schedule", str(specs), "--tz", "Mars/Olympus")
    assert result.exit_code == 1 and "unknown time zone 'Mars/Olympus'" in result.output
    result = invoke("schedule", str(specs), "--from", "next monday")
    assert result.exit_code == 1 and "YYYY-MM-DD" in result.output
    (specs / "broken.yaml").write_text(MANIFEST.format(name="broken", enabled="true", cron="61 2 * * *"))
    assert invoke("schedule", str(specs)).exit_code == 3  # invalid manifests, as plan says


def test_live_reads_the_definitions_of_a_running_service(tmp_path: Path) -> None:
    with LocalServer(db_url=f"sqlite:///{tmp_path}/live.db", token="schedule-live-token") as server, \
            httpx.Client(base_url=server.api_url, headers=server.headers(), timeout=30) as client:
        ids = refs(client)
        lists = {"minute": [30], "hour": [4], "dayOfMonth": ["*"], "month": ["*"], "dayOfWeek": ["*"]}
        for name, enabled in (("live-a", True), ("live-b", True), ("live-off", False)):
            made = client.post("batchPredictionJobDefinitions/", json=body(ids, name=name, enabled=enabled,
                                                                           schedule=lists))
            assert made.status_code == 202, made.text
        token_file = tmp_path / "token"
        token_file.write_text("schedule-live-token")
        result = invoke("schedule", "--live", "--endpoint", server.api_url, "--token-file", str(token_file),
                        "--allow-http", "--from", "2026-03-02", "-o", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["definitions"] == 2 and sorted(doc["next"]) == ["live-a", "live-b"]
    assert doc["busiest"][0] == {"at": "2026-03-02T04:30:00+00:00", "count": 2, "names": ["live-a", "live-b"]}
    assert invoke("schedule", "--live", str(tmp_path)).exit_code == 1  # paths and --live exclude each other
