"""What a job's adapters read from the service's store, read once by the driver for the workers.

Workers have no connection to the service's database (they may run anywhere the scheduler
reaches), so the driver resolves the job's references before it dispatches: the credentials'
secrets, the data stores and the dataset the intake and output settings name. :class:`ResolvedStore`
answers the adapters' three store calls from those values, with the store's own errors for
anything else, so the same adapters run unchanged on a worker.

The secrets travel to the workers inside the job's context (Dask's comms; see the README on
running the cluster where the service runs, and on TLS).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.service import errors
from reconciler.service.records import DatasetRecord, ResourceRecord

__all__ = ["ResolvedStore", "resolve"]

SIDES = ("intakeSettings", "outputSettings")


@dataclass(frozen=True)
class ResolvedStore:
    credentials: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)  # never in a repr
    data_stores: dict[str, ResourceRecord] = field(default_factory=dict)
    datasets: dict[tuple[str, str | None], DatasetRecord] = field(default_factory=dict)

    def get_credential_secret(self, credential_id: str) -> dict[str, Any]:
        try:
            return dict(self.credentials[credential_id])
        except KeyError:
            raise errors.HTTPNotFound(f"credential {credential_id} not found") from None

    def get_resource(self, kind: str, resource_id: str) -> ResourceRecord:
        if kind == "dataStore" and resource_id in self.data_stores:
            return self.data_stores[resource_id]
        raise errors.HTTPNotFound(f"{kind} {resource_id} not found")

    def get_dataset(self, dataset_id: str, version_id: str | None = None) -> DatasetRecord:
        try:
            return self.datasets[(dataset_id, version_id)]
        except KeyError:
            raise errors.HTTPNotFound(f"dataset {dataset_id} not found") from None


def resolve(spec: Mapping[str, Any], store: Any) -> ResolvedStore:
    """Everything the job's settings refer to. A reference the store does not know is left out:
    the adapter then fails on the worker with the same message it gives in the service."""
    credentials: dict[str, dict[str, Any]] = {}
    data_stores: dict[str, ResourceRecord] = {}
    datasets: dict[tuple[str, str | None], DatasetRecord] = {}
    for side in SIDES:
        settings = spec.get(side)
        if not isinstance(settings, Mapping):
            continue
        credential_id = settings.get("credentialId")
        if credential_id:
            with contextlib.suppress(errors.HTTPProblem):
                credentials[str(credential_id)] = dict(store.get_credential_secret(str(credential_id)))
        store_id = settings.get("dataStoreId")
        if store_id:
            with contextlib.suppress(errors.HTTPProblem):
                data_stores[str(store_id)] = store.get_resource("dataStore", str(store_id))
        dataset_id = settings.get("datasetId")
        if settings.get("type") == "dataset" and isinstance(dataset_id, str) and dataset_id:
            version = settings.get("datasetVersionId")
            version_id = str(version) if version else None
            with contextlib.suppress(errors.HTTPProblem):
                datasets[(dataset_id, version_id)] = store.get_dataset(dataset_id, version_id)
    return ResolvedStore(credentials=credentials, data_stores=data_stores, datasets=datasets)
