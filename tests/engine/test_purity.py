"""The engine is pure: importing the plan (and apply, the views) loads no YAML, schema, model or
HTTP library. Checked in a fresh interpreter, where nothing else has imported them yet."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

IO_AND_SCHEMA = ("yaml", "jsonschema", "jsonschema_rs", "pydantic", "httpx", "sqlalchemy", "watchfiles")


@pytest.mark.parametrize("module", ["reconciler.engine.plan", "reconciler.engine.apply", "reconciler.engine.render",
                                    "reconciler.engine.select", "reconciler.engine.pair", "reconciler.engine.diff"])
def test_importing_the_engine_loads_no_io_or_schema_library(module: str) -> None:
    code = (f"import sys, json, {module}\n"
            f"print(json.dumps([m for m in {IO_AND_SCHEMA!r} if m in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(done.stdout) == [], f"{module} loads {done.stdout.strip()}"
