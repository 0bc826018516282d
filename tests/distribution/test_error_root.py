"""One error tree: every exception class reconciler defines outside the local service derives from
``reconciler.errors.ReconcilerError`` (so the CLI maps it to an exit code in one place and a
caller of the Python API can catch the root), but for the few that must be something else, each
listed here with the reason. The local service's errors are HTTP answers (``service/errors.py``)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import reconciler
from reconciler.errors import ReconcilerError

# (module, class) -> why it is not under the root
OUTSIDE_THE_ROOT = {
    ("reconciler.contract.cron", "CronError"): "always caught and turned into a located validation issue",
    ("reconciler.engine.apply", "ApplyInterrupted"): "a CancelledError, so that Ctrl-C still cancels",
    ("reconciler.extras", "MissingExtra"): "an ImportError, what a missing optional package is to Python",
    ("reconciler.specs.files", "UnreadableFile"): "an OSError, as every other unreadable file",
    ("reconciler.specs.load", "_Refused"): "private: turned into a LoadError with its position",
}


def test_every_error_derives_from_the_root() -> None:
    found: dict[tuple[str, str], type[BaseException]] = {}
    for info in pkgutil.walk_packages(reconciler.__path__, "reconciler."):
        if info.name.startswith("reconciler.service") or info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == info.name:
                found[(info.name, name)] = value
    assert ("reconciler.operator.decide", "Invalid") in found  # the walk reached the operator
    outside = {key for key, cls in found.items() if not issubclass(cls, ReconcilerError)}
    assert outside == set(OUTSIDE_THE_ROOT)
