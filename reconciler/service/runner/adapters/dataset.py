"""``dataset`` intake: an AI Catalog dataset uploaded to the service (``datasets/fromFile/``).

The dataset is a CSV file under the service's data directory, named by the ``datasets`` table;
it is read in ``chunk_rows`` pieces like any CSV intake. DataRobot parses catalog datasets when
they are uploaded (comma-separated, UTF-8 here), so the job's ``csvSettings`` do not apply.
``datasetVersionId``, when given, must name the stored version.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from reconciler.service import errors
from reconciler.service.records import DatasetRecord
from reconciler.service.runner.adapters.base import AdapterContext, AdapterError, register

__all__ = ["DatasetIntake"]


class DatasetIntake:
    def __init__(self, settings: Mapping[str, Any], ctx: AdapterContext) -> None:
        dataset_id = settings.get("datasetId")
        if not isinstance(dataset_id, str) or not dataset_id:
            raise AdapterError("dataset intake needs datasetId (from Dataset.create_from_file / GET datasets/)")
        version = settings.get("datasetVersionId")
        try:
            self.record: DatasetRecord = ctx.store.get_dataset(dataset_id, str(version) if version else None)
        except errors.HTTPProblem as exc:
            raise AdapterError(exc.message) from None
        self.path = Path(self.record.path)
        if not self.path.is_file():
            raise AdapterError(f"the file of dataset {dataset_id} is missing from the data directory ({self.path})")
        self.ctx = ctx
        self.rows_read = 0

    def fraction_read(self) -> float:
        """Rows read so far out of the dataset's row count, 0..1 (the job's percentageCompleted)."""
        return min(1.0, self.rows_read / self.record.row_count) if self.record.row_count > 0 else 1.0

    def chunks(self) -> Iterator[pd.DataFrame]:
        if self.record.row_count == 0:
            return
        with pd.read_csv(self.path, chunksize=self.ctx.chunk_rows, dtype=str, keep_default_na=False,
                         na_filter=False) as reader:
            for chunk in reader:
                self.rows_read += len(chunk)
                yield chunk

    def close(self) -> None:
        """Nothing to release: the reader closes with its ``with`` block."""


register("dataset", intake=DatasetIntake)
