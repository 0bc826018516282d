"""Suspend and sync windows in the operator end to end: a real kube-apiserver, the local service
over HTTP, and ``reconciler operator --project-config`` as a child process."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from operator_harness import Namespace, Service, manifest, wait_for


def _condition(ns: Namespace, name: str, kind: str, status: str, reason: str | None = None) -> dict[str, Any] | None:
    cond = ns.condition(name, kind)
    return cond if cond and cond["status"] == status and (reason is None or cond["reason"] == reason) else None


def test_writes_wait_for_an_allow_window_and_a_suspended_resource_is_left_alone(
        namespace: Namespace, service: Service, start_operator: Any, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    # the window opens at the next minute (the one after when that is under 20 s away, so that the
    # deferral can be seen first) and stays open for an hour
    opens = now.replace(second=0, microsecond=0) + timedelta(minutes=1 if now.second < 40 else 2)
    config = tmp_path / "reconciler.yaml"
    config.write_text("apiVersion: reconciler.io/v1alpha1\nkind: Project\nsyncWindows:\n"
                      f"  - {{name: office, kind: allow, schedule: '{opens.minute} {opens.hour} * * *', duration: 1h}}\n")
    op = start_operator(namespace, "--project-config", str(config))

    name = f"{namespace.name}-w"
    namespace.apply(manifest(name))
    synced = wait_for(lambda: _condition(namespace, name, "Synced", "False", "SyncWindowClosed"), timeout=60,
                      what="Synced=False SyncWindowClosed")
    assert synced["message"] == ("create deferred: outside every allow window; writes are allowed from "
                                 f"{opens.strftime('%Y-%m-%d %H:%M')} UTC")
    assert service.find(name) == []
    assert "Deferred" in [e.reason for e in namespace.events(name)]
    # retried when the window opens: created then, not before
    wait_for(lambda: service.find(name), timeout=(opens - datetime.now(UTC)).total_seconds() + 45,
             what="the definition created once the window opened")
    assert datetime.now(UTC) >= opens
    wait_for(lambda: _condition(namespace, name, "Ready", "True", "Reconciled"), what="Ready=True")

    # suspended: no definition, a Suspended condition; resumed: created; suspended and deleted: left in place
    held = f"{namespace.name}-s"
    namespace.apply(manifest(held, suspend=True))
    wait_for(lambda: _condition(namespace, held, "Suspended", "True", "Suspended"), what="Suspended=True")
    assert service.find(held) == []
    spec = copy.deepcopy((namespace.get(held) or {})["spec"])
    spec["suspend"] = False
    namespace.patch_spec(held, spec)
    wait_for(lambda: _condition(namespace, held, "Suspended", "False", "Resumed"), what="Suspended=False Resumed")
    (live,) = wait_for(lambda: service.find(held), what="created once resumed")
    spec["suspend"] = True
    spec["batchPredictionJob"]["numConcurrent"] = 1
    namespace.patch_spec(held, spec)
    wait_for(lambda: _condition(namespace, held, "Suspended", "True"), what="Suspended=True again")
    namespace.delete(held)
    wait_for(lambda: namespace.get(held) is None, what="the suspended resource gone")
    kept = service.get(live["id"])
    assert kept is not None and kept["batchPredictionJob"]["numConcurrent"] == 4  # neither updated nor deleted
    assert "Orphaned" in [e.reason for e in namespace.events(held)]
    op.stop()
