"""One intake and one output for every object store (``s3``, ``azure``, ``gcp``): CSV or Parquet,
streamed, with progress, atomic output and errors that name the object.

A store adapter only says how to reach one object (:class:`ObjectStore`): open it as a byte
stream, download it to a file, upload a file, and write it part by part through an
:class:`ObjectWriter` that makes nothing visible until ``commit`` (S3 multipart upload, a GCS
resumable upload, Azure staged blocks). Everything else is here, once:

- CSV intake parses the object's byte stream in ``chunk_rows`` pieces (pandas, every column as
  text, as the API reads CSV); ``fraction_read`` is the share of the object's bytes parsed.
- Parquet needs random access to its footer, so it is downloaded to a temporary file first and
  then read row group by row group; ``fraction_read`` is the share of its rows handed on.
- CSV output is encoded chunk by chunk and handed to the writer in parts of ``part_size`` bytes;
  Parquet output goes to a temporary file uploaded on ``close``. ``abort`` leaves no object.

:class:`FsspecObject` is the store for any fsspec filesystem (``adlfs`` for Azure Blob, ``gcsfs``
for GCS). S3 keeps boto3 (see ``s3.py`` for why) behind the same two protocols.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any, Protocol

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from reconciler.service import errors
from reconciler.service.runner.adapters.base import AdapterContext, AdapterError, register

__all__ = [
    "PART_SIZE",
    "FsspecObject",
    "ObjectIntake",
    "ObjectOutput",
    "ObjectStore",
    "ObjectWriter",
    "credential_secret",
    "csv_options",
    "is_parquet",
    "register_object_store",
]

PART_SIZE = 8 * 1024 * 1024  # S3 needs >= 5 MiB for every part but the last; GCS multiples of 256 KiB
COPY_BLOCK = 8 * 1024 * 1024


def csv_options(csv: Mapping[str, str]) -> tuple[str, str, str]:
    """(delimiter, quotechar, encoding) with the API's ``tab`` spelled as a tab character."""
    delimiter = str(csv.get("delimiter", ","))
    if delimiter.lower() == "tab":
        delimiter = "\t"
    return delimiter, str(csv.get("quotechar", '"')), str(csv.get("encoding", "utf-8"))


def credential_secret(ctx: AdapterContext, credential_id: str) -> dict[str, Any]:
    """The stored secret of a credential; a missing credential is an AdapterError (the job fails
    with the store's message) rather than an HTTP error escaping into the runner."""
    try:
        secret: dict[str, Any] = ctx.store.get_credential_secret(credential_id)
    except errors.HTTPProblem as exc:
        raise AdapterError(f"credential {credential_id}: {exc.message}") from None
    return secret


def is_parquet(settings: Mapping[str, Any]) -> bool:
    return str(settings.get("format") or "csv").lower() == "parquet"


class ObjectWriter(Protocol):
    """An upload in parts; nothing is visible under the object's name before ``commit``."""

    def write(self, data: bytes) -> None:
        """Upload one part (``part_size`` bytes or more)."""
        ...

    def commit(self, tail: bytes) -> None:
        """Upload ``tail`` (any size, maybe empty) and make the whole object visible."""
        ...

    def abort(self) -> None:
        """Throw the parts away; the object is not created (an older one stays as it was)."""
        ...


class ObjectStore(Protocol):
    """One object in one store. ``name`` is how messages show it (``s3://bucket/key``);
    ``errors`` are the exception types that mean the store refused or failed, turned into an
    AdapterError naming the object by ``failure``."""

    name: str
    errors: tuple[type[BaseException], ...]

    def open_read(self) -> tuple[IO[bytes], int]:
        """A byte stream of the object and its size."""
        ...

    def download(self, path: str) -> None: ...

    def upload(self, path: str) -> None:
        """Upload a local file as the object, visible only once complete."""
        ...

    def writer(self, *, content_type: str, part_size: int) -> ObjectWriter:
        """An upload whose parts are ``part_size`` bytes (the last one may be smaller)."""
        ...

    def failure(self, action: str, exc: BaseException) -> AdapterError: ...


