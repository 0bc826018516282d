"""A partitioned job's output: each partition writes a part, the driver commits them once.

================  =========================================  ===========================================
output            a partition's part (on a worker)           commit (in the service, once)
================  =========================================  ===========================================
localFile         ``<job>/parts/NNNNNN.csv`` (.tmp + rename) the parts concatenated in order into
                                                             ``output.csv.tmp``, renamed to ``output.csv``
s3                the object ``<key>.reconciler-parts-       one multipart upload of the final key: each
                  <job>/NNNNNN.csv``                         part copied server-side (UploadPartCopy),
                                                             small pieces joined; completed at the end,
                                                             aborted on failure; staged parts deleted
azure, gcp        the same staged objects                    the parts streamed in order through the
                                                             store's atomic writer (staged blocks,
                                                             resumable upload); staged parts deleted
Parquet (any)     a Parquet file per partition               row groups copied in order into one file
jdbc              table ``dr_part_<job>_<n>``, written in    in ONE transaction: create the target if
                  one transaction that first claims ``n``    asked, insert (or update/upsert) from every
                  in the ledger ``dr_parts_<job>``           staging table in order, drop them all
================  =========================================  ===========================================

Only the first part carries the CSV header. A part is written whole or not at all, and writing
it again gives the same bytes, so a partition retried after its worker died (even one whose first
attempt finished) replaces its part; the JDBC ledger's primary key makes a second attempt of a
committed partition a no-op, so no row is written twice. ``abort`` removes every part and the
ledger: a failed or aborted job leaves no output, as the single-process runner's outputs do.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from reconciler.service.runner import files
from reconciler.service.runner.adapters.base import AdapterContext, AdapterError, Output
from reconciler.service.runner.adapters.objectstore import PART_SIZE, ObjectOutput, is_parquet
from reconciler.service.runner.cluster.partitions import OBJECT_TYPES, open_object

__all__ = ["Committer", "PartRecord", "ledger_name", "open_committer", "open_part", "part_suffix", "stage_name"]

S3_MIN_PART = 5 * 1024 * 1024  # S3 refuses a part below 5 MiB unless it is the last
S3_MAX_COPY = 5 * 1024**3  # nor a copied range above 5 GiB
COPY_BLOCK = 8 * 1024 * 1024


def part_suffix(job_id: str, index: int, parquet: bool) -> str:
    return f".reconciler-parts-{job_id}/{index:06d}.{'parquet' if parquet else 'csv'}"


def parts_dir(data_dir: Path, job_id: str) -> Path:
    return files.job_dir(data_dir, job_id) / "parts"


def stage_name(job_id: str, index: int) -> str:
    return f"dr_part_{job_id}_{index}"


def ledger_name(job_id: str) -> str:
    return f"dr_parts_{job_id}"


def _output_settings(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    settings = spec.get("outputSettings")
    return settings if isinstance(settings, Mapping) else {"type": "localFile"}


# -- parts (on a worker) ----------------------------------------------------------------------------


class PartRecord:
    """Rows a partition wrote; set by the worker before ``close``, read back for a retried
    partition that an earlier attempt already committed (JDBC)."""

    rows: int = 0
    failed: int = 0


def open_part(settings: Mapping[str, Any], ctx: AdapterContext, *, index: int) -> Output:
    """The output of one partition: written like the whole output, committed by the driver."""
    kind = settings.get("type")
    if kind == "localFile":
        from reconciler.service.runner.adapters.local_file import LocalFileOutput

        path = parts_dir(Path(ctx.extra["data_dir"]), ctx.job_id) / f"{index:06d}.csv"
        return LocalFileOutput(settings, ctx, path=path, header=index == 0)
    if kind in OBJECT_TYPES:
        parquet = is_parquet(settings)
        obj = open_object(settings, ctx).sibling(part_suffix(ctx.job_id, index, parquet))
        part_size = int(ctx.extra.get("s3_part_size", PART_SIZE))
        return ObjectOutput(obj, ctx, parquet=parquet, part_size=part_size, header=index == 0)
    if kind == "jdbc":
        return JdbcPart(settings, ctx, index=index)
    raise AdapterError(f"output type {kind!r} cannot be written in parts")


class JdbcPart:
    """A partition's rows in its own staging table, through the jdbc adapter's writer (COPY on
    PostgreSQL) in one transaction that first inserts the partition's row in the job's ledger. A
    second attempt of a partition blocks on that row's key until the first commits or rolls
    back; if it committed, the second finds the row and writes nothing."""

    def __init__(self, settings: Mapping[str, Any], ctx: AdapterContext, *, index: int) -> None:
        from reconciler.service.runner.adapters.jdbc import engine_for

        self.settings = settings
        self.ctx = ctx
        self.index = index
        self.schema = settings.get("schema") or None
        self.engine = engine_for(settings, ctx)
        self.ledger = _ledger_table(ctx.job_id, self.schema)
        self.output: Any = None
        self.record = PartRecord()
        self.recorded: PartRecord | None = None  # an earlier attempt's, when it committed

    def done_before(self) -> PartRecord | None:
        """The counts of an earlier attempt that committed this partition, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(self.ledger.c.rows, self.ledger.c.failed)
                               .where(self.ledger.c.part == self.index)).first()
        if row is None:
            return None
        found = PartRecord()
        found.rows, found.failed = int(row.rows or 0), int(row.failed or 0)
        self.recorded = found
        return found

    def _begin(self, frame: Any) -> None:
        from reconciler.service.runner.adapters.jdbc import JdbcOutput, _column_type

        table = str(self.settings.get("table"))
        name = stage_name(self.ctx.job_id, self.index)
        try:
            with self.engine.begin() as conn:
                inspector = sa.inspect(conn)
                target = (sa.Table(table, sa.MetaData(), schema=self.schema, autoload_with=conn)
                          if inspector.has_table(table, schema=self.schema) else None)
                if target is not None:
                    missing = [str(c) for c in frame.columns if str(c) not in target.c]
                    if missing:
                        where = f"{self.schema}.{table}" if self.schema else table
                        raise AdapterError(f"table {where} has no column(s) {', '.join(missing)} for the scored output")
                columns = [sa.Column(str(c), target.c[str(c)].type if target is not None else _column_type(frame[c]))
                           for c in frame.columns]
                sa.Table(name, sa.MetaData(), *columns, schema=self.schema).create(conn, checkfirst=True)
        except sa.exc.SQLAlchemyError as exc:
            if not self._exists(name):  # two attempts raced to create it: fine, else a real failure
                raise AdapterError(f"jdbc write failed: cannot create the staging table {name}: "
                                   f"{str(getattr(exc, 'orig', None) or exc).strip().splitlines()[0]}") from exc
        settings = {key: value for key, value in self.settings.items() if key not in ("whereColumns", "updateColumns")}
        settings.update(table=name, statementType="insert", createTableIfNotExists=False)
        output = JdbcOutput(settings, self.ctx)
        try:
            output._conn.execute(sa.insert(self.ledger).values(part=self.index))
        except sa.exc.IntegrityError:
            output.abort()
            self.recorded = self.done_before() or PartRecord()
            return
        except BaseException:
            output.abort()
            raise
        self.output = output

    def _exists(self, name: str) -> bool:
        with self.engine.connect() as conn:
            return bool(sa.inspect(conn).has_table(name, schema=self.schema))

    def write(self, frame: Any) -> None:
        if self.recorded is not None or frame.empty:
            return
        if self.output is None:
            self._begin(frame)
            if self.output is None:
                return
        self.output.write(frame)

    def close(self) -> None:
        try:
            if self.recorded is not None:
                return
            if self.output is None:  # no rows: record the partition as done, with nothing staged
                try:
                    with self.engine.begin() as conn:
                        conn.execute(sa.insert(self.ledger).values(part=self.index, rows=self.record.rows,
                                                                   failed=self.record.failed))
                except sa.exc.IntegrityError:
                    self.recorded = self.done_before()
                return
            self.output._conn.execute(sa.update(self.ledger).where(self.ledger.c.part == self.index)
                                      .values(rows=self.record.rows, failed=self.record.failed))
            self.output.close()
        finally:
            self.engine.dispose()

    def abort(self) -> None:
        try:
            if self.output is not None:
                self.output.abort()
        finally:
            self.engine.dispose()


