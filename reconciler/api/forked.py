"""The live state listed in a forked worker process while the parent loads the manifests.

Why a process: listing is CPU-bound Python (decoding and normalizing each page: about 100 µs a
definition, 10 s at 100,000), and so is loading the manifests; the two are independent until
pairing, and a thread would only share one interpreter lock. The child lists exactly as
:func:`reconciler.api.live.fetch_live` does (the same pages, the same normalization, the same
order) and hands back a compact form per definition: its id, name and hash, and its comparable
form packed as bytes (orjson where that gives the very same value back, pickle otherwise). The
parent unpacks a comparable form only when planning reads it (:class:`PackedLive`), so a
definition costs its bytes (about 0.7 KB) instead of its dictionaries (about 3.5 KB).

Anything unusual (another thread running, a fork refused, the child failing for any reason, a
truncated answer) makes :meth:`ForkedListing.take` return None and the caller lists in-process as
before: the same requests, the same errors and messages, only not overlapped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import signal
from collections.abc import Callable
from typing import Any, Final

import orjson

from reconciler import cores
from reconciler.api import aio
from reconciler.api.client import Client
from reconciler.api.live_memo import LiveMemo, Row
from reconciler.engine import collector
from reconciler.engine.exact import exact_form, read_exact
from reconciler.engine.normalize import live_from_api
from reconciler.engine.types import Live

__all__ = ["ForkedListing", "PackedLive", "pack", "unpack"]

_ORJSON: Final = b"j"
_SLICE: Final = 100
_PICKLE: Final = b"p"


def pack(comparable: dict[str, Any], exact: bytes | None = None) -> bytes:
    """A listed definition's comparable form as bytes :func:`unpack` turns into an equal value of
    the same types: its exact form (:mod:`reconciler.engine.exact`: orjson, sorted keys, only when
    reading it back gives exactly the value, the usual case), else pickle. ``exact``: the form's
    exact bytes when already worked out (a :class:`Live` holds them)."""
    if exact is None:
        exact = exact_form(comparable)
    if exact is not None:
        return _ORJSON + exact
    return _PICKLE + pickle.dumps(comparable, protocol=pickle.HIGHEST_PROTOCOL)


def unpack(packed: bytes) -> dict[str, Any]:
    value: dict[str, Any] = orjson.loads(packed[1:]) if packed[:1] == _ORJSON else pickle.loads(packed[1:])
    return value


class PackedLive(Live):
    """A live definition whose comparable form stays packed until read (then unpacked afresh each
    time: planning reads it once or twice, and keeping it would hold the dictionaries again). A
    form packed as JSON is held as its exact bytes only (:attr:`exact`; ``packed`` is then None)."""

    __slots__ = ("packed",)
    packed: bytes | None

    def __init__(self, *, id: str, name: str, hash: str, packed: bytes) -> None:
        json_form = packed[:1] == _ORJSON
        self._set(id, name, hash, packed[1:] if json_form else None, None if json_form else packed)

    @classmethod
    def of_row(cls, row: Row) -> PackedLive:
        """From a listed row (the form's exact bytes held as they came: no copy of 100,000 forms)."""
        one = object.__new__(cls)
        id_, name, hash_, form, json_form = row
        one._set(id_, name, hash_, form if json_form else None, None if json_form else _PICKLE + form)
        return one

    def _set(self, id_: str, name: str, hash_: str, exact: bytes | None, packed: bytes | None) -> None:
        object.__setattr__(self, "id", id_)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "hash", hash_)
        object.__setattr__(self, "exact", exact)  # planning compares these bytes without unpacking
        object.__setattr__(self, "packed", packed)

    @property  # type: ignore[override]  # Live is frozen: its comparable is read-only there too
    def comparable(self) -> dict[str, Any]:
        if self.exact is not None:
            return read_exact(self.exact)
        assert self.packed is not None
        return unpack(self.packed)

    def unpacked(self) -> Live:
        return Live(id=self.id, name=self.name, comparable=self.comparable, hash=self.hash)


def _row(item: dict[str, Any]) -> Row:
    live = live_from_api(item)
    if live.exact is not None:
        return (live.id, live.name, live.hash, live.exact, True)
    return (live.id, live.name, live.hash, pickle.dumps(live.comparable, protocol=pickle.HIGHEST_PROTOCOL), False)


