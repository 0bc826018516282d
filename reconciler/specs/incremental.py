"""Validation through the document cache: each manifest file is loaded, put through its target's
variables and overlays and validated on its own, and a file whose bytes (and context) were seen
before is taken from :mod:`reconciler.specs.cache` instead.

Why per file: everything validation says about a document depends only on its own file, the
schemas and the config, except the duplicate-name check across files and the warning about
overlays no manifest used; those two run over all documents on every run (they are cheap).

Only a file that is entirely valid is stored. When anything in the run is wrong (a file with an
error, a duplicate name, a directory that cannot be listed), the whole run is validated again
without the cache, so that a report with errors is exactly the uncached one, with every position.
The cache only ever shortens the road to a valid set of manifests.

Why workers: validating and deriving a manifest costs about 440 µs of CPU, reviving it from an
entry about 60 µs. The files that miss the cache (all of them without one, ``--no-cache``) are
validated in processes forked once every file's bytes are read (:func:`reconciler.cores.in_ranges`;
this process takes the first range): a worker returns, per file, the entry the cache stores,
encoded, and this process revives it exactly as a hit. A file is the same whether it was validated
here, in a worker or on an earlier run (the same documents, warnings and derived values), as hits
and misses already were; without forking (few files, one core, other threads running) every file
is validated here.
"""

from __future__ import annotations

import gc
import hashlib
import os
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from reconciler import cores
from reconciler.contract.issues import Issue
from reconciler.specs import environments, secrets
from reconciler.specs.cache import DocumentCache
from reconciler.specs.config import TargetConfig
from reconciler.specs.files import read_limited
from reconciler.specs.load import LoadedDocument, iter_manifest_files, load_bytes, max_file_bytes
from reconciler.specs.validate import ValidationReport, duplicate_name_issues, validate_documents

__all__ = ["FORK_MINIMUM_BYTES", "Derivation", "Validated", "validate_with_cache"]

_ENTRY_VERSION = 2

# Files missing the cache are validated in forked workers when they hold this many bytes (bytes,
# not files: a file may hold one manifest or fifty). Forking and the first import of
# multiprocessing cost 25-50 ms; measured on 2 shared cores with files of ten manifests (~4.5 KB,
# ~450 bytes a manifest), one process / two: 16 files (75 KB) 58-106 / 78-87 ms, 32 files (147 KB)
# 116-178 / 98-151 ms, 64 files (290 KB) 279-363 / 230-255 ms. From 128 KB (~290 manifests) on.
FORK_MINIMUM_BYTES: Final = 128 * 1024

# what a worker says of one file that missed the cache (with the entry's orjson bytes)
_FAILED: Final = 0  # it has an error: the whole run is validated again without the cache
_ENCODED: Final = 1  # valid; not stored (no cache, or it names a secret file)
_STORED: Final = 2  # valid and stored
_PLAIN: Final = 3  # valid, but its entry is not plain JSON (orjson refused it): validated again here


@dataclass(frozen=True)
class Derivation:
    """What a caller builds from each valid document, cached with it: ``make`` turns a document
    into plain data (JSON: dicts, lists, strings, numbers), ``revive`` plain data into the value.
    ``tag`` names it in the cache's context."""

    tag: str
    make: Callable[[LoadedDocument], Any]
    revive: Callable[[Any], Any]


@dataclass(slots=True)
class Validated:
    """The report (as :func:`environments.validate_for` gives it) and, with a derivation, one
    derived value per valid document, in the same order."""

    report: ValidationReport
    derived: list[Any] | None = None
    hits: int = 0
    misses: int = 0


def _target(targets: Mapping[str, TargetConfig] | None, target_name: str | None,
            overlays_root: Path | None) -> tuple[TargetConfig | None, Path | None]:
    """The target validation applies (None: plain manifests) and the root of its overlays,
    chosen as :func:`environments.validate_for` chooses."""
    if target_name is None:
        if not targets:
            return None, None
        return environments.default_target(targets), None
    return environments.resolve_target(targets, target_name), overlays_root