def _ledger_table(job_id: str, schema: str | None) -> sa.Table:
    return sa.Table(ledger_name(job_id), sa.MetaData(), sa.Column("part", sa.Integer, primary_key=True),
                    sa.Column("rows", sa.BigInteger), sa.Column("failed", sa.BigInteger), schema=schema)


# -- committing (in the service) --------------------------------------------------------------------


class Committer:
    """Turns the parts into the job's output, once. ``prepare`` before any part is written."""

    bytes_written: int | None = None

    def prepare(self) -> None:
        """Nothing to set up before the parts are written."""

    def commit(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


class LocalFileCommitter(Committer):
    def __init__(self, ctx: AdapterContext, count: int) -> None:
        data_dir = Path(ctx.extra["data_dir"])
        self.folder = parts_dir(data_dir, ctx.job_id)
        self.count = count
        self.path = files.output_path(data_dir, ctx.job_id)
        self.temporary = self.path.with_name(self.path.name + ".tmp")

    def commit(self) -> None:
        parts = [self.folder / f"{index:06d}.csv" for index in range(self.count)]
        missing = [p.name for p in parts if not p.is_file()]
        if missing:
            raise AdapterError(f"the parts {', '.join(missing[:5])} of the output are missing; the job was not committed")
        with open(self.temporary, "wb") as sink:
            for part in parts:
                with open(part, "rb") as source:
                    shutil.copyfileobj(source, sink, COPY_BLOCK)
        os.replace(self.temporary, self.path)
        self.bytes_written = self.path.stat().st_size
        shutil.rmtree(self.folder, ignore_errors=True)

    def abort(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        self.temporary.unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)


class ObjectCommitter(Committer):
    def __init__(self, settings: Mapping[str, Any], ctx: AdapterContext, count: int) -> None:
        self.ctx = ctx
        self.kind = settings.get("type")
        self.parquet = is_parquet(settings)
        self.obj = open_object(settings, ctx)
        self.parts = [self.obj.sibling(part_suffix(ctx.job_id, index, self.parquet)) for index in range(count)]
        self.part_size = int(ctx.extra.get("s3_part_size", PART_SIZE))

    def commit(self) -> None:
        try:
            if self.parquet:
                self._join_parquet()
            elif self.kind == "s3":
                self._compose_s3()
            else:
                self._stream_csv()
        except self.obj.errors as exc:
            raise self.obj.failure("write", exc) from exc
        self._remove_parts()

    def _stream_csv(self) -> None:
        """The parts' bytes in order through the store's writer (nothing visible until commit)."""
        writer = self.obj.writer(content_type="text/csv", part_size=self.part_size)
        buffer = bytearray()
        try:
            for part in self.parts:
                stream, _ = part.open_read()
                with contextlib.closing(stream):
                    while block := stream.read(COPY_BLOCK):
                        buffer += block
                        if len(buffer) >= self.part_size:
                            writer.write(bytes(buffer))
                            buffer.clear()
            writer.commit(bytes(buffer))
        except BaseException:
            with contextlib.suppress(Exception):
                writer.abort()
            raise

    def _compose_s3(self) -> None:
        """One multipart upload of the final key: every range of a part that can be a part of its
        own (>= 5 MiB) is copied by S3 (UploadPartCopy, no bytes through the service); what is
        smaller is read and joined with its neighbours. Completed last; aborted on any failure."""
        client, bucket, key = self.obj.client, self.obj.bucket, self.obj.key
        upload = client.create_multipart_upload(Bucket=bucket, Key=key, ContentType="text/csv")["UploadId"]
        uploaded: list[dict[str, Any]] = []
        buffer = bytearray()

        def send(data: bytes) -> None:
            number = len(uploaded) + 1
            answer = client.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=data)
            uploaded.append({"PartNumber": number, "ETag": answer["ETag"]})

        def copy(part: Any, start: int, end: int) -> None:
            number = len(uploaded) + 1
            answer = client.upload_part_copy(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number,
                                             CopySource={"Bucket": part.bucket, "Key": part.key},
                                             CopySourceRange=f"bytes={start}-{end - 1}")
            uploaded.append({"PartNumber": number, "ETag": answer["CopyPartResult"]["ETag"]})

        try:
            for part in self.parts:
                size = part.size()
                offset = 0
                if buffer:  # fill the pending small piece up to a part of its own
                    take = min(size, S3_MIN_PART - len(buffer))
                    buffer += part.read_range(0, take)
                    offset = take
                    if len(buffer) >= S3_MIN_PART:
                        send(bytes(buffer))
                        buffer.clear()
                while size - offset >= S3_MIN_PART:
                    end = min(size, offset + S3_MAX_COPY)
                    if 0 < size - end < S3_MIN_PART:  # never leave a tail too small to copy on its own
                        end = size
                    copy(part, offset, end)
                    offset = end
                if offset < size:
                    buffer += part.read_range(offset, size)
            if buffer or not uploaded:
                send(bytes(buffer))
            client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload,
                                             MultipartUpload={"Parts": uploaded})
        except BaseException:
            with contextlib.suppress(Exception):
                client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)
            raise

    def _join_parquet(self) -> None:
        """The parts' row groups in order into one Parquet file, uploaded whole."""
        handle, joined = tempfile.mkstemp(prefix=f"parts-{self.ctx.job_id}-", suffix=".parquet")
        os.close(handle)
        writer: pq.ParquetWriter | None = None
        try:
            for part in self.parts:
                with part.open_random() as source:
                    parquet = pq.ParquetFile(source)
                    if parquet.schema_arrow.names == []:  # a partition without rows
                        continue
                    for batch in parquet.iter_batches(batch_size=max(1, self.ctx.chunk_rows)):
                        table = pa.Table.from_batches([batch])
                        if writer is None:
                            writer = pq.ParquetWriter(joined, table.schema)
                        writer.write_table(table, row_group_size=max(1, self.ctx.chunk_rows))
            if writer is None:
                pq.write_table(pa.table({}), joined)
            else:
                writer.close()
                writer = None
            self.obj.upload(joined)
        finally:
            if writer is not None:
                writer.close()
            Path(joined).unlink(missing_ok=True)

    def _remove_parts(self) -> None:
        for part in self.parts:
            with contextlib.suppress(Exception):
                part.delete()

    def abort(self) -> None:
        self._remove_parts()


