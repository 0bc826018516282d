"""The adapter contract shared by every intake and output type.

Data moves as a stream of pandas DataFrame chunks, never as a whole file, so a 1 GB input runs in
bounded memory. An intake yields chunks; an output takes them in order and commits on ``close``
(or throws them away on ``abort``). Adapters register themselves by ``type`` with
:func:`register`; the runner looks them up with
:func:`open_intake` / :func:`open_output`. A type that cannot run here (bigquery, snowflake,
synapse, datasphere: no local emulator of those services exists) has no adapter, and
:class:`AdapterUnavailable` says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from reconciler.extras import MissingExtra, require

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "AdapterContext",
    "AdapterError",
    "AdapterUnavailable",
    "Intake",
    "Output",
    "cannot_run",
    "initial_status",
    "open_intake",
    "open_output",
    "register",
]

# Types that need a cloud service this machine cannot reach: a job using one fails at once.
REMOTE_ONLY = frozenset({"bigquery", "snowflake", "synapse", "datasphere", "dss"})


class AdapterError(Exception):
    """Reading or writing failed; the message becomes the job's ``statusDetails``."""


class AdapterUnavailable(AdapterError):
    """No adapter for this type can run in the local service."""


@dataclass(frozen=True, kw_only=True)
class AdapterContext:
    """What an adapter may use. ``store`` is the service's store (credentials, data stores,
    datasets, uploaded files); ``csv`` the job's csvSettings with defaults filled; ``job_id`` the
    job; ``chunk_rows`` how many rows a chunk should hold (derived from chunkSize)."""

    job_id: str
    store: Any
    csv: Mapping[str, str] = field(default_factory=lambda: {"delimiter": ",", "quotechar": '"', "encoding": "utf-8"})
    chunk_rows: int = 50_000
    extra: Mapping[str, Any] = field(default_factory=dict)


class Intake(Protocol):
    def chunks(self) -> Iterator[pd.DataFrame]:
        """Input rows in order, in chunks of about ``ctx.chunk_rows``; columns as read (strings
        for CSV unless the format carries types)."""
        ...

    def close(self) -> None: ...


class Output(Protocol):
    def write(self, frame: pd.DataFrame) -> None:
        """Append one scored chunk (the columns and order DataRobot writes)."""
        ...

    def close(self) -> None:
        """Commit everything written (make the file visible, commit the transaction)."""
        ...

    def abort(self) -> None:
        """Throw away what was written where the destination allows it."""
        ...


IntakeFactory = Callable[[Mapping[str, Any], AdapterContext], Intake]
OutputFactory = Callable[[Mapping[str, Any], AdapterContext], Output]
A = TypeVar("A")
_INTAKES: dict[str, IntakeFactory] = {}
_OUTPUTS: dict[str, OutputFactory] = {}


def register(type_: str, *, intake: IntakeFactory | None = None, output: OutputFactory | None = None) -> None:
    """Make ``type_`` readable (``intake``) and writable (``output``); each factory takes the
    settings and the context, usually the adapter class itself."""
    if intake is not None:
        _INTAKES[type_] = intake
    if output is not None:
        _OUTPUTS[type_] = output


def _unavailable(side: str, type_: str) -> AdapterUnavailable:
    if type_ in REMOTE_ONLY:
        return AdapterUnavailable(f"{side} type '{type_}' needs a cloud service the local service cannot reach; "
                                  "use localFile, s3 (with endpointUrl), azure, gcp, jdbc or dataset to run it here")
    return AdapterUnavailable(f"{side} type '{type_}' is not supported by the local service")


def _open(side: str, factories: Mapping[str, Callable[[Mapping[str, Any], AdapterContext], A]],
          settings: Mapping[str, Any], ctx: AdapterContext) -> A:
    _load_builtin_adapters()
    factory = factories.get(str(settings.get("type")))
    if factory is None:
        raise _unavailable(side, str(settings.get("type")))
    return factory(settings, ctx)


def open_intake(settings: Mapping[str, Any], ctx: AdapterContext) -> Intake:
    return _open("intake", _INTAKES, settings, ctx)


def open_output(settings: Mapping[str, Any], ctx: AdapterContext) -> Output:
    return _open("output", _OUTPUTS, settings, ctx)


def cannot_run(spec: Mapping[str, Any]) -> str | None:
    """Why a job with this (flattened) spec cannot run here, or None: an intake or output type
    without an adapter. Checked when a job is created, so such a job fails at once, before any
    upload, with the same ``statusDetails`` the runner would give it."""
    try:
        _load_builtin_adapters()
    except MissingExtra as exc:  # a core install: no adapter can run in this process
        return str(exc)
    intake = str((spec.get("intakeSettings") or {}).get("type"))
    if intake not in _INTAKES:
        return str(_unavailable("intake", intake))
    output = str((spec.get("outputSettings") or {"type": "localFile"}).get("type"))
    if output not in _OUTPUTS:
        return str(_unavailable("output", output))
    return None


def initial_status(spec: Mapping[str, Any], submitted: str) -> tuple[str, str]:
    """(status, statusDetails) of a new job: FAILED with the reason if it cannot run here, else
    INITIALIZING with ``submitted``."""
    reason = cannot_run(spec)
    return ("FAILED", reason) if reason is not None else ("INITIALIZING", submitted)


BUILTIN_MODULES = ("local_file", "s3", "azure", "gcp", "jdbc", "dataset")


def _load_builtin_adapters() -> None:
    """Import the adapter modules that exist (each registers its types on import)."""
    import importlib
    import importlib.util

    require("runner", "running batch prediction jobs")
    for name in BUILTIN_MODULES:
        module = f"{__package__}.{name}"
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)