def _overlays_state(directory: Path | None) -> list[list[str]] | None:
    """Every overlay file's name and digest (what the entries depend on); None when one cannot be read."""
    if directory is None or not directory.is_dir():
        return []
    out = []
    for path in sorted(directory.iterdir()):
        if path.suffix in (".yaml", ".yml"):
            try:
                data = read_limited(path, limit=max_file_bytes(), what="overlay file")
            except OSError:
                return None
            out.append([path.name, hashlib.blake2b(data, digest_size=20).hexdigest()])
    return out


def validate_with_cache(paths: Iterable[str | os.PathLike[str]], *, targets: Mapping[str, TargetConfig] | None,
                        target_name: str | None, overlays_root: Path | None,
                        secret_roots: Sequence[str | os.PathLike[str]] | None, cache_dir: Path | None,
                        derivation: Derivation | None = None, context: Any = None,
                        fork_minimum: int = FORK_MINIMUM_BYTES, workers: int | None = None) -> Validated:
    """What :func:`environments.validate_for` reports, through the cache in ``cache_dir`` (None:
    no cache: every file is validated as a miss, nothing is read or written).

    ``context``: plain data for the cache key beyond what this function adds (the target, its
    variables, the overlays, the secret roots, the size limit). ``fork_minimum``: the bytes of the files
    missing the cache from which they are validated in forked workers; ``workers``: the processes in all
    (default: the cores this process may use)."""
    # Loading, validating and deriving allocate millions of small containers that stay alive;
    # the cyclic collector's full passes walk all of them again and again (at 100,000 manifests,
    # model and Desired cost 13x the CPU of 10,000 with it on): off for this step, as in load_paths.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _validate(list(paths), targets=targets, target_name=target_name, overlays_root=overlays_root,
                         secret_roots=secret_roots, cache_dir=cache_dir, derivation=derivation, context=context,
                         fork_minimum=fork_minimum, workers=workers)
    finally:
        if collecting:
            gc.enable()


def _validate(paths: list[str | os.PathLike[str]], *, targets: Mapping[str, TargetConfig] | None, target_name: str | None,
              overlays_root: Path | None, secret_roots: Sequence[str | os.PathLike[str]] | None,
              cache_dir: Path | None, derivation: Derivation | None, context: Any, fork_minimum: int,
              workers: int | None) -> Validated:
    target, root = _target(targets, target_name, overlays_root)
    done = _through_cache(paths, target, root, secret_roots, cache_dir, derivation, context,
                          fork_minimum=fork_minimum, workers=workers)
    if done is not None:
        return done
    report = environments.validate_for(paths, targets=targets, target_name=target_name, overlays_root=overlays_root,
                                       secret_roots=secret_roots)
    derived = [derivation.revive(derivation.make(doc)) for doc in report.documents] if derivation else None
    return Validated(report=report, derived=derived)


def _target_context(target: TargetConfig | None, directory: Path | None, overlays: list[list[str]]) -> Any:
    """The parts of the target model that change what validation says: its name (in messages), its
    variables, the hint of an unknown one, and its overlays (directory and every file's digest).
    Where requests go (endpoint, token, scope) changes nothing here."""
    if target is None:
        return None
    return [target.name, sorted([k, type(v).__name__, v] for k, v in target.variables.items()), target.unknown_hint,
            target.use_overlays, str(directory) if directory else None, overlays]


@dataclass(slots=True)
class _File:
    docs: list[LoadedDocument]
    warnings: list[Issue]
    used: list[str]
    checked: int
    derived: list[Any]


