"""AI Catalog datasets: the rows describing uploaded files (the files live in the data directory)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from reconciler.service import errors
from reconciler.service.records import DatasetRecord, Page
from reconciler.service.store.database import Database, dump, load
from reconciler.service.store.tables import datasets


class Datasets(Database):
    """Queries of the datasets aggregate."""

    @staticmethod
    def _dataset(row: Any) -> DatasetRecord:
        return DatasetRecord(id=row.id, version_id=row.version_id, name=row.name, path=row.path, size=int(row.size),
                             row_count=int(row.row_count), columns=load(row.columns),
                             categories=load(row.categories), created=row.created,
                             created_by=load(row.created_by))

    def create_dataset(self, record: DatasetRecord) -> DatasetRecord:
        with self._write() as conn:
            conn.execute(sa.insert(datasets).values(
                id=record.id, version_id=record.version_id, name=record.name, path=record.path, size=record.size,
                row_count=record.row_count, columns=dump(record.columns), categories=dump(record.categories),
                created=record.created, created_by=dump(record.created_by)))
        return record

    def get_dataset(self, dataset_id: str, version_id: str | None = None) -> DatasetRecord:
        where = [datasets.c.id == dataset_id]
        if version_id is not None:
            where.append(datasets.c.version_id == version_id)
        with self._read() as conn:
            row = conn.execute(sa.select(datasets).where(*where)).first()
        if row is None:
            what = f"dataset {dataset_id!r}" + (f" version {version_id!r}" if version_id else "")
            raise errors.HTTPNotFound(f"no {what}", errors={"datasetId": "list datasets with GET datasets/"})
        return self._dataset(row)

    def list_datasets(self, *, offset: int, limit: int) -> Page:
        with self._read() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(datasets)).scalar_one()
            rows = conn.execute(sa.select(datasets).order_by(datasets.c.created, datasets.c.id)
                                .offset(offset).limit(limit)).all()
        return Page([self._dataset(row) for row in rows], int(total))

    def delete_dataset(self, dataset_id: str) -> DatasetRecord:
        """Removes the row; returns it so the caller can delete the file."""
        with self._write() as conn:
            row = conn.execute(sa.select(datasets).where(datasets.c.id == dataset_id)).first()
            if row is None:
                raise errors.HTTPNotFound(f"no dataset {dataset_id!r}", errors={"datasetId": "list datasets with GET datasets/"})
            conn.execute(sa.delete(datasets).where(datasets.c.id == dataset_id))
        return self._dataset(row)
