"""A content-addressed cache of loaded and validated manifest files, so that an unchanged file is
never parsed or validated twice (``watch``, repeated plans, CI runs with a restored cache).

Why content-addressed: an entry's key is a digest of everything its value depends on, so an entry
is either right or never looked up; nothing is ever invalidated by hand. The key is the digest of
the *context* (this program's version and the bytes of its own source, the bytes of every schema,
and the project config parts that change validation: the target, its variables, the overlays'
bytes, the secret roots, the size limit), the file's path (messages and secret checks name it)
and the file's bytes.

Safe to delete (it is only ever a shortcut); safe against concurrent runs (an entry is written
to a temporary file and renamed into place, so a reader sees a whole entry or none); bounded in
size (the oldest entries are evicted after a run that wrote some); robust to a corrupt or
truncated entry (a checksum guards every entry: a bad one is a miss, rewritten, never an error
or a wrong answer). Entries are JSON (orjson) of plain data: decoding one runs no code, unlike
pickle, and orjson decoded a file's entry fastest of orjson, msgpack and pickle (45, 113 and 56 µs
of CPU for ten manifests; numbers in the report of issue #16). JSON cannot carry NaN, infinities or
integers beyond 64 bits; documents holding them are invalid (the loader reports them) and invalid
files are never stored, and a value orjson refuses is simply not cached.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import tempfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import orjson

__all__ = ["CACHE_DIR_ENV", "DEFAULT_MAX_BYTES", "NO_CACHE_ENV", "DocumentCache", "program_digest",
           "schema_digest"]

CACHE_DIR_ENV: Final = "RECONCILER_CACHE_DIR"
NO_CACHE_ENV: Final = "RECONCILER_NO_CACHE"
MAX_BYTES_ENV: Final = "RECONCILER_CACHE_MAX_BYTES"
DEFAULT_MAX_BYTES: Final = 512 * 1024 * 1024
_MAGIC: Final = b"RCC2"
# CRC-32 of the payload, after the magic: it guards against corruption (a torn or flipped entry),
# not forgery (whoever can write the cache can write the manifests); blake2b took 0.3 s of the warm
# plan of 100,000 manifests (200 MB of entries), CRC-32 takes 0.06 s
_SUM: Final = 4
_TOUCH_AFTER_S: Final = 3600.0  # an entry read is marked recent at most once an hour (eviction is by age)
_STALE_TEMP_S: Final = 3600.0


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
    parts); the program and schema digests are added here."""

    def __init__(self, directory: Path, *, context: Any, max_bytes: int | None = None) -> None:
        self.directory = directory
        if max_bytes is None:
            max_bytes = int(os.environ.get(MAX_BYTES_ENV, str(DEFAULT_MAX_BYTES)))
        self.max_bytes = max_bytes
        material = orjson.dumps([program_digest(), schema_digest(), context], option=orjson.OPT_SORT_KEYS)
        self._context = hashlib.blake2b(material, digest_size=20).digest()
        self.hits = self.misses = self.written = 0
        self._made: set[Path] = set()  # shard directories known to exist (a mkdir each put was a tenth of it)

    def key(self, file: str, data: bytes) -> str:
        """The entry's name for ``file`` holding ``data`` in this context."""
        digest = hashlib.blake2b(self._context, digest_size=20)
        digest.update(file.encode("utf-8", "surrogateescape") + b"\0")
        digest.update(data)
        return digest.hexdigest()

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / key

    def get(self, key: str) -> Any | None:
        """The entry's value, or None: absent, unreadable, truncated or corrupt (all misses)."""
        path = self._path(key)
        try:
            with open(path, "rb") as handle:
                raw = handle.read(self.max_bytes + 1)  # bounded: an entry beyond the cache's size is a miss
                mtime = os.fstat(handle.fileno()).st_mtime
        except OSError:
            self.misses += 1
            return None
        value = _decode(raw) if len(raw) <= self.max_bytes else None
        if value is None:
            self.misses += 1
            return None
        self.hits += 1
        if time.time() - mtime > _TOUCH_AFTER_S:
            with contextlib.suppress(OSError):  # evicted meanwhile by a concurrent run: still a hit now
                os.utime(path)
        return value

    def put(self, key: str, value: Any) -> None:
        """Store ``value`` (plain data) atomically; a cache that cannot be written is no error."""
        try:
            payload = orjson.dumps(value)
        except TypeError:  # not plain JSON data (orjson.JSONEncodeError): not cached
            return
        self.put_encoded(key, payload)

    def put_encoded(self, key: str, payload: bytes) -> None:
        """Store a value already encoded as :meth:`put` encodes it (``orjson.dumps(value)``): a
        forked worker encodes what it validated once, for the cache and for its parent alike."""
        blob = _MAGIC + zlib.crc32(payload).to_bytes(_SUM, "big") + payload
        if len(blob) > self.max_bytes:
            return  # it would never be read back (see get)
        path = self._path(key)
        try:
            if path.parent not in self._made:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._made.add(path.parent)
            try:
                fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            except FileNotFoundError:  # the cache was deleted meanwhile: made again
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(blob)
                os.replace(temp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise
        except OSError:
            return
        self.written += 1

    def evict(self) -> int:
        """Remove the oldest entries until the cache holds at most 80% of ``max_bytes`` (when it
        holds more than ``max_bytes``), and temporary files a crashed run left; returns how many."""
        entries: list[tuple[float, int, str]] = []
        removed = 0
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
            shards = list(os.scandir(self.directory))
        except OSError:
            return
        for shard in shards:
            if shard.is_dir(follow_symlinks=False) and len(shard.name) == 2:
                with contextlib.suppress(OSError), os.scandir(shard.path) as files:
                    yield from (f for f in files if f.is_file(follow_symlinks=False))


def _decode(raw: bytes) -> Any | None:
    head = len(_MAGIC) + _SUM
    if len(raw) < head or raw[:len(_MAGIC)] != _MAGIC:
        return None
    payload = raw[head:]
    if zlib.crc32(payload).to_bytes(_SUM, "big") != raw[len(_MAGIC):head]:
        return None
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
