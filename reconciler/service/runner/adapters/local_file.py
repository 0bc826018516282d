"""``localFile`` intake and output: the data the client PUT to ``links.csvUpload``, and the scored
CSV it GETs from ``links.download`` (files under the service's data directory, see ``files``).

Read and written with Arrow's CSV engine, which streams block by block, parses and formats in C++
without holding the GIL, and keeps every input column as text (``string[pyarrow]``): a
passthrough column leaves exactly as it came in (``007`` stays ``007``), and only the feature
columns are cast to numbers, by the scoring step. An empty field is a missing value (null); no
other text is (``NA`` stays ``NA``). The output is written to a ``.tmp`` file renamed on
``close``, so ``links.download`` never serves half a result; ``abort`` deletes it.
Non-UTF-8 output encodings and quote characters other than ``"`` use pandas' writer (slower).
"""

from __future__ import annotations

import codecs
import csv
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from reconciler.service.runner import files
from reconciler.service.runner.adapters.base import (
    AdapterContext,
    AdapterError,
    register,
)

__all__ = ["LocalFileIntake", "LocalFileOutput", "delimiter_of"]

DEFAULT_BLOCK_BYTES = 4 * 1024 * 1024
MIN_BLOCK_BYTES = 64 * 1024


def delimiter_of(csv_settings: Mapping[str, str]) -> str:
    delimiter = csv_settings.get("delimiter", ",")
    return "\t" if delimiter == "tab" else delimiter


def _data_dir(ctx: AdapterContext) -> Path:
    found = ctx.extra.get("data_dir")
    if found is None:
        raise AdapterError("localFile needs the service's data directory (AdapterContext.extra['data_dir'])")
    return Path(found)


