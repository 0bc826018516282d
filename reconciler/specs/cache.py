"""A content-addressed cache of loaded and validated manifest files, so that an unchanged file is
never parsed or validated twice (``watch``, repeated plans, CI runs with a restored cache).

Why content-addressed: an entry's key is a digest of everything its value depends on, so an entry
is either right or never looked up; nothing is ever invalidated by hand. The key is the digest of
the *context* (this program's version and the bytes of its own source, the bytes of every schema,
and the project config parts that change validation: the target, its variables, the overlays'
bytes, the secret roots, the size limit), the file's path (messages and secret checks name it)
and the file's bytes.

Why packs: entries are written into pack files, one per run that wrote any (and one per forked
worker), never one file per entry. Creating a file cost 0.4 ms of system time on the 2-core
machines this runs on (appending the same bytes to an open file: 25 µs), so a first run over
100,000 manifests spent 4 s creating 10,000 entry files, and grew faster than linearly. A pack is
the entries' JSON one after the other, then an index (key, offset, length, CRC-32 of each), the
index's own CRC and the pack's magic; it is written to a temporary file and renamed into place, so
a reader sees a whole pack or none, and never changes after. A run reads the indexes of its
context's packs (``<context>.<time>.<pid>.pack``; the context's digest starts the name) and each
entry it looks up with one positioned read.

Safe to delete (it is only ever a shortcut); safe against concurrent runs (each writes its own
pack; a pack deleted under a run is still read through the descriptor it holds); bounded in size
(the least recently used packs are evicted after a run that wrote some, and a context with more
than ``MAX_PACKS`` packs has them merged into one, keeping the entries used by that run or written
in the last week; the largest pack is left out of a merge while it holds most of the bytes and is
less than a week old); robust to a corrupt or truncated pack or entry (checksums guard the index and
every entry: a bad one is a miss, rewritten, never an error or a wrong answer). Entries are JSON
(orjson) of plain data: decoding one runs no code, unlike pickle, and orjson decoded a file's
entry fastest of orjson, msgpack and pickle (45, 113 and 56 µs of CPU for ten manifests; numbers in
the report of issue #16). JSON cannot carry NaN, infinities or integers beyond 64 bits; documents
holding them are invalid (the loader reports them) and invalid files are never stored, and a value
orjson refuses is simply not cached.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import struct
import tempfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Final

import orjson

from reconciler.specs.files import open_regular

__all__ = ["CACHE_DIR_ENV", "DEFAULT_MAX_BYTES", "MAX_PACKS", "NO_CACHE_ENV", "DocumentCache", "program_digest",
           "schema_digest"]

CACHE_DIR_ENV: Final = "RECONCILER_CACHE_DIR"
NO_CACHE_ENV: Final = "RECONCILER_NO_CACHE"
MAX_BYTES_ENV: Final = "RECONCILER_CACHE_MAX_BYTES"
DEFAULT_MAX_BYTES: Final = 512 * 1024 * 1024
MAX_PACKS: Final = 8  # a context's packs beyond this are merged into one
_PACKS: Final = "packs"
_MAGIC: Final = b"RCP1"
# each index record: the key's 20 bytes, the entry's offset and length, the CRC-32 of its bytes
# (CRC-32 guards against corruption, a torn or flipped entry, not forgery: whoever can write the
# cache can write the manifests; blake2b took 0.3 s of the warm plan of 100,000 manifests, CRC-32
# 0.06 s); the pack ends with the number of records, the index's CRC-32 and the magic again
_RECORD: Final = struct.Struct(">20sQII")
_TAIL: Final = struct.Struct(">II4s")
_TOUCH_AFTER_S: Final = 3600.0  # a pack read is marked recent at most once an hour (eviction is by age)
_STALE_TEMP_S: Final = 3600.0
_KEEP_UNUSED_S: Final = 7 * 24 * 3600.0  # merging keeps unused entries this young


@functools.cache
def program_digest() -> str:
    """This program: its version and the bytes of its own Python source, so that an entry made
    by another build (even one with the same version number) is never trusted."""
    from reconciler.__about__ import __version__

    package = Path(__file__).resolve().parent.parent
    digest = hashlib.blake2b(__version__.encode(), digest_size=20)
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


@functools.cache
def schema_digest() -> str:
    """The bytes of every schema the validator reads (``schemas/``)."""
    from reconciler.contract.schemas import schema_dir

    digest = hashlib.blake2b(digest_size=20)
    for path in sorted(schema_dir().iterdir()):
        if path.is_file():
            digest.update(path.name.encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


class DocumentCache:
    """Entries under ``directory`` for one context (see the module's docstring).

    ``context``: plain data naming what, beyond the file, the entries depend on (the config
    parts); the program and schema digests are added here. Entries :meth:`put` are written when
    :meth:`flush` is called (the owner of a run calls it once, and a forked worker for its own)."""

    def __init__(self, directory: Path, *, context: Any, max_bytes: int | None = None) -> None:
        self.directory = directory
        if max_bytes is None:
            max_bytes = int(os.environ.get(MAX_BYTES_ENV, str(DEFAULT_MAX_BYTES)))
        self.max_bytes = max_bytes
        material = orjson.dumps([program_digest(), schema_digest(), context], option=orjson.OPT_SORT_KEYS)
        self._context = hashlib.blake2b(material, digest_size=20).digest()
        self._prefix = self._context.hex()[:24] + "."
        self.hits = self.misses = self.written = 0
        self._index: dict[bytes, tuple[_Pack, int, int, int]] | None = None  # key -> pack, offset, length, crc
        self._packs: list[_Pack] = []
        self._used: set[bytes] = set()
        self._writer: _Writer | None = None

    @property
    def _pack_dir(self) -> Path:
        return self.directory / _PACKS

    def key(self, file: str, data: bytes) -> str:
        """The entry's name for ``file`` holding ``data`` in this context."""
        digest = hashlib.blake2b(self._context, digest_size=20)
        digest.update(file.encode("utf-8", "surrogateescape") + b"\0")
        digest.update(data)
        return digest.hexdigest()

    def get(self, key: str) -> Any | None:
        """The entry's value, or None: absent, unreadable, truncated or corrupt (all misses)."""
        digest = bytes.fromhex(key)
        found = self._indexed().get(digest)
        value = _read(*found) if found is not None else None
        if found is None or value is None:
            self.misses += 1
            return None
        self.hits += 1
        self._used.add(digest)
        found[0].touch()
        return value

    def put(self, key: str, value: Any) -> None:
        """Store ``value`` (plain data) with the next :meth:`flush`; a cache that cannot be written is no error."""
        try:
            payload = orjson.dumps(value)
        except TypeError:  # not plain JSON data (orjson.JSONEncodeError): not cached
            return
        self.put_encoded(key, payload)

    def put_encoded(self, key: str, payload: bytes) -> None:
        """Store a value already encoded as :meth:`put` encodes it (``orjson.dumps(value)``): a
        forked worker encodes what it validated once, for the cache and for its parent alike."""
        if len(payload) > self.max_bytes:
            return  # it would never be read back
        writer = self._writer
        if writer is None or writer.pid != os.getpid():  # none yet, or its parent's (this is a forked worker)
            writer = self._writer = _Writer.open(self._pack_dir)
            if writer is None:
                return
        digest = bytes.fromhex(key)
        if writer.add(digest, payload):
            self._used.add(digest)
            self.written += 1

    def flush(self) -> None:
        """Write the entries put since the last flush as one pack; then, when this context has more
        than ``MAX_PACKS`` packs, merge those this run read into one (see the module)."""
        writer, self._writer = self._writer, None
        if writer is None or writer.pid != os.getpid():
            return
        newest = writer.finish(self._pack_dir / f"{self._prefix}{time.time_ns():020d}.{os.getpid()}.pack")
        if not newest:
            return
        rest = []
        for pack in self._packs:
            if not pack.path.exists():  # merged or evicted meanwhile by a concurrent run
                continue
            if pack.keys <= newest:  # every entry of it written again (the live memo's one entry, say)
                with contextlib.suppress(OSError):
                    os.unlink(pack.path)
            else:
                rest.append(pack)
        if len(rest) + 1 > MAX_PACKS:
            # the largest pack (the first run's, or the last merge's) is left as it is while it
            # holds most of the bytes and is less than a week old: a watch loop that merges after
            # every eighth edit does not rewrite all the entries each time
            largest = max(rest, key=lambda pack: pack.size)
            if largest.size * 2 > sum(pack.size for pack in rest) and largest.made > time.time() - _KEEP_UNUSED_S:
                rest.remove(largest)
            self._merge(rest, newest)

    def _merge(self, read: list[_Pack], newest: frozenset[bytes]) -> None:
        """One pack for the packs this run read: the entries used by this run or in a pack written
        within ``_KEEP_UNUSED_S``, each once (the latest), none the newest pack holds again."""
        merging = set(read)
        young = time.time() - _KEEP_UNUSED_S
        writer = _Writer.open(self._pack_dir)
        if writer is None:
            return
        for digest, (pack, offset, length, crc) in self._indexed().items():
            if pack not in merging or digest in newest or (digest not in self._used and pack.mtime < young):
                continue
            raw = _read_bytes(pack, offset, length, crc)
            if raw is not None:
                writer.add(digest, raw)
        # named by the time of the merge: which of two packs holding a key is read matters only
        # for the live memo (one key, rewritten), whose rows are checked item by item anyway
        merged = self._pack_dir / f"{self._prefix}{time.time_ns():020d}.{os.getpid()}m.pack"
        if writer.finish(merged) is not None:
            for pack in read:
                if pack.path != merged:
                    with contextlib.suppress(OSError):
                        os.unlink(pack.path)

    def _indexed(self) -> dict[bytes, tuple[_Pack, int, int, int]]:
        """Every entry of this context's packs (read once; a newer pack's entry wins)."""
        if self._index is not None:
            return self._index
        index: dict[bytes, tuple[_Pack, int, int, int]] = {}
        self._index = index
        try:
            names = sorted(name for name in os.listdir(self._pack_dir)
                           if name.startswith(self._prefix) and name.endswith(".pack"))
        except OSError:
            return index
        budget = self.max_bytes  # newest first: past the budget, the oldest packs are the ones not read
        for name in reversed(names):
            opened = _Pack.open(self._pack_dir / name, budget)
            if opened is None:
                continue
            pack, records = opened
            budget -= pack.size
            self._packs.append(pack)
            for digest, offset, length, crc in records:
                index.setdefault(digest, (pack, offset, length, crc))
        return index

    def close(self) -> None:
        """Let go of the packs read (their descriptors), and of entries put and not flushed."""
        for pack in self._packs:
            pack.close()
        self._packs, self._index = [], None
        if self._writer is not None and self._writer.pid == os.getpid():
            self._writer.abandon()
        self._writer = None

    def evict(self) -> int:
        """Remove the least recently used packs (of every context) until the cache holds at most
        80% of ``max_bytes`` (when it holds more than ``max_bytes``), temporary files a crashed run
        left, and the entry files of versions before packs; returns how many files went."""
        removed = _remove_unpacked(self.directory)
        entries: list[tuple[float, int, str]] = []
        now = time.time()
        for entry in self._scan():
            try:
                info = entry.stat()
            except OSError:
                continue
            if entry.name.startswith(".tmp-"):
                if now - info.st_mtime > _STALE_TEMP_S:
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)
                        removed += 1
                continue
            entries.append((info.st_mtime, info.st_size, entry.path))
        total = sum(size for _, size, _ in entries)
        if total <= self.max_bytes:
            return removed
        entries.sort()
        goal = self.max_bytes * 0.8
        for _, size, path in entries:
            if total <= goal:
                break
            with contextlib.suppress(OSError):
                os.unlink(path)
                removed += 1
            total -= size
        return removed

    def _scan(self) -> Iterator[os.DirEntry[str]]:
        try:
            with os.scandir(self._pack_dir) as files:
                found = [f for f in files if f.is_file(follow_symlinks=False)]
        except OSError:
            return
        yield from found


