"""The slow-first list of tests/conftest.py names modules that exist: a renamed module would
silently drop back to the end of the run (and into the tail that list is there to avoid)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import SLOW_FIRST

ROOT = Path(__file__).resolve().parents[2]


def test_every_slow_first_module_exists() -> None:
    missing = [module for module in SLOW_FIRST if not (ROOT / module).is_file()]
    assert not missing, f"tests/conftest.py SLOW_FIRST names modules that do not exist: {missing}"
    assert len(set(SLOW_FIRST)) == len(SLOW_FIRST)
