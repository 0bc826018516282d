"""How a job divides into partitions, and how a worker reads one.

=============  ==========================================================================
intake         partitions
=============  ==========================================================================
localFile      each uploaded part (file) by byte ranges of ``partition_bytes``, aligned to
               line starts by the worker (``ranges.py``); the header line is read apart
dataset        the dataset's file, the same way
s3/azure/gcp   CSV: the object by byte ranges, the same way, one ranged GET per partition;
               Parquet: runs of whole row groups of about ``partition_bytes``
jdbc           ranges of the data store's ``params.partitionColumn`` (an integer key) of
               about ``partition_rows`` rows each; without one the job is one partition
=============  ==========================================================================

A job that plans to one partition is scored by the service itself, as with the local executor,
and the plan says why (``PartitionPlan.reason``): the input is smaller than one partition, the CSV's
encoding is not split by bytes, the header holds a quoted line break, no partition column, ...

The planner runs in the service (it may read object sizes, a file's first line, a Parquet
footer or a key's range); :func:`open_partition` runs on a worker and gives an intake with the
same ``chunks()`` the single-process intakes have, parsed by the same code.
"""

from __future__ import annotations

import codecs
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from reconciler.service import errors
from reconciler.service.runner import files
from reconciler.service.runner.adapters.base import AdapterContext, AdapterError
from reconciler.service.runner.adapters.objectstore import csv_options, is_parquet, pandas_csv_chunks
from reconciler.service.runner.cluster.ranges import Chain, LineRange

__all__ = ["OBJECT_TYPES", "Partition", "PartitionPlan", "open_object", "open_partition", "plan"]

OBJECT_TYPES = ("s3", "azure", "gcp")
# Encodings in which every line break is the byte 0x0a and no other character holds that byte:
# a file in one of them can be split at byte offsets.
SPLITTABLE_ENCODINGS = frozenset({"utf-8", "utf-8-sig", "ascii", "latin-1", "iso8859-1", "iso8859-15", "cp1252"})
HEADER_LIMIT = 1024 * 1024
DATASET_CSV = {"delimiter": ",", "quotechar": '"', "encoding": "utf-8"}  # AI Catalog files (dataset.py)


@dataclass(frozen=True, slots=True)
class Partition:
    """One unit of work. ``kind``: ``csv`` (lines starting in ``[start, end)`` of file ``group``,
    whose header line is ``[0, header_end)``), ``parquet`` (``row_groups``) or ``jdbc`` (keys in
    ``[low, high)``; ``low``/``high`` None = unbounded, ``nulls`` = also the NULL keys).
    ``weight``: its share of the job (bytes or rows) for ``percentageCompleted``."""

    index: int
    kind: str
    weight: int
    path: str = ""  # a local file (localFile, dataset); "" = the job's object
    group: int = 0  # the file it belongs to (localFile uploads in parts): parity checks per file
    start: int = 0
    end: int = 0
    header_end: int = 0
    row_groups: tuple[int, ...] = ()
    column: str = ""
    low: int | None = None
    high: int | None = None
    nulls: bool = False

    def describe(self) -> str:
        if self.kind == "csv":
            where = f" of {Path(self.path).name}" if self.path else ""
            return f"partition {self.index + 1} (bytes {self.start}-{self.end}{where})"
        if self.kind == "parquet":
            return f"partition {self.index + 1} (row groups {self.row_groups[0]}-{self.row_groups[-1]})"
        return f"partition {self.index + 1} ({self.column} in [{self.low}, {self.high}))"


@dataclass(frozen=True, slots=True)
class PartitionPlan:
    partitions: list[Partition]
    reason: str = ""  # why the job is one partition, when it is
    quote: str = ""  # the quote character of CSV partitions (their boundaries' parity is checked)
    header_quotes: dict[int, int] = field(default_factory=dict)  # per file: quote characters in its header

    @property
    def total(self) -> int:
        return sum(p.weight for p in self.partitions) or 1