def _pread(fd: int, length: int, offset: int) -> bytes:
    """``os.pread`` where there is one (POSIX); else a seek and a read (a pack is read by one
    thread of one process at a time there: no fork without pread)."""
    if hasattr(os, "pread"):
        return os.pread(fd, length, offset)
    os.lseek(fd, offset, os.SEEK_SET)  # pragma: no cover - Windows
    return os.read(fd, length)  # pragma: no cover


def _read_bytes(pack: _Pack, offset: int, length: int, crc: int) -> bytes | None:
    """An entry's bytes, when they are whole and their checksum matches."""
    try:
        raw = _pread(pack.fd, length, offset)
    except OSError:
        return None
    return raw if len(raw) == length and zlib.crc32(raw) == crc else None


def _read(pack: _Pack, offset: int, length: int, crc: int) -> Any | None:
    raw = _read_bytes(pack, offset, length, crc)
    if raw is None:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


class _Pack:
    """One pack read: its descriptor (kept for the positioned reads of the run, closed with the
    pack), size and index."""

    def __init__(self, path: Path, fd: int, size: int, mtime: float, keys: frozenset[bytes]) -> None:
        self.path, self.fd, self.size, self.mtime, self.keys = path, fd, size, mtime, keys
        self.pid = os.getpid()
        try:  # when it was written: the time its name starts with (<context>.<time_ns>.<pid>.pack)
            self.made = int(path.name.split(".")[1]) / 1e9
        except (IndexError, ValueError):
            self.made = mtime
        self._touched = False

    @classmethod
    def open(cls, path: Path, budget: int) -> tuple[_Pack, list[tuple[bytes, int, int, int]]] | None:
        """The pack at ``path`` and its index records; None when it is not a whole pack, not a
        regular file (a FIFO named like a pack is refused at once, a link not followed), or larger
        than ``budget`` (every read is bounded)."""
        try:
            fd, info = open_regular(path, what="cache pack", follow_symlinks=False)
        except OSError:
            return None
        try:
            size = info.st_size
            if size > budget or size < len(_MAGIC) + _TAIL.size:
                raise ValueError(path)
            count, index_crc, magic = _TAIL.unpack(_pread(fd, _TAIL.size, size - _TAIL.size))
            index_size = count * _RECORD.size
            start = size - _TAIL.size - index_size
            if magic != _MAGIC or start < len(_MAGIC) or _pread(fd, len(_MAGIC), 0) != _MAGIC:
                raise ValueError(path)
            index = _pread(fd, index_size, start)
            if len(index) != index_size or zlib.crc32(index) != index_crc:
                raise ValueError(path)
            records = [(digest, offset, length, crc) for digest, offset, length, crc in _RECORD.iter_unpack(index)
                       if len(_MAGIC) <= offset and offset + length <= start]
            return cls(path, fd, size, info.st_mtime, frozenset(record[0] for record in records)), records
        except (OSError, ValueError, struct.error):
            os.close(fd)
            return None

    def touch(self) -> None:
        """Mark the pack recently used (at most once an hour: eviction goes by age)."""
        if not self._touched:
            self._touched = True
            if time.time() - self.mtime > _TOUCH_AFTER_S:
                with contextlib.suppress(OSError):  # evicted meanwhile by a concurrent run: still read now
                    os.utime(self.path)

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1

    def __del__(self) -> None:  # a cache dropped without close() (a watch loop makes one per run)
        if self.pid == os.getpid():  # never a descriptor of the process this one was forked from
            self.close()


