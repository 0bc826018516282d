"""Which executor scores jobs: ``local`` (the service's own thread pool) or ``dask`` (a cluster).

Parsed from ``reconciler serve --executor/--dask-scheduler`` into plain values, with no Dask import,
so a bad option is refused before anything starts and the core install can show the message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["EXECUTORS", "ExecutorConfig", "ExecutorError", "executor_config"]

EXECUTORS = ("local", "dask")
LOCAL_CLUSTER = re.compile(r"^local-cluster:(?P<n>\d+)$")
SCHEDULER = re.compile(r"^tcp://(\[[0-9a-fA-F:]+\]|[^\s/:\[\]]+)(:\d+)?$")
MAX_LOCAL_WORKERS = 256


class ExecutorError(ValueError):
    """A bad executor setting; the message names the option and the accepted forms."""


@dataclass(frozen=True, slots=True)
class ExecutorConfig:
    """``kind`` local or dask; for dask either ``address`` (a running scheduler) or
    ``local_workers`` (a LocalCluster of that many worker processes started by the service)."""

    kind: str = "local"
    address: str | None = None
    local_workers: int = 0

    @property
    def is_dask(self) -> bool:
        return self.kind == "dask"

    def describe(self) -> str:
        if not self.is_dask:
            return "local"
        if self.address:
            return f"dask at {self.address}"
        return f"dask on a local cluster of {self.local_workers} worker process(es)"


def executor_config(executor: str | None, scheduler: str | None) -> ExecutorConfig:
    """``--executor`` and ``--dask-scheduler`` as one value. ``--dask-scheduler`` alone means dask."""
    kind = (executor or ("dask" if scheduler else "local")).strip().lower()
    if kind not in EXECUTORS:
        raise ExecutorError(f"--executor {executor!r}: expected one of {', '.join(EXECUTORS)}")
    if kind == "local":
        if scheduler:
            raise ExecutorError("--dask-scheduler needs --executor dask (the local executor scores in the "
                                "service process); drop one of the two")
        return ExecutorConfig()
    address = (scheduler or "").strip()
    if not address:
        raise ExecutorError("--executor dask needs --dask-scheduler: a scheduler address (tcp://host:8786) or "
                            "local-cluster:N to start N worker processes in the service")
    local = LOCAL_CLUSTER.match(address)
    if local:
        workers = int(local["n"])
        if not 1 <= workers <= MAX_LOCAL_WORKERS:
            raise ExecutorError(f"--dask-scheduler {address}: expected local-cluster:N with 1 <= N <= "
                                f"{MAX_LOCAL_WORKERS}")
        return ExecutorConfig(kind="dask", local_workers=workers)
    if not SCHEDULER.match(address):
        raise ExecutorError(f"--dask-scheduler {address!r}: expected a scheduler address such as "
                            "tcp://scheduler:8786 (tls:// is not supported yet), or local-cluster:N")
    return ExecutorConfig(kind="dask", address=address)