class _Counting(io.RawIOBase):
    """A read-only stream that counts the bytes read through it (for ``fraction_read``)."""

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__()
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.count += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.raw.close()
        super().close()


def _temp_file(prefix: str) -> str:
    handle, path = tempfile.mkstemp(prefix=prefix, suffix=".parquet")
    os.close(handle)
    return path


def _remove(path: str | None) -> None:
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def pandas_csv_chunks(stream: IO[bytes] | io.RawIOBase, csv: Mapping[str, str], chunk_rows: int, name: str) -> Iterator[pd.DataFrame]:
    """CSV rows as the API reads them (every column as text, nothing read as missing), in chunks
    of ``chunk_rows``: the object stores' and the AI Catalog's parser, shared with the partitions
    a Dask cluster scores (``cluster/ranges.py``) so that both read every row alike."""
    delimiter, quotechar, encoding = csv_options(csv)
    try:
        reader = pd.read_csv(stream, chunksize=chunk_rows, sep=delimiter, quotechar=quotechar,
                             encoding=encoding, dtype=str, keep_default_na=False, na_filter=False)
        with reader:
            yield from reader
    except pd.errors.EmptyDataError:
        return  # an empty object has no rows (and no header)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise AdapterError(f"{name} is not valid CSV with delimiter {delimiter!r} "
                           f"and encoding {encoding}: {exc}") from exc


class ObjectIntake:
    def __init__(self, store: ObjectStore, ctx: AdapterContext, *, parquet: bool) -> None:
        self.store = store
        self.ctx = ctx
        self.parquet = parquet
        self._body: _Counting | None = None
        self._size = 0
        self._rows_done = 0
        self._rows_total = 0
        self._tmp: str | None = None

    def fraction_read(self) -> float:
        """How much of the object has been handed on as chunks, 0..1 (bytes parsed for CSV, rows
        for Parquet), so ``percentageCompleted`` moves while the job runs."""
        if self.parquet:
            return min(1.0, self._rows_done / self._rows_total) if self._rows_total else 0.0
        if self._body is None or not self._size:
            return 0.0
        return min(1.0, self._body.count / self._size)

    def chunks(self) -> Iterator[pd.DataFrame]:
        if self.parquet:
            yield from self._parquet_chunks()
        else:
            yield from self._csv_chunks()

    def _csv_chunks(self) -> Iterator[pd.DataFrame]:
        try:
            raw, self._size = self.store.open_read()
            self._body = _Counting(raw)
            yield from pandas_csv_chunks(self._body, self.ctx.csv, self.ctx.chunk_rows, self.store.name)
        except self.store.errors as exc:
            raise self.store.failure("read", exc) from exc

    def _parquet_chunks(self) -> Iterator[pd.DataFrame]:
        self._tmp = _temp_file(f"object-intake-{self.ctx.job_id}-")
        try:
            self.store.download(self._tmp)
        except self.store.errors as exc:
            raise self.store.failure("read", exc) from exc
        try:
            parquet = pq.ParquetFile(self._tmp)
        except pa.ArrowInvalid as exc:
            raise AdapterError(f"{self.store.name} is not a Parquet file: {exc}") from exc
        with parquet:
            self._rows_total = parquet.metadata.num_rows
            for batch in parquet.iter_batches(batch_size=self.ctx.chunk_rows):
                self._rows_done += batch.num_rows
                yield batch.to_pandas()

    def close(self) -> None:
        if self._body is not None:
            self._body.close()
        _remove(self._tmp)
        self._tmp = None