class _Writer:
    """A pack being written: entries appended to a temporary file, the index kept until :meth:`finish`."""

    def __init__(self, handle: BinaryIO, temp: str) -> None:
        self.handle, self.temp, self.pid = handle, temp, os.getpid()
        self.records: list[tuple[bytes, int, int, int]] = []
        self.offset = len(_MAGIC)
        self.seen: set[bytes] = set()

    @classmethod
    def open(cls, directory: Path) -> _Writer | None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
            handle = os.fdopen(fd, "wb")
            handle.write(_MAGIC)
        except OSError:
            return None
        return cls(handle, temp)

    def add(self, digest: bytes, payload: bytes) -> bool:
        if digest in self.seen:
            return False
        try:
            self.handle.write(payload)
        except OSError:
            return False
        self.seen.add(digest)
        self.records.append((digest, self.offset, len(payload), zlib.crc32(payload)))
        self.offset += len(payload)
        return True

    def finish(self, path: Path) -> frozenset[bytes] | None:
        """Write the index and move the pack to ``path``; the keys it holds (empty: it had none, and
        is not written), or None when it could not be written."""
        if not self.records:
            self.abandon()
            return frozenset()
        index = b"".join(_RECORD.pack(*record) for record in self.records)
        try:
            self.handle.write(index + _TAIL.pack(len(self.records), zlib.crc32(index), _MAGIC))
            self.handle.close()
            os.replace(self.temp, path)
        except OSError:
            self.abandon()
            return None
        return frozenset(self.seen)

    def abandon(self) -> None:
        with contextlib.suppress(OSError):
            self.handle.close()
        with contextlib.suppress(OSError):
            os.unlink(self.temp)


def _remove_unpacked(directory: Path) -> int:
    """The entry files of versions before packs, never read now: ``xx/xx<38 hex digits>`` (and
    their temporary files) beside ``packs/``. Only files of exactly that shape are removed, then
    their directory if it is left empty: a cache directory may be given as any directory."""
    removed = 0
    try:
        shards = [entry.path for entry in os.scandir(directory)
                  if entry.is_dir(follow_symlinks=False) and len(entry.name) == 2 and _is_hex(entry.name)]
    except OSError:
        return 0
    for shard in shards:
        name = os.path.basename(shard)
        with contextlib.suppress(OSError), os.scandir(shard) as files:
            for entry in list(files):
                old_entry = len(entry.name) == 40 and entry.name.startswith(name) and _is_hex(entry.name)
                if (old_entry or entry.name.startswith(".tmp-")) and entry.is_file(follow_symlinks=False):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)
                        removed += 1
        with contextlib.suppress(OSError):
            os.rmdir(shard)  # only when empty
    return removed


def _is_hex(text: str) -> bool:
    return all(char in "0123456789abcdef" for char in text)