def _through_cache(paths: list[str | os.PathLike[str]], target: TargetConfig | None, root: Path | None,
                   secret_roots: Sequence[str | os.PathLike[str]] | None, cache_dir: Path | None,
                   derivation: Derivation | None, context: Any, *, fork_minimum: int,
                   workers: int | None) -> Validated | None:
    """The validated run file by file, through the cache in ``cache_dir`` (None: none), or None
    when it must be validated as a whole (see the module)."""
    walk_errors: list[Any] = []
    files = list(iter_manifest_files(paths, walk_errors))
    if walk_errors or not files:
        return None
    roots = [str(r) for r in (secrets.manifest_roots(paths) if secret_roots is None else secret_roots)]
    directory = target.overlays_dir(root=root) if target is not None and target.use_overlays else None
    overlays = _overlays_state(directory)
    if overlays is None:
        return None
    limit = max_file_bytes()
    cache_context = [_ENTRY_VERSION, context, roots, limit, derivation.tag if derivation else None,
                     _target_context(target, directory, overlays)]
    keyed = DocumentCache(cache_dir, context=cache_context) if cache_dir is not None else None
    stored = False
    try:
        contents: list[bytes] = []
        keys: list[str] = []
        ones: list[_File | None] = []
        for path in files:
            try:
                data = read_limited(path, limit=limit, what="manifest file")
            except OSError:
                return None
            contents.append(data)
            if keyed is None:
                ones.append(None)
                continue
            key = keyed.key(str(path), data)
            keys.append(key)
            entry = keyed.get(key)
            ones.append(_revived(entry, path, data, derivation) if entry is not None else None)
        missed = [i for i, one in enumerate(ones) if one is None]
        parent = os.getpid()

        def work(start: int, stop: int) -> list[tuple[int, bytes]]:
            """Each file's state and, from a worker, its entry encoded; in this process (its own
            range, or everything when it does not fork) the file is kept as validated, as before
            workers: encoding and reviving it costs ~100 µs a manifest, and the entries' bytes (200 MB
            at 100,000 manifests) would pile up here."""
            out = []
            here = os.getpid() == parent
            for i in missed[start:stop]:
                key = keys[i] if keyed is not None else ""
                if here:
                    one = _validated(files[i], contents[i], target, root, roots, derivation)
                    state = _FAILED if one is None else _kept(one, keyed, key, derivation)
                    ones[i] = one
                    out.append((state, b""))
                else:
                    out.append(_miss(files[i], contents[i], keyed, key, target, root, roots, derivation))
                if out[-1][0] == _FAILED:  # the run is validated again as a whole: the rest is not needed
                    break
            if not here and keyed is not None:
                keyed.flush()  # a worker's entries, as a pack of its own
            return out

        size = sum(len(contents[i]) for i in missed)
        results = cores.in_ranges(work, len(missed), minimum=1 if size >= fork_minimum else len(missed) + 1,
                                  workers=workers)
        if any(state == _FAILED for state, _ in results):
            return None
        assert len(results) == len(missed), "a range stops early only at a file with an error"
        for n, i in enumerate(missed):
            state, payload = results[n]
            results[n] = (state, b"")  # each entry's bytes freed once revived
            stored = stored or state == _STORED
            if ones[i] is None:  # a worker's: the entry revived as a hit (or, not plain JSON, validated here)
                if state == _PLAIN:
                    one = _validated(files[i], contents[i], target, root, roots, derivation)
                    if one is not None:
                        _kept(one, None, "", derivation)
                else:
                    one = _revived(orjson.loads(zlib.decompress(payload)), files[i], contents[i], derivation)
                if one is None:
                    return None
                ones[i] = one
        documents: list[LoadedDocument] = []
        derived: list[Any] = []
        warnings: list[Issue] = []
        used: set[Path] = set()
        checked = 0
        for one in ones:
            assert one is not None, "every file is a hit or was validated above"
            documents.extend(one.docs)
            derived.extend(one.derived)
            warnings.extend(one.warnings)
            used.update(Path(p) for p in one.used)
            checked += one.checked
        if duplicate_name_issues(documents):
            return None
        if target is not None:
            warnings.extend(environments.unused_overlay_issues(directory, used, target))
        warnings.sort(key=lambda i: (i.file, i.line, i.col, i.field))
        report = ValidationReport(documents=documents, issues=warnings, files=len(files), checked=checked)
        return Validated(report=report, derived=derived if derivation else None, hits=keyed.hits if keyed else 0,
                         misses=keyed.misses if keyed else 0)
    finally:
        if keyed is not None:
            keyed.flush()
            if keyed.written or stored:  # this process's entries or a worker's
                keyed.evict()
            keyed.close()


def _kept(one: _File, keyed: DocumentCache | None, key: str, derivation: Derivation | None) -> int:
    """A file validated in this process: stored (unless there is no cache or it names a secret
    file), its derived values revived from plain data (the same road as a hit's)."""
    state = _ENCODED
    if keyed is not None and not any(_secret_file_refs(doc.data) for doc in one.docs):
        keyed.put(key, _entry(one))
        state = _STORED
    if derivation is not None:
        one.derived = [derivation.revive(made) for made in one.derived]
    return state