def _single(reason: str) -> PartitionPlan:
    return PartitionPlan(partitions=[], reason=reason)


def open_object(settings: Mapping[str, Any], ctx: AdapterContext) -> Any:
    """The object store object (``S3Object`` or ``FsspecObject``) the settings name."""
    kind = settings.get("type")
    if kind == "s3":
        from reconciler.service.runner.adapters.s3 import S3Object

        return S3Object(settings, ctx)
    if kind == "azure":
        from reconciler.service.runner.adapters.azure import azure_object

        return azure_object(settings, ctx)
    if kind == "gcp":
        from reconciler.service.runner.adapters.gcp import gcs_object

        return gcs_object(settings, ctx)
    raise AdapterError(f"not an object store type: {kind!r}")


# -- planning (in the service) -------------------------------------------------------------------


def plan(spec: Mapping[str, Any], ctx: AdapterContext, *, partition_bytes: int, partition_rows: int) -> PartitionPlan:
    """The job's partitions, or a plan with none and the reason it is scored in one piece."""
    intake = spec.get("intakeSettings") or {}
    kind = intake.get("type")
    if kind == "localFile":
        paths = files.input_files(Path(ctx.extra["data_dir"]), ctx.job_id)
        return _csv_files(paths, ctx.csv, partition_bytes)
    if kind == "dataset":
        return _dataset(intake, ctx, partition_bytes)
    if kind in OBJECT_TYPES:
        obj = open_object(intake, ctx)
        try:
            if is_parquet(intake):
                return _parquet(obj, partition_bytes)
            return _csv_object(obj, ctx.csv, partition_bytes)
        except obj.errors as exc:
            raise obj.failure("read", exc) from exc
    if kind == "jdbc":
        return _jdbc(intake, ctx, partition_rows)
    return _single(f"intake type {kind!r} is not split into partitions")


def _splittable(csv_settings: Mapping[str, str]) -> tuple[str, str] | str:
    """(encoding, quote) when a file with these settings can be split at bytes, else the reason."""
    _, quotechar, encoding = csv_options(csv_settings)
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return f"unknown csvSettings.encoding {encoding!r}"
    if name not in SPLITTABLE_ENCODINGS:
        return f"a CSV in {encoding} is not split at byte offsets (only UTF-8 and single-byte encodings are)"
    return name, quotechar


def _header_end(prefix: bytes, quote: bytes, where: str) -> tuple[int, int] | str:
    """(bytes of the header line, quote characters in it) from the file's first bytes."""
    newline = prefix.find(b"\n")
    if newline < 0:
        return f"{where} has no line break in its first {len(prefix)} bytes"
    header = prefix[: newline + 1]
    quotes = header.count(quote) if quote else 0
    if quotes % 2:
        return f"the header line of {where} holds a quoted line break"
    return newline + 1, quotes


def _ranges(size: int, header_end: int, partition_bytes: int) -> list[tuple[int, int]]:
    data = size - header_end
    count = max(1, math.ceil(data / max(1, partition_bytes)))
    step = math.ceil(data / count)
    return [(header_end + k * step, min(size, header_end + (k + 1) * step)) for k in range(count)]


def _csv_files(paths: list[Path], csv_settings: Mapping[str, str], partition_bytes: int) -> PartitionPlan:
    splittable = _splittable(csv_settings)
    if isinstance(splittable, str):
        return _single(splittable)
    encoding, quotechar = splittable
    quote = quotechar.encode(encoding)
    partitions: list[Partition] = []
    header_quotes: dict[int, int] = {}
    for group, path in enumerate(paths):
        size = path.stat().st_size
        with open(path, "rb") as handle:
            prefix = handle.read(min(size, HEADER_LIMIT))
        found = _header_end(prefix, quote, f"upload part {path.stem}")
        if isinstance(found, str):
            return _single(found)
        header_end, header_quotes[group] = found
        for start, end in _ranges(size, header_end, partition_bytes):
            partitions.append(Partition(index=len(partitions), kind="csv", weight=end - start, path=str(path),
                                        group=group, start=start, end=end, header_end=header_end))
    if len(partitions) < 2:
        return _single(f"the input is smaller than one partition ({partition_bytes} bytes)")
    return PartitionPlan(partitions=partitions, quote=quotechar, header_quotes=header_quotes)


