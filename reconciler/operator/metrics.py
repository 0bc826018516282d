"""Prometheus metrics of the operator: reconciles by mode and result, errors, drift corrections and
reconcile duration, served by prometheus-client's own HTTP server on ``--metrics-port``.

Why the result is read from the status patch: every reconcile, whatever way it ends (success,
invalid spec, API error raised for kopf's retry), writes its ``Synced`` condition with the result
as reason (:func:`reconciler.operator.status.status_patch`). Reading it there keeps the handlers'
hunk to one ``with`` line and counts exactly what the resource's status says.

With peering, only the active replica reconciles: sum the counters over replicas.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from reconciler.operator.status import SUCCESS, Result

__all__ = ["OperatorMetrics", "serve"]

UNKNOWN: Final = "Unknown"  # no Synced condition was written (a bug before the status write)
# a reconcile is one or two API round trips; a slow API or a retrying client takes seconds
BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# results that are neither a success nor an error: drift seen and only reported (driftPolicy: Report)
_REPORTED: Final = frozenset({Result.drift_reported.value, Result.missing_reported.value})


def synced_reason(status: Mapping[str, Any]) -> str:
    """The ``Synced`` condition's reason in a status patch: the reconcile's result."""
    for condition in status.get("conditions") or []:
        if isinstance(condition, Mapping) and condition.get("type") == "Synced":
            return str(condition.get("reason") or UNKNOWN)
    return UNKNOWN


class OperatorMetrics:
    """One registry per operator runtime (tests run several in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.reconciles = Counter("reconciler_operator_reconciles", "Reconciles of BatchPredictionJobDefinition "
                                  "resources, by mode (apply: a spec change or start; resync: the drift timer) "
                                  "and result (the Synced condition's reason).", ["mode", "result"],
                                  registry=self.registry)
        self.errors = Counter("reconciler_operator_reconcile_errors", "Reconciles that failed (invalid spec, API "
                              "or credentials error, conflict, internal error), by result.", ["result"],
                              registry=self.registry)
        self.drift_corrections = Counter("reconciler_operator_drift_corrections", "Live definitions changed back "
                                         "to their spec after drift.", registry=self.registry)
        self.duration = Histogram("reconciler_operator_reconcile_duration_seconds", "Time one reconcile took, "
                                  "by mode.", ["mode"], buckets=BUCKETS, registry=self.registry)

    def record(self, mode: str, result: str, seconds: float) -> None:
        self.reconciles.labels(mode, result).inc()
        self.duration.labels(mode).observe(seconds)
        if result == Result.drift_corrected.value:
            self.drift_corrections.inc()
        elif result not in _REPORTED and result not in {r.value for r in SUCCESS}:
            self.errors.labels(result).inc()

    @contextmanager
    def reconcile(self, mode: str, status: Mapping[str, Any]) -> Iterator[None]:
        """Time the reconcile inside and count it by the result it wrote to ``status`` (the
        handler's ``patch.status``), also when it raises for kopf's retry."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.record(mode, synced_reason(status), time.perf_counter() - started)


def serve(metrics: OperatorMetrics, *, port: int, host: str) -> None:
    """``/metrics`` (any path, in fact) on ``host:port`` in a daemon thread."""
    start_http_server(port, addr=host, registry=metrics.registry)