def _normal_encoding(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise AdapterError(f"unknown csvSettings.encoding {name!r}; use e.g. utf-8, latin-1, utf-16") from None


class LocalFileIntake:
    def __init__(self, settings: Mapping[str, Any], ctx: AdapterContext) -> None:
        self.ctx = ctx
        self.paths = files.input_files(_data_dir(ctx), ctx.job_id)
        if not self.paths:
            raise AdapterError("no data was uploaded for this localFile job (PUT it to links.csvUpload)")
        self.total = sum(p.stat().st_size for p in self.paths) or 1
        self._done = 0
        self._current_bytes = 0  # of the part being read: bytes of the chunks yielded so far
        self.encoding = _normal_encoding(ctx.csv.get("encoding", "utf-8"))
        self.delimiter = delimiter_of(ctx.csv)
        self.quotechar = ctx.csv.get("quotechar", '"')
        block = ctx.extra.get("chunk_bytes")
        self.block_bytes = max(MIN_BLOCK_BYTES, int(block)) if isinstance(block, int) else DEFAULT_BLOCK_BYTES

    def fraction_read(self) -> float:
        """How much of the input has been handed on as chunks, 0..1. Counted per chunk (one Arrow
        block of ``block_bytes`` each), not from the file position: Arrow's threaded reader reads
        many blocks ahead, so the position said 99% while a fifth of the rows were scored."""
        return min(1.0, (self._done + self._current_bytes) / self.total)

    def header(self, path: Path) -> list[str]:
        return self._header(path)

    def _header(self, path: Path) -> list[str]:
        encoding = "utf-8-sig" if self.encoding == "utf-8" else self.encoding
        with open(path, encoding=encoding, newline="") as text:
            row = next(csv.reader(text, delimiter=self.delimiter, quotechar=self.quotechar), None)
        if not row:
            raise AdapterError(f"the uploaded CSV {path.name} is empty; the first line must name the columns")
        return row

    def reader(self, raw: IO[bytes], names: list[str]) -> pacsv.CSVStreamingReader:
        """Arrow's streaming reader over ``raw`` (a part, or a byte range of one after its header
        line, as a Dask job's partition reads it): every column text, an empty field null."""
        return pacsv.open_csv(
            raw,
            read_options=pacsv.ReadOptions(block_size=self.block_bytes, encoding=self.encoding, use_threads=True),
            parse_options=pacsv.ParseOptions(delimiter=self.delimiter, quote_char=self.quotechar,
                                             newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                 strings_can_be_null=True, null_values=[""]),
        )

    def chunks(self) -> Iterator[pd.DataFrame]:
        header: list[str] | None = None
        yielded = False
        for path in self.paths:
            names = self._header(path)
            if header is None:
                header = names
            elif names != header:
                raise AdapterError(f"upload part {path.stem} has columns {names[:5]}... but the first part has "
                                   f"{header[:5]}...; every part must start with the same header")
            size = path.stat().st_size
            with open(path, "rb") as raw:
                self._current_bytes = 0
                try:
                    reader = self.reader(raw, names)
                    for batch in reader:
                        if batch.num_rows:
                            yielded = True
                            self._current_bytes = min(size, self._current_bytes + self.block_bytes)
                            yield batch.to_pandas(types_mapper=pd.ArrowDtype)
                except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
                    raise AdapterError(f"cannot parse the uploaded CSV ({path.stem}): {exc}") from None
            self._done += size
            self._current_bytes = 0
        if not yielded and header is not None:
            yield pd.DataFrame({n: pd.Series([], dtype=pd.ArrowDtype(pa.string())) for n in header})

    def close(self) -> None:
        """Nothing to release: each part's file closes with its ``with`` block."""


class LocalFileOutput:
    """``path``/``header``: a part of a Dask job's output (``cluster/parts.py``) is written like the
    whole file, under its own name, with the header row in the first part only."""

    def __init__(self, settings: Mapping[str, Any], ctx: AdapterContext, *, path: Path | None = None,
                 header: bool = True) -> None:
        self.path = path if path is not None else files.output_path(_data_dir(ctx), ctx.job_id)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.include_header = header
        self.temporary = self.path.with_name(self.path.name + ".tmp")
        self.encoding = _normal_encoding(ctx.csv.get("encoding", "utf-8"))
        self.delimiter = delimiter_of(ctx.csv)
        self.quotechar = ctx.csv.get("quotechar", '"')
        self.arrow = self.encoding == "utf-8" and self.quotechar == '"'
        self._sink: IO[Any] | None = None
        self._writer: pacsv.CSVWriter | None = None
        self._schema: pa.Schema | None = None
        self._header = header
        self.bytes_written = 0

    def write(self, frame: pd.DataFrame) -> None:
        if self.arrow:
            self._write_arrow(frame)
        else:
            if self._sink is None:
                self._sink = open(self.temporary, "w", encoding=self.encoding, newline="")  # noqa: SIM115 (closed in close/abort)
            frame.to_csv(self._sink, header=self._header, index=False, sep=self.delimiter, quotechar=self.quotechar)
            self._header = False

    def _write_arrow(self, frame: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._writer is None:
            table = table.cast(pa.schema([pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f
                                          for f in table.schema]))
            self._schema = table.schema
            self._sink = pa.OSFile(str(self.temporary), "wb")
            self._writer = pacsv.CSVWriter(self._sink, self._schema,
                                           write_options=pacsv.WriteOptions(delimiter=self.delimiter,
                                                                            include_header=self.include_header))
        elif self._schema is not None and table.schema != self._schema:
            try:
                table = table.cast(self._schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise AdapterError(f"a scored chunk changed column types and cannot be written: {exc}") from None
        self._writer.write_table(table)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._sink is not None:
            self._sink.close()
        if not self.temporary.exists():  # nothing written at all: an empty result
            self.temporary.write_bytes(b"")
        os.replace(self.temporary, self.path)
        self.bytes_written = self.path.stat().st_size

    def abort(self) -> None:
        try:
            if self._writer is not None:
                self._writer.close()
            if self._sink is not None:
                self._sink.close()
        except (OSError, pa.ArrowException):
            pass
        self.temporary.unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)


register("localFile", intake=LocalFileIntake, output=LocalFileOutput)
