"""Optional dependencies: which extra a feature needs, and one message when it is not installed.

The core install (validate, plan, apply, diff, export, list, watch and the embedded local service)
needs none of them. The job runner, model loading, the operator and PostgreSQL come with extras
(see pyproject.toml); a command that needs one calls :func:`require` before it starts, so a
missing package is a one-line error that says which ``pip install`` to run, not a traceback.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import ModuleType

__all__ = ["DISTRIBUTION", "EXTRAS", "MODEL_MODULES", "MissingExtra", "install_command", "require"]

# The name on the package index; the import package and the command stay ``reconciler``.
DISTRIBUTION = "reconciler-gitops"

# extra -> the top-level modules the code imports from it (tests/distribution checks these against pyproject)
EXTRAS: dict[str, tuple[str, ...]] = {
    "runner": ("pandas", "pyarrow", "numpy", "boto3", "botocore",
               # the azure and gcp object stores (fsspec filesystems and the clouds' own libraries)
               "fsspec", "adlfs", "gcsfs", "aiohttp", "azure", "google"),
    "models": ("joblib", "sklearn", "onnxruntime", "onnx"),
    "operator": ("cryptography", "kopf", "kubernetes"),
    "postgres": ("psycopg", "adbc_driver_manager", "adbc_driver_postgresql"),
    # scoring jobs on a Dask cluster (reconciler serve --executor dask)
    "dask": ("distributed",),
    # chat and e-mail notifications (reconciler.notify); webhooks need only httpx
    "notify": ("apprise",),
    # policies in reconciler.yaml: Google's CEL runtime (no wheel for Linux on ARM); google-re2 runs
    # matches() on a literal pattern compiled once (without it, the runtime's own, slower)
    "policy": ("cel_expr_python", "re2"),
}
# loading a model needs numpy (runner) too; the [models] extra installs [runner]
MODEL_MODULES = ("numpy", *EXTRAS["models"])


class MissingExtra(ImportError):
    """A feature needs an extra that is not installed; the message says how to install it."""

    def __init__(self, message: str, *, extra: str, missing: Sequence[str]) -> None:
        super().__init__(message)
        self.extra = extra
        self.missing = tuple(missing)


def install_command(*extras: str) -> str:
    return f"pip install '{DISTRIBUTION}[{','.join(extras)}]'"


def require(extra: str, feature: str, *, modules: Sequence[str] | None = None, alternative: str = "") -> list[ModuleType]:
    """Import ``modules`` (default: every module of ``extra``) or raise :class:`MissingExtra`.

    ``feature`` names what needs them ("running batch prediction jobs (reconciler serve)");
    ``alternative`` is another way out (" (or serve the API alone with --no-run-jobs)"). Returns the
    imported modules. Only an absent module (or an absent dependency of one) is reported as a
    missing extra: a module that is installed but fails to import otherwise re-raises as is.
    """
    if extra not in EXTRAS:
        raise KeyError(f"unknown extra {extra!r}; known: {', '.join(EXTRAS)}")
    wanted = tuple(modules) if modules is not None else EXTRAS[extra]
    loaded: list[ModuleType] = []
    missing: list[str] = []
    for name in wanted:
        try:
            loaded.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            # the module itself (or one of its own dependencies) is absent: either way the extra is incomplete
            missing.append(name if exc.name in (None, name) else f"{name} (needs {exc.name})")
    if missing:
        raise MissingExtra(f"{feature} needs the optional dependencies of the [{extra}] extra, which are not "
                           f"installed (missing: {', '.join(missing)}). Install them with: "
                           f"{install_command(extra)}{alternative}", extra=extra, missing=missing)
    return loaded