class ObjectOutput:
    """CSV: parts of ``part_size`` through the store's writer, committed on close. Parquet: a
    temporary file, uploaded on close. ``abort`` leaves no object behind."""

    def __init__(self, store: ObjectStore, ctx: AdapterContext, *, parquet: bool, part_size: int = PART_SIZE,
                 header: bool = True) -> None:
        self.store = store
        self.ctx = ctx
        self.parquet = parquet
        self.part_size = part_size
        self._buffer = io.BytesIO()
        self._header = header  # False: a part of a partitioned output after the first (no header row)
        self._writer: ObjectWriter | None = None
        self._tmp: str | None = None
        self._parquet_writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None

    def write(self, frame: pd.DataFrame) -> None:
        if self.parquet:
            self._write_parquet(frame)
            return
        delimiter, quotechar, encoding = csv_options(self.ctx.csv)
        text = frame.to_csv(index=False, header=self._header, sep=delimiter, quotechar=quotechar,
                            lineterminator="\n")
        self._header = False
        self._buffer.write(text.encode(encoding))
        if self._buffer.tell() >= self.part_size:
            self._flush_part()

    def _flush_part(self) -> None:
        data = self._buffer.getvalue()
        self._buffer = io.BytesIO()
        self._guarded("write", lambda: self._csv_writer().write(data))

    def _csv_writer(self) -> ObjectWriter:
        if self._writer is None:
            self._writer = self.store.writer(content_type="text/csv", part_size=self.part_size)
        return self._writer

    def _guarded(self, action: str, call: Callable[[], None]) -> None:
        try:
            call()
        except self.store.errors as exc:
            raise self.store.failure(action, exc) from exc

    def _write_parquet(self, frame: pd.DataFrame) -> None:
        try:
            table = pa.Table.from_pandas(frame, schema=self._schema, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise AdapterError(f"a chunk does not fit the Parquet schema of the first chunk: {exc}") from exc
        if self._parquet_writer is None:
            self._tmp = _temp_file(f"object-output-{self.ctx.job_id}-")
            self._schema = table.schema
            self._parquet_writer = pq.ParquetWriter(self._tmp, table.schema)
        self._parquet_writer.write_table(table, row_group_size=max(1, self.ctx.chunk_rows))

    def close(self) -> None:
        try:
            if self.parquet:
                self._close_parquet()
            else:
                tail = self._buffer.getvalue()
                self._buffer = io.BytesIO()
                self._guarded("write", lambda: self._csv_writer().commit(tail))
                self._writer = None
        finally:
            self._cleanup()

    def _close_parquet(self) -> None:
        if self._parquet_writer is None:  # no rows at all: an empty file with no columns
            self._tmp = _temp_file(f"object-output-{self.ctx.job_id}-")
            pq.write_table(pa.table({}), self._tmp)
        else:
            self._parquet_writer.close()
            self._parquet_writer = None
        tmp = self._tmp
        assert tmp is not None
        self._guarded("write", lambda: self.store.upload(tmp))

    def abort(self) -> None:
        """Nothing written becomes visible: the parts are thrown away, the temp file removed."""
        try:
            if self._writer is not None:
                writer, self._writer = self._writer, None
                self._guarded("abort the upload of", writer.abort)
        finally:
            self._cleanup()

    def _cleanup(self) -> None:
        if self._parquet_writer is not None:
            self._parquet_writer.close()
            self._parquet_writer = None
        _remove(self._tmp)
        self._tmp = None
        self._buffer = io.BytesIO()


class _FsspecWriter:
    """Parts written to an fsspec file opened for ``wb`` (which uploads block by block and
    commits on close). A small object (no part before ``commit``) is one ``pipe_file``."""

    def __init__(self, fs: Any, path: str, *, part_size: int, content_type: str,
                 cancel: Callable[[Any], None]) -> None:
        self.fs = fs
        self.path = path
        self.part_size = part_size
        self.content_type = content_type
        self.cancel = cancel
        self._file: Any = None

    def write(self, data: bytes) -> None:
        if self._file is None:
            self._file = self.fs.open(self.path, "wb", block_size=self.part_size)
        self._file.write(data)

    def commit(self, tail: bytes) -> None:
        if self._file is None:
            self.fs.pipe_file(self.path, tail)
            return
        file, self._file = self._file, None
        file.write(tail)
        file.close()

    def abort(self) -> None:
        if self._file is None:
            return
        file, self._file = self._file, None
        # fsspec files commit when closed or garbage-collected: mark it closed before anything
        # else, so the parts already uploaded can never become the object.
        file.closed = True
        file.buffer = io.BytesIO()
        self.cancel(file)


class FsspecObject:
    """An object in an fsspec filesystem. ``path`` is the filesystem's own path (for adlfs and
    gcsfs: ``container/blob``, ``bucket/key``); ``name`` the URL messages show; ``describe``
    turns a store exception into a short reason (status code and hint, never a secret);
    ``cancel`` throws away an unfinished upload of an opened file (the store's own call)."""

    def __init__(self, fs: Any, path: str, *, name: str, errors: tuple[type[BaseException], ...],
                 describe: Callable[[BaseException], str], cancel: Callable[[Any], None]) -> None:
        self.fs = fs
        self.path = path
        self.name = name
        self.errors = errors
        self._describe = describe
        self._cancel = cancel

    def open_read(self) -> tuple[IO[bytes], int]:
        handle = self.fs.open(self.path, "rb", block_size=COPY_BLOCK, cache_type="readahead")
        return handle, int(handle.size or 0)

    # -- what the partitions of a Dask job need (cluster/): sizes, ranges, random access, parts --

    def size(self) -> int:
        return int(self.fs.size(self.path))

    def open_from(self, offset: int) -> IO[bytes]:
        """A stream of the object from byte ``offset`` to its end."""
        handle = self.fs.open(self.path, "rb", block_size=COPY_BLOCK, cache_type="readahead")
        handle.seek(offset)
        return handle  # type: ignore[no-any-return]

    def open_random(self) -> IO[bytes]:
        """A seekable file (Parquet reads its footer, then the row groups it wants)."""
        return self.fs.open(self.path, "rb", block_size=COPY_BLOCK, cache_type="bytes")  # type: ignore[no-any-return]

    def read_range(self, start: int, end: int) -> bytes:
        return bytes(self.fs.cat_file(self.path, start=start, end=end))

    def delete(self) -> None:
        self.fs.rm_file(self.path)

    def sibling(self, suffix: str) -> FsspecObject:
        """The object whose name is this one's plus ``suffix`` (a staged part of a Dask job)."""
        return FsspecObject(self.fs, self.path + suffix, name=self.name + suffix, errors=self.errors,
                            describe=self._describe, cancel=self._cancel)

    def download(self, path: str) -> None:
        self.fs.get_file(self.path, path)

    def upload(self, path: str) -> None:
        self.fs.put_file(path, self.path)

    def writer(self, *, content_type: str, part_size: int) -> ObjectWriter:
        return _FsspecWriter(self.fs, self.path, part_size=part_size, content_type=content_type, cancel=self._cancel)

    def failure(self, action: str, exc: BaseException) -> AdapterError:
        return AdapterError(f"cannot {action} {self.name}: {self._describe(exc)}")


def register_object_store(type_: str, opener: Callable[[Mapping[str, Any], AdapterContext], ObjectStore]) -> None:
    """Register ``type_`` as read and written through :class:`ObjectIntake` / :class:`ObjectOutput`
    over the object ``opener`` names (CSV, or Parquet when the settings say so)."""

    def intake(settings: Mapping[str, Any], ctx: AdapterContext) -> ObjectIntake:
        return ObjectIntake(opener(settings, ctx), ctx, parquet=is_parquet(settings))

    def output(settings: Mapping[str, Any], ctx: AdapterContext) -> ObjectOutput:
        return ObjectOutput(opener(settings, ctx), ctx, parquet=is_parquet(settings))

    register(type_, intake=intake, output=output)
