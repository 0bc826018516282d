"""The kopf settings the operator runs with (the e2e tests run them against a real kube-apiserver)."""

from __future__ import annotations

import kopf

from reconciler.operator.handlers import configure_settings


def test_a_deleted_resource_is_released_soon_after_its_timer_exits() -> None:
    # kopf keeps the finalizer until the resync timer has exited and re-checks every
    # cancellation_polling seconds: at kopf's 60 s a delete caught mid-resync hung for a minute
    # (test_operator_e2e.py::test_orphan_and_report_only_drift waits 30 s for the resource to go).
    settings = kopf.OperatorSettings()
    assert settings.background.cancellation_polling == 60
    configure_settings(settings)
    assert settings.background.cancellation_polling <= 1
    assert settings.persistence.finalizer == "reconciler.io/finalizer"
