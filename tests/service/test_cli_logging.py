"""``reconciler serve --no-access-log`` keeps request lines out of the log, even after uvicorn
configures logging (its dictConfig re-enabled a logger switched off with ``disabled``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import uvicorn

from reconciler.service.serving import configure_logging as _configure_logging

ACCESS = "reconciler.service.access"


@pytest.fixture()
def restore_logging() -> Iterator[None]:
    service, access = logging.getLogger("reconciler.service"), logging.getLogger(ACCESS)
    saved = (service.handlers[:], service.level, service.propagate, access.level, access.disabled)
    yield
    service.handlers[:], service.level, service.propagate = saved[0], saved[1], saved[2]
    access.setLevel(saved[3])
    access.disabled = saved[4]


@pytest.mark.parametrize("wanted", [False, True])
def test_access_log_switch_survives_uvicorn_config(wanted: bool, restore_logging: None) -> None:
    _configure_logging(wanted)
    uvicorn.Config(lambda scope: None, access_log=False, log_level="info")  # what serve builds next
    assert logging.getLogger(ACCESS).isEnabledFor(logging.INFO) is wanted