class JdbcCommitter(Committer):
    """The staging tables into the target in one transaction, as the single-process writer
    would have written the rows (the same table checks, the same statements)."""

    def __init__(self, settings: Mapping[str, Any], ctx: AdapterContext, count: int) -> None:
        from reconciler.service.runner.adapters.jdbc import engine_for, write_statement

        self.ctx = ctx
        self.count = count
        self.name = str(settings.get("table") or "")
        if not self.name:
            raise AdapterError("jdbc needs table (or, for intake, query)")
        self.schema = settings.get("schema") or None
        self.statement, self.create_if_missing, self.where_columns, self.update_columns = write_statement(settings)
        self.engine = engine_for(settings, ctx)
        self.ledger = _ledger_table(ctx.job_id, self.schema)

    @property
    def where(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name

    def prepare(self) -> None:
        """Refuse at once what the single-process writer would refuse at its first chunk, then
        make the ledger."""
        try:
            with self.engine.begin() as conn:
                exists = sa.inspect(conn).has_table(self.name, schema=self.schema)
                if self.statement == "create_table" and exists and not self.create_if_missing:
                    raise AdapterError(f"table {self.where} already exists; statementType create_table makes a new "
                                       "table (set createTableIfNotExists, or use insert)")
                if not exists and self.statement != "create_table" and not self.create_if_missing:
                    raise AdapterError(f"table {self.where} does not exist; create it, or set createTableIfNotExists")
                if exists:
                    target = sa.Table(self.name, sa.MetaData(), schema=self.schema, autoload_with=conn)
                    for column in self.where_columns + self.update_columns:
                        if column not in target.c:
                            raise AdapterError(f"table {self.where} has no column {column!r} (named in "
                                               "whereColumns/updateColumns)")
                self.ledger.create(conn, checkfirst=True)
        except sa.exc.SQLAlchemyError as exc:
            raise _failed("prepare", exc) from exc

    def commit(self) -> None:
        try:
            with self.engine.begin() as conn:
                done = set(conn.execute(sa.select(self.ledger.c.part)).scalars())
                missing = sorted(set(range(self.count)) - done)
                if missing:
                    raise AdapterError(f"partitions {', '.join(str(i + 1) for i in missing[:5])} were not written; "
                                       "the job was not committed")
                inspector = sa.inspect(conn)
                stages = [sa.Table(stage_name(self.ctx.job_id, i), sa.MetaData(), schema=self.schema, autoload_with=conn)
                          for i in range(self.count) if inspector.has_table(stage_name(self.ctx.job_id, i),
                                                                            schema=self.schema)]
                if stages:
                    target = self._target(conn, stages[0])
                    for stage in stages:
                        self._apply(conn, target, stage)
                for stage in stages:
                    stage.drop(conn)
                self.ledger.drop(conn)
        except sa.exc.SQLAlchemyError as exc:
            raise _failed("commit", exc) from exc
        finally:
            self.engine.dispose()

    def _target(self, conn: sa.Connection, first: sa.Table) -> sa.Table:
        if not sa.inspect(conn).has_table(self.name, schema=self.schema):
            columns = [sa.Column(c.name, c.type) for c in first.columns]
            sa.Table(self.name, sa.MetaData(), *columns, schema=self.schema).create(conn)
        return sa.Table(self.name, sa.MetaData(), schema=self.schema, autoload_with=conn)

    def _apply(self, conn: sa.Connection, target: sa.Table, stage: sa.Table) -> None:
        columns = [c.name for c in stage.columns]
        if self.statement in ("insert", "create_table"):
            conn.execute(sa.insert(target).from_select(columns, sa.select(*(stage.c[c] for c in columns))))
            return
        # the statements of JdbcOutput._merge, from a staging table of the whole partition
        updates = self.update_columns or [c for c in columns if c not in self.where_columns]
        match = sa.and_(*(stage.c[c] == target.c[c] for c in self.where_columns))
        if updates:
            values = {c: sa.select(stage.c[c]).where(match).limit(1).scalar_subquery() for c in updates}
            conn.execute(sa.update(target).where(sa.exists().where(match)).values(values))
        if self.statement == "insert_update":
            fresh = sa.select(*(stage.c[c] for c in columns)).where(~sa.exists().where(match))
            conn.execute(sa.insert(target).from_select(columns, fresh))

    def abort(self) -> None:
        try:
            with self.engine.begin() as conn:
                for index in range(self.count):
                    sa.Table(stage_name(self.ctx.job_id, index), sa.MetaData(), schema=self.schema).drop(
                        conn, checkfirst=True)
                self.ledger.drop(conn, checkfirst=True)
        except sa.exc.SQLAlchemyError:
            pass  # the job already failed; the staging tables are named by its id for a manual clean-up
        finally:
            self.engine.dispose()


def _failed(action: str, exc: sa.exc.SQLAlchemyError) -> AdapterError:
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    return AdapterError(f"jdbc {action} failed: {detail}")


def open_committer(spec: Mapping[str, Any], ctx: AdapterContext, *, count: int) -> Committer:
    settings = _output_settings(spec)
    kind = settings.get("type")
    if kind == "localFile":
        return LocalFileCommitter(ctx, count)
    if kind in OBJECT_TYPES:
        return ObjectCommitter(settings, ctx, count)
    if kind == "jdbc":
        return JdbcCommitter(settings, ctx, count)
    raise AdapterError(f"output type {kind!r} cannot be written in parts")