def _dataset(settings: Mapping[str, Any], ctx: AdapterContext, partition_bytes: int) -> PartitionPlan:
    dataset_id = settings.get("datasetId")
    version = settings.get("datasetVersionId")
    try:
        record = ctx.store.get_dataset(str(dataset_id), str(version) if version else None)
    except errors.HTTPProblem as exc:
        raise AdapterError(exc.message) from None
    path = Path(record.path)
    if record.row_count == 0 or not path.is_file():
        return _single("the dataset is empty or its file is missing")
    return _csv_files([path], DATASET_CSV, partition_bytes)


def _csv_object(obj: Any, csv_settings: Mapping[str, str], partition_bytes: int) -> PartitionPlan:
    splittable = _splittable(csv_settings)
    if isinstance(splittable, str):
        return _single(splittable)
    encoding, quotechar = splittable
    size = obj.size()
    if size <= partition_bytes:
        return _single(f"the input is smaller than one partition ({partition_bytes} bytes)")
    found = _header_end(obj.read_range(0, min(size, HEADER_LIMIT)), quotechar.encode(encoding), obj.name)
    if isinstance(found, str):
        return _single(found)
    header_end, quotes = found
    partitions = [Partition(index=i, kind="csv", weight=end - start, start=start, end=end, header_end=header_end)
                  for i, (start, end) in enumerate(_ranges(size, header_end, partition_bytes))]
    if len(partitions) < 2:
        return _single(f"the input is smaller than one partition ({partition_bytes} bytes)")
    return PartitionPlan(partitions=partitions, quote=quotechar, header_quotes={0: quotes})


def _parquet(obj: Any, partition_bytes: int) -> PartitionPlan:
    try:
        with obj.open_random() as handle:
            metadata = pq.ParquetFile(handle).metadata
    except pa.ArrowInvalid as exc:
        raise AdapterError(f"{obj.name} is not a Parquet file: {exc}") from exc
    partitions: list[Partition] = []
    groups: list[int] = []
    held = rows = 0
    for index in range(metadata.num_row_groups):
        group = metadata.row_group(index)
        groups.append(index)
        held += int(group.total_byte_size)
        rows += int(group.num_rows)
        if held >= partition_bytes or index == metadata.num_row_groups - 1:
            partitions.append(Partition(index=len(partitions), kind="parquet", weight=rows, row_groups=tuple(groups)))
            groups, held, rows = [], 0, 0
    if len(partitions) < 2:
        reason = ("the file has one row group" if metadata.num_row_groups == 1 else
                  f"its row groups hold less than two partitions ({partition_bytes} bytes each)")
        return _single(f"the Parquet input is one partition: {reason}")
    return PartitionPlan(partitions=partitions)


