"""A command's async work hands its value back without printing it (issue #16: asyncio.run's exit
repr'd a plan of 100,000 definitions twice, 6 s of CPU)."""

from __future__ import annotations

import pytest

from reconciler import session
from reconciler.api import aio


class Loud:
    """Counts how often it is repr'd (a plan of 100,000 definitions is expensive to repr)."""

    reprs = 0

    def __repr__(self) -> str:
        Loud.reprs += 1
        return "Loud()"


async def _value() -> Loud:
    return Loud()


def test_the_value_of_a_run_is_never_reprd() -> None:
    Loud.reprs = 0
    assert isinstance(aio.run(_value()), Loud)
    assert isinstance(session.run(_value()), Loud)
    assert Loud.reprs == 0


def test_a_run_raises_what_its_work_raises() -> None:
    async def fails() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError, match="x"):
        aio.run(fails())
