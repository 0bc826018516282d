"""The listing's spliced bytes (``listing.definitions_page``) parse to what the decoded path
(``render.definition`` of each record, ``render.envelope``) gives, on a varied corpus: schedules
or none, enabled or not, write-only keys, non-ASCII text, NaN and integers beyond 64 bits from
older rows, filters and every page boundary."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from reconciler.service import ids, listing, render
from reconciler.service.records import DefinitionRecord
from reconciler.service.responses import dumps
from reconciler.service.store import Store
from reconciler.service.store.tables import definitions

USER = {"username": "t\u00e9", "userId": "0" * 24, "fullName": "T \u2713 \"q\""}
NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = (f"sqlite:///{tmp_path}/l.db" if request.param == "sqlite"
           else str(request.getfixturevalue("postgres_server").create_database()))
    s = Store(url)
    yield s
    s.close()


def _corpus(odd: str) -> list[DefinitionRecord]:
    """Forty definitions; ``odd`` adds older rows' values: "nan" (NaN in a job) or "bigint"."""
    out = []
    for i in range(40):
        job: dict[str, Any] = {"deploymentId": "a" * 24, "numConcurrent": 1 + i % 3,
                               "intakeSettings": {"type": "s3", "url": f"s3://b/\u00fc-{i}.csv"},
                               "outputSettings": {"type": "localFile"}, "columnNamesRemapping": {"a\"b": "c\\d"}}
        if i % 7 == 0:
            job["predictionInstance"] = {"hostName": "h", "apiKey": "secret", "datarobotKey": "dk", "sslEnabled": True}
        if i % 11 == 0:
            job["note"] = "Infinity and NaN, said as words"
        if i % 13 == 5:
            job["threshold"] = float("nan") if odd == "nan" else 2**70
        schedule: dict[str, list[int | str]] | None = None if i % 4 == 0 else {"minute": [i % 60], "hour": ["*"], "dayOfMonth": ["*"], "month": ["*"],
                                            "dayOfWeek": [i % 7]}
        created = f"2026-01-01T00:00:{i:02d}.000000Z"
        out.append(DefinitionRecord(
            id=f"{i:024x}", name=f"def-{i:02d}-\u65e5\u672c", enabled=i % 3 != 0 and schedule is not None,
            schedule=schedule, job=job, created=created, updated=created, created_by=USER, updated_by=USER,
            last_started_job_status="COMPLETED" if i % 5 == 0 else None,
            last_started_job_time=created if i % 5 == 0 else None,
            last_successful_run_time=created if i % 10 == 0 else None))
    return out


@pytest.mark.parametrize("odd", ["nan", "bigint"])
def test_the_spliced_page_parses_as_the_decoded_one(store: Store, odd: str) -> None:
    with store.engine.begin() as conn:  # rows as stored, references aside
        conn.execute(sa.insert(definitions), [store._definition_row(r) for r in _corpus(odd)])
    compared = 0
    for search, deployment in ((None, None), ("def-1", None), (None, "a" * 24), ("\u65e5", None), ("none", None)):
        for offset, limit in ((0, 1000), (0, 7), (7, 7), (35, 7), (39, 1), (40, 5)):
            def link(at: int, size: int = limit) -> str:
                return f"http://h/api/v2/batchPredictionJobDefinitions/?offset={at}&limit={size}"

            page = store.list_definitions(offset=offset, limit=limit, search_name=search, deployment_id=deployment)
            decoded = render.envelope(page, [render.definition(r, now=NOW) for r in page.items],
                                      offset=offset, limit=limit, link=link)
            rows, total = store.list_definition_rows(offset=offset, limit=limit, search_name=search,
                                                     deployment_id=deployment)
            spliced = listing.definitions_page(rows, total=total, offset=offset, limit=limit, now=NOW, link=link)
            assert json.loads(spliced) == json.loads(dumps(decoded)), (search, offset, limit)
            compared += len(rows)
    assert compared > 100
    rows, total = store.list_definition_rows(offset=0, limit=1000)
    first = json.loads(listing.definitions_page(rows, total=total, offset=0, limit=1000, now=NOW, link=str))["data"]
    assert "apiKey" not in json.dumps(first) and "secret" not in json.dumps(first)  # write-only stays hidden
    assert any(d["nextScheduledRunTime"] for d in first) and any("schedule" not in d for d in first)


def test_the_listing_route_answers_the_spliced_bytes(store: Store) -> None:
    """Through the route: the same envelope, content type JSON (ids used elsewhere are not needed)."""
    from fastapi.testclient import TestClient

    from reconciler.service.app import create_app

    now = ids.iso(ids.utcnow())
    with store.engine.begin() as conn:
        conn.execute(sa.insert(definitions), [store._definition_row(DefinitionRecord(
            id=f"{i:024x}", name=f"n{i}", enabled=False, schedule=None, job={"deploymentId": "a" * 24},
            created=now, updated=now, created_by=USER, updated_by=USER)) for i in range(3)])
    with TestClient(create_app(store=store)) as client:
        response = client.get("/api/v2/batchPredictionJobDefinitions/?limit=2")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["count"] == 2 and body["totalCount"] == 3 and body["next"].endswith("offset=2&limit=2")
    assert [d["name"] for d in body["data"]] == ["n0", "n1"]