async def _listed(client: Client, parent: int, memo: LiveMemo | None) -> list[Row]:
    """What fetch_live lists, compact: (id, name, hash, packed comparable) per definition, through
    ``memo`` when given. Stops when the parent is gone (killed: nobody would read the answer)."""
    out: list[Row] = []
    pages = client.iter_pages(prefetch=True, known=memo.known if memo is not None else None)
    try:
        async for page in pages:
            if os.getppid() != parent:
                raise SystemExit(1)
            if memo is not None and page.known:  # the same bytes as a page of the last listing
                out.extend(memo.recalled(page))
                continue
            strict = page.strict
            if memo is not None:
                memo.start_page()
            for start, item in enumerate(page):
                out.append(memo.row(item, _row, strict=strict) if memo is not None else _row(item))
                if start % _SLICE == _SLICE - 1:
                    await asyncio.sleep(0)  # the next page's response is read meanwhile (as fetch_live does)
            if memo is not None:
                memo.end_page(page)
            del page
    finally:
        await pages.aclose()  # type: ignore[attr-defined]
    return out


class ForkedListing:
    """A listing started in a child process (:meth:`start`); :meth:`take` its result in the parent.

    ``open_client``: makes the client the child lists with (the same the command would use);
    ``open_memo``: makes the memo of rows it lists through (:mod:`reconciler.api.live_memo`), or None."""

    def __init__(self, pid: int, read_fd: int) -> None:
        self.pid = pid
        self._read_fd = read_fd
        self._done = False

    @classmethod
    def start(cls, open_client: Callable[[], Any],
              open_memo: Callable[[], LiveMemo] | None = None) -> ForkedListing | None:
        """Fork the listing; None where forking is not safe or possible (then list in-process)."""
        if not cores.can_fork():
            return None
        parent = os.getpid()
        read_fd, write_fd = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read_fd)
            os.close(write_fd)
            return None
        if pid == 0:  # the child: list, write the answer, leave without running the parent's cleanup
            os.close(read_fd)
            _child(open_client, open_memo, write_fd, parent)
        os.close(write_fd)
        return cls(pid, read_fd)

    def take(self) -> list[Live] | None:
        """The child's listing, or None when it failed in any way (list in-process then)."""
        if self._done:
            return None
        self._done = True
        rows: list[Row] | None = None
        try:  # unpickled straight from the pipe: the answer (70 MB at 100,000) is never held whole
            with open(self._read_fd, "rb", closefd=True) as answer:
                rows = pickle.load(answer)
        except Exception:  # the child failed (no answer) or the answer is truncated or damaged
            rows = None
        if rows is None:
            _reap(self.pid, wait=True)
            return None
        # A whole answer (a pickle ends with its own stop mark): the child may still be keeping its
        # memo of rows; it is reaped when done (by the next listing, or it outlives this process).
        _UNREAPED.add(self.pid)
        for pid in tuple(_UNREAPED):
            _reap(pid, wait=False)
        with collector.paused():  # 100,000 small objects, all acyclic
            return [PackedLive.of_row(row) for row in rows]

    def close(self) -> None:
        """End the child if its answer was not taken (the command failed before planning)."""
        if self._done:
            return
        self._done = True
        with contextlib.suppress(OSError):
            os.close(self._read_fd)
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)
        _reap(self.pid, wait=True)


# children whose answer was taken while they kept their memo (reaped without waiting, later)
_UNREAPED: set[int] = set()


def _reap(pid: int, *, wait: bool) -> None:
    try:
        done, _ = os.waitpid(pid, 0 if wait else os.WNOHANG)
    except ChildProcessError:  # reaped already
        done = pid
    if done == pid:
        _UNREAPED.discard(pid)


def _child(open_client: Callable[[], Any], open_memo: Callable[[], LiveMemo] | None, write_fd: int,
           parent: int) -> None:
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C in the parent ends the child at once

        async def listing() -> tuple[list[Row], LiveMemo | None]:
            async with open_client() as client:
                with collector.paused():
                    memo = open_memo() if open_memo is not None else None  # read while the first page comes
                    return await _listed(client, parent, memo), memo

        rows, memo = aio.run(listing())  # not asyncio.run: it would repr the 100,000 rows twice
        with open(write_fd, "wb", closefd=False) as answer:  # written as it is pickled: no second copy
            pickle.dump(rows, answer, protocol=pickle.HIGHEST_PROTOCOL)
        os.close(write_fd)  # the parent has its whole answer now; the memo is kept meanwhile
        if memo is not None:
            with collector.paused():
                memo.save()
        code = 0
    except BaseException:  # the parent lists again in-process and reports the error itself
        code = 1
    finally:
        with contextlib.suppress(OSError):
            os.close(write_fd)
        os._exit(code)