def _jdbc(settings: Mapping[str, Any], ctx: AdapterContext, partition_rows: int) -> PartitionPlan:
    from reconciler.service.runner.adapters.jdbc import JdbcIntake

    try:
        data_store = ctx.store.get_resource("dataStore", str(settings.get("dataStoreId")))
    except errors.HTTPProblem as exc:
        raise AdapterError(f"dataStoreId {settings.get('dataStoreId')}: {exc.message}") from None
    column = (data_store.body.get("params") or {}).get("partitionColumn")
    if not isinstance(column, str) or not column:
        return _single(f"data store {data_store.id} names no partitionColumn (params.partitionColumn: an integer "
                       "key of the rows), so the JDBC intake is read in one partition")
    intake = JdbcIntake(settings, ctx)
    try:
        quoted = intake.engine.dialect.identifier_preparer.quote(column)
        sql = f"SELECT MIN({quoted}), MAX({quoted}), COUNT(*) FROM ({intake.sql}) AS q"
        try:
            with intake.engine.connect() as conn:
                low, high, count = conn.exec_driver_sql(sql).one()
        except sa.exc.SQLAlchemyError as exc:
            detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            return _single(f"cannot read the range of partitionColumn {column!r} ({detail}); the JDBC intake "
                           "is read in one partition")
    finally:
        intake.close()
    if count <= partition_rows:
        return _single(f"the query returns {count} row(s), fewer than one partition ({partition_rows} rows)")
    if not (isinstance(low, int) and isinstance(high, int)) or isinstance(low, bool):
        return _single(f"partitionColumn {column!r} is not an integer column; the JDBC intake is read in one "
                       "partition")
    count_parts = min(math.ceil(count / partition_rows), high - low + 1)
    if count_parts < 2:
        return _single(f"partitionColumn {column!r} has a single value")
    span = high - low + 1
    bounds = [low + (span * k) // count_parts for k in range(count_parts)] + [high + 1]
    weight = max(1, count // count_parts)
    partitions = [Partition(index=k, kind="jdbc", weight=weight, column=column,
                            low=None if k == 0 else bounds[k], high=None if k == count_parts - 1 else bounds[k + 1],
                            nulls=k == 0)
                  for k in range(count_parts)]
    return PartitionPlan(partitions=partitions)


# -- reading one partition (on a worker) ---------------------------------------------------------


class _CsvPartition:
    """The rows of a CSV partition, parsed exactly as the job's single-process intake parses
    them: Arrow for localFile uploads, pandas for objects and datasets."""

    def __init__(self, partition: Partition, ctx: AdapterContext, *, obj: Any = None, engine: str,
                 csv_settings: Mapping[str, str], local: Any = None) -> None:
        self.partition = partition
        self.ctx = ctx
        self.obj = obj
        self.engine = engine
        self.csv = csv_settings
        self.local = local  # the LocalFileIntake whose reader and header parsing are used
        self.range: LineRange | None = None

    @property
    def name(self) -> str:
        return self.obj.name if self.obj is not None else Path(self.partition.path).name

    def fraction_read(self) -> float:
        size = max(1, self.partition.end - self.partition.start)
        return min(1.0, self.range.passed / size) if self.range is not None else 0.0

    def _range(self) -> tuple[bytes, LineRange]:
        """(the file's header line, the partition's lines)."""
        p = self.partition
        first = p.start - 1 if p.start > p.header_end else p.start
        _, quotechar, encoding = csv_options(self.csv)
        raw: IO[bytes]
        if self.obj is not None:
            header = self.obj.read_range(0, p.header_end)
            raw = self.obj.open_from(first)
        else:
            handle = open(p.path, "rb")  # noqa: SIM115 (closed with the range)
            header = handle.read(p.header_end)
            handle.seek(first)
            raw = handle
        return header, LineRange(raw, first=first, end=p.end, skip_first=first < p.start,
                                 quote=quotechar.encode(encoding))

    def _open(self) -> Chain:
        header, self.range = self._range()
        return Chain(header, cast(IO[bytes], self.range))

    def chunks(self) -> Iterator[pd.DataFrame]:
        errors_ = self.obj.errors if self.obj is not None else (OSError,)
        try:
            stream = self._open()
            with stream:
                if self.engine == "pandas":
                    yield from pandas_csv_chunks(cast(IO[bytes], stream), self.csv, self.ctx.chunk_rows, self.name)
                else:
                    yield from self._arrow(cast(IO[bytes], stream))
        except errors_ as exc:
            if self.obj is not None:
                raise self.obj.failure("read", exc) from exc
            raise AdapterError(f"cannot read {self.name}: {exc}") from exc

    def _arrow(self, stream: IO[bytes]) -> Iterator[pd.DataFrame]:
        names = self.local.header(Path(self.partition.path))
        try:
            for batch in self.local.reader(stream, names):
                if batch.num_rows:
                    yield batch.to_pandas(types_mapper=pd.ArrowDtype)
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            raise AdapterError(f"cannot parse the uploaded CSV ({Path(self.partition.path).stem}): {exc}") from None

    def quotes(self) -> int:
        """Quote characters in the partition's whole range: counted while parsing, or, when the
        parse stopped early (a parse or scoring error), by reading the range again."""
        if self.range is not None and self.range.finished:
            return self.range.quotes
        _, fresh = self._range()
        try:
            return fresh.drain()
        finally:
            fresh.close()

    def close(self) -> None:
        if self.range is not None and not self.range.closed:
            self.range.close()


class _ParquetPartition:
    def __init__(self, partition: Partition, obj: Any, ctx: AdapterContext) -> None:
        self.partition = partition
        self.obj = obj
        self.ctx = ctx
        self.rows = 0

    def fraction_read(self) -> float:
        return min(1.0, self.rows / max(1, self.partition.weight))

    def chunks(self) -> Iterator[pd.DataFrame]:
        try:
            with self.obj.open_random() as handle:
                parquet = pq.ParquetFile(handle)
                for batch in parquet.iter_batches(batch_size=self.ctx.chunk_rows,
                                                  row_groups=list(self.partition.row_groups)):
                    self.rows += batch.num_rows
                    yield batch.to_pandas()
        except self.obj.errors as exc:
            raise self.obj.failure("read", exc) from exc

    def quotes(self) -> int:
        return 0

    def close(self) -> None:
        """Nothing held: the file closes with its ``with`` block."""


def jdbc_partition_sql(sql: str, partition: Partition, dialect: sa.engine.Dialect) -> str:
    column = dialect.identifier_preparer.quote(partition.column)
    where: list[str] = []
    if partition.low is not None:
        where.append(f"{column} >= {int(partition.low)}")
    if partition.high is not None:
        where.append(f"{column} < {int(partition.high)}")
    condition = " AND ".join(where) or "TRUE"
    if partition.nulls:
        condition = f"({condition}) OR {column} IS NULL"
    return f"SELECT * FROM ({sql}) AS q WHERE {condition}"


class _JdbcPartition:
    def __init__(self, partition: Partition, settings: Mapping[str, Any], ctx: AdapterContext) -> None:
        from reconciler.service.runner.adapters.jdbc import JdbcIntake

        whole = JdbcIntake(settings, ctx)
        sql = jdbc_partition_sql(whole.sql, partition, whole.engine.dialect)
        whole.close()
        narrowed = {key: value for key, value in settings.items() if key not in ("table", "schema")}
        self.intake = JdbcIntake({**narrowed, "query": sql}, ctx)
        self.partition = partition
        self.rows = 0

    def fraction_read(self) -> float:
        return min(1.0, self.rows / max(1, self.partition.weight))

    def chunks(self) -> Iterator[pd.DataFrame]:
        for frame in self.intake.chunks():
            self.rows += len(frame)
            yield frame

    def quotes(self) -> int:
        return 0

    def close(self) -> None:
        self.intake.close()


def open_partition(settings: Mapping[str, Any], ctx: AdapterContext, partition: Partition) -> Any:
    """An intake of one partition: ``chunks()``, ``fraction_read()``, ``quotes()``, ``close()``."""
    kind = settings.get("type")
    if partition.kind == "jdbc":
        return _JdbcPartition(partition, settings, ctx)
    if partition.kind == "parquet":
        return _ParquetPartition(partition, open_object(settings, ctx), ctx)
    if kind in OBJECT_TYPES:
        return _CsvPartition(partition, ctx, obj=open_object(settings, ctx), engine="pandas", csv_settings=ctx.csv)
    if kind == "dataset":
        return _CsvPartition(partition, ctx, engine="pandas", csv_settings=DATASET_CSV)
    if kind == "localFile":
        from reconciler.service.runner.adapters.local_file import LocalFileIntake

        local = LocalFileIntake(settings, ctx)
        return _CsvPartition(partition, ctx, engine="arrow", csv_settings=ctx.csv, local=local)
    raise AdapterError(f"intake type {kind!r} has no partitions")