def _miss(path: Path, data: bytes, keyed: DocumentCache | None, key: str, target: TargetConfig | None,
          root: Path | None, roots: Sequence[str], derivation: Derivation | None) -> tuple[int, bytes]:
    """A file that missed the cache validated in a worker: its entry encoded, and stored unless
    there is no cache or it names a secret file. Returned compressed (zlib level 1): entries of
    ten manifests shrink from 20 KB to 1.5 KB for 190 µs here and 85 µs in the parent, and a
    worker's results at 100,000 manifests would otherwise stand in the parent's memory as 100 MB
    at once (twice, while unpickled)."""
    one = _validated(path, data, target, root, roots, derivation)
    if one is None:
        return _FAILED, b""
    try:
        payload = orjson.dumps(_entry(one))
    except TypeError:  # orjson.JSONEncodeError: not plain JSON data
        return _PLAIN, b""
    state = _ENCODED
    if keyed is not None and not any(_secret_file_refs(doc.data) for doc in one.docs):
        keyed.put_encoded(key, payload)
        state = _STORED
    return state, zlib.compress(payload, 1)


def _validated(path: Path, data: bytes, target: TargetConfig | None, root: Path | None,
               roots: Sequence[str], derivation: Derivation | None) -> _File | None:
    """One file validated as the whole run would validate it; None when it has any error."""
    docs, load_errors = load_bytes(data, file=str(path))
    if load_errors:
        return None
    refused: list[LoadedDocument] = []
    env_issues: list[Issue] = []
    seen = docs
    if target is not None:
        seen, env_issues = environments.apply_environment(docs, target, overlays_root=root, refused=refused,
                                                          unused_warnings=False)
    report = validate_documents(seen, (), files=1, secret_roots=roots, refused=refused)
    issues = environments.relocate_issues([*report.issues, *env_issues], seen) if target is not None else report.issues
    if refused or len(report.documents) != len(seen) or any(i.severity == "error" for i in issues):
        return None
    used = sorted({str(Path(d.overlay_file).resolve()) for d in seen if isinstance(d, environments.OverlaidDocument)})
    made = [derivation.make(doc) for doc in seen] if derivation else []
    return _File(docs=list(seen), warnings=list(issues), used=used, checked=len(docs), derived=made)


def _secret_file_refs(data: dict[str, Any]) -> bool:
    """Whether a document names a secret file: whether that file stays inside the project depends
    on the filesystem (links), not on bytes the key covers, so such a file is never cached."""
    spec = data.get("spec")
    job = spec.get("batchPredictionJob") if isinstance(spec, dict) else None
    instance = job.get("predictionInstance") if isinstance(job, dict) else None
    if not isinstance(instance, dict):
        return False
    return any(isinstance(ref, dict) and "file" in ref for key, ref in instance.items() if key.endswith("KeyFrom"))


def _entry(one: _File) -> dict[str, Any]:
    return {"docs": [[d.index, d.line, d.col, d.data] for d in one.docs],
            "warnings": [[i.file, i.line, i.col, i.field, i.message, i.hint, i.severity] for i in one.warnings],
            "used": one.used, "checked": one.checked, "derived": one.derived}


def _revived(entry: Any, path: Path, data: bytes, derivation: Derivation | None) -> _File | None:
    """An entry as documents; None when it is not the shape this version writes (then a miss).
    Documents keep their file's text, so positions can be worked out again if a message needs one."""
    try:
        text = data.decode("utf-8-sig")
        file = str(path)
        docs = [LoadedDocument(file=file, index=index, data=doc, line=line, col=col, text=text)
                for index, line, col, doc in entry["docs"]]
        warnings = [Issue(f, line, col, fld, message, hint, severity)
                    for f, line, col, fld, message, hint, severity in entry["warnings"]]
        made = entry["derived"]
        if derivation is not None and len(made) != len(docs):
            return None
        one = _File(docs=docs, warnings=warnings, used=list(entry["used"]), checked=int(entry["checked"]),
                    derived=[derivation.revive(m) for m in made] if derivation else [])
    except (KeyError, TypeError, ValueError, UnicodeDecodeError):
        return None
    if not all(isinstance(d.data, dict) for d in docs):
        return None
    return one
