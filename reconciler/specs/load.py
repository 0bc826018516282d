"""Reading manifests: files and directories into plain data, keeping the line and column of every
key and value so that later errors can point at them.

Pure apart from reading files. YAML is composed with PyYAML's safe (C, when present) composer and
constructed here, by hand, so that we can refuse what a manifest has no business containing
(duplicate keys, language-specific tags, alias bombs) with a located message instead of a
traceback, and keep positions without a second parse.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reconciler.contract.issues import Mark, Path_
from reconciler.specs.files import UnreadableFile, read_limited

try:  # the C composer is several times faster; fall back silently where libyaml is missing
    _Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader

DEFAULT_MAX_FILE_BYTES = 1024 * 1024
MAX_NODES_PER_DOCUMENT = 100_000
MAX_DEPTH = 64  # a manifest nests about eight levels deep; far deeper is an attack or a mistake
PROJECT_CONFIG_NAMES = frozenset({"reconciler.yaml", "reconciler.yml"})


_STR = "tag:yaml.org,2002:str"
_SCALAR_TAGS = {
    _STR,
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
}
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
# YAML 1.2 (editors, check-jsonschema, every JSON Schema tool) has two booleans; PyYAML follows
# YAML 1.1, where yes/no/on/off are booleans too. One file must mean one thing to every tool, so
# those words stay text here, and where a boolean is expected validation says "write true".
_YAML12_BOOLEANS = frozenset({"true", "True", "TRUE", "false", "False", "FALSE"})
_INT64 = 2**63  # the API stores 64-bit integers
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_constructor = yaml.SafeLoader("")  # only its scalar constructors are used
_CACHE_LIMIT = 50_000
# Resolving a plain scalar's tag runs a list of regexes in Python for every scalar, and building an
# int/bool/null runs PyYAML's constructors; both answers depend only on the text, and manifests
# repeat the same keys and values, so both are memoized (bounded) for the process.
_TAGS: dict[str, str] = {}  # a plain scalar's text -> its tag
_SCALARS: dict[tuple[str, str], Any] = {}


def _caching_loader(base: type[yaml.SafeLoader]) -> type[yaml.SafeLoader]:
    """``base`` (PyYAML's C or pure-Python safe loader) with memoized tag resolution and YAML 1.2
    booleans. Tests build the pure-Python one too: it is what runs where libyaml is missing."""

    assert not base.yaml_path_resolvers, "the safe loaders resolve by value only"

    class CachingLoader(base):  # type: ignore[misc, valid-type]
        # The composer calls these around every node for path resolvers, which the safe loaders
        # have none of: builtins taking the same arguments and doing nothing, in place of Python
        # methods that return at once (their calls were a tenth of loading a manifest).
        descend_resolver = staticmethod(slice)  # (parent node, index)
        ascend_resolver = staticmethod(tuple)  # ()

        def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
            if kind is yaml.ScalarNode:
                if not implicit[0]:  # quoted or block: PyYAML's resolver says str without looking
                    return _STR
                tag = _TAGS.get(value)  # plain: the tag depends on the text only
                if tag is None:
                    tag = super().resolve(kind, value, implicit)
                    if tag == _BOOL and value not in _YAML12_BOOLEANS:
                        tag = _STR
                    if len(_TAGS) < _CACHE_LIMIT:
                        _TAGS[value] = tag
                return tag
            return super().resolve(kind, value, implicit)

    return CachingLoader


_CachingLoader = _caching_loader(_Loader)


@dataclass(slots=True)
class LoadedDocument:
    """One YAML document: its data and where each part of it stands in the file.

    Positions are worked out again from ``text`` (the whole file, shared by its documents) on
    first use of :attr:`values`, :attr:`keys` or :meth:`mark`. Most documents are valid and never
    need them; recording them for every key and value, or keeping the composed YAML nodes alive,
    cost several times the parse itself (the nodes mostly in garbage-collector passes).
    """

    file: str
    index: int  # 0-based position of the document in its file
    data: dict[str, Any]
    line: int
    col: int
    text: str | None = field(default=None, repr=False, compare=False)
    # values YAML can write but the API cannot take (.nan, .inf, integers beyond 64 bits): kept in
    # ``data`` so that the rest of the document is still checked, reported by validation
    problems: tuple[LoadError, ...] = field(default=(), repr=False, compare=False)
    _values: dict[Path_, Mark] | None = field(default=None, repr=False, compare=False)
    _keys: dict[Path_, Mark] | None = field(default=None, repr=False, compare=False)
    # where ``metadata.name``'s value starts, noted while the document is built (its nodes are at
    # hand then): policy verdicts and other per-manifest issues are located there, and working out
    # every position of the file again for each of them cost milliseconds per document
    _name_mark: Mark | None = field(default=None, repr=False, compare=False)

    @property
    def values(self) -> dict[Path_, Mark]:
        """Where each value starts, by path."""
        return self._positions()[0]

    @property
    def keys(self) -> dict[Path_, Mark]:
        """Where each mapping key stands, by the path of its value."""
        return self._positions()[1]

    def _positions(self) -> tuple[dict[Path_, Mark], dict[Path_, Mark]]:
        """Both position tables, recorded on first use."""
        if self._values is None or self._keys is None:
            self._record_positions()
        assert self._values is not None and self._keys is not None
        return self._values, self._keys

    def _record_positions(self) -> None:
        self._values, self._keys = {}, {}
        if self.text is None:  # documents built from plain data (API bodies) have no positions
            return
        node = _nth_node(self.text, self.index)
        if node is not None:
            _construct(node, (), self, [MAX_NODES_PER_DOCUMENT], set(), [])

    def mark(self, path: Path_, *, key: bool = False) -> Mark:
        """The closest known position for ``path``: its key or value, else its nearest parent."""
        probe = tuple(path)
        if not key and probe == _NAME_PATH and self._name_mark is not None:
            return self._name_mark  # the same mark the position tables hold for it
        keys, values = self.keys, self.values
        table = keys if key else values
        while probe:
            if probe in table:
                return table[probe]
            if not key and probe in keys:
                return keys[probe]
            probe = probe[:-1]
        return Mark(self.line, self.col)


@dataclass(frozen=True, slots=True)
class LoadError:
    """Input that could not be read as manifests at all, located as well as it can be."""

    file: str
    line: int
    col: int
    message: str
    hint: str | None = None
    field: str = ""  # the field path, where the problem sits inside a document
    # a value problem (LoadedDocument.problems) whose value could not be read at all, so the data
    # holds its text instead: this message, not a schema's "expected an integer", says what is wrong
    unreadable: bool = False


@dataclass(slots=True)
class LoadResult:
    documents: list[LoadedDocument] = field(default_factory=list)
    errors: list[LoadError] = field(default_factory=list)
    files: int = 0


class _Refused(Exception):
    def __init__(self, line: int, col: int, message: str, hint: str | None = None, *, field: str = "") -> None:
        super().__init__(message)
        self.line, self.col, self.message, self.hint, self.field = line, col, message, hint, field


def _dotted(path: Path_) -> str:
    """``spec.batchPredictionJob.passthroughColumns[1]``: the field path shown in messages."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + part
    return out


def _parts(path: Path) -> tuple[str, ...]:
    return path.parts


def iter_manifest_files(paths: Iterable[str | os.PathLike[str]],
                        errors: list[LoadError] | None = None) -> Iterator[Path]:
    """Files named on the command line as given; directories searched for ``*.yaml``/``*.yml``.

    Hidden directories and the project config (``reconciler.yaml``) are skipped when walking.
    Symlinked directories are followed like symlinked files (a folder of manifests linked in
    must not look removed), each real directory once, so a link back up the tree ends. A
    directory that cannot be listed is put in ``errors`` (when given): a manifest that could not
    be read must stop a plan, not read as "removed" and be pruned.
    """
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = []
            visited: set[str] = set()

            def unlisted(exc: OSError, top: Path = path) -> None:
                if errors is not None:
                    where = exc.filename or str(top)
                    errors.append(LoadError(str(where), 1, 1, f"cannot read the directory: {exc.strerror or exc}",
                                            "fix its permissions, or move it out of the manifests' directories"))

            for root, dirs, files in os.walk(path, followlinks=True, onerror=unlisted):
                real = os.path.realpath(root)
                if real in visited:  # a second way into a directory already read (a link loop)
                    dirs[:] = []
                    continue
                visited.add(real)
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in files:
                    entry = os.path.join(root, name)
                    if (errors is not None and not name.startswith(".") and os.path.islink(entry)
                            and not os.path.exists(entry)):  # a folder of manifests moved away, a link loop
                        errors.append(LoadError(entry, 1, 1, f"broken symbolic link (to {os.readlink(entry)}): "
                                                "whatever it pointed at cannot be read",
                                                "fix or remove the link; a manifest that cannot be read is "
                                                "never taken for a removed one"))
                        continue
                    if name.endswith((".yaml", ".yml")) and name not in PROJECT_CONFIG_NAMES:
                        found.append(Path(root) / name)
            # Path's own order is its parts' (case folded on Windows only); comparing Paths costs
            # 3 µs each, 0.3 s for 10,000 files: the parts are compared directly
            candidates = sorted(found, key=_parts) if os.name == "posix" else sorted(found)
        else:
            candidates = [path]
        for candidate in candidates:
            if candidate not in seen:
                seen.add(candidate)
                yield candidate


def max_file_bytes() -> int:
    """The size limit of a manifest, overlay or project config: ``RECONCILER_MAX_FILE_BYTES`` as
    set now (1 MiB when unset)."""
    return int(os.environ.get("RECONCILER_MAX_FILE_BYTES", str(DEFAULT_MAX_FILE_BYTES)))


def load_paths(paths: Iterable[str | os.PathLike[str]], *, max_bytes: int | None = None) -> LoadResult:
    """Every document of every manifest file under ``paths``; files over ``max_bytes`` are refused.

    ``max_bytes`` defaults to :func:`max_file_bytes`.
    """
    if max_bytes is None:
        max_bytes = max_file_bytes()
    result = LoadResult()
    # Loading allocates many small, acyclic containers that stay alive; the cyclic garbage
    # collector would walk all of them again and again for nothing (about a quarter of the time).
    collecting = gc.isenabled()
    gc.disable()
    try:
        _load_files(paths, max_bytes, result)
    finally:
        if collecting:
            gc.enable()
    return result


def _load_files(paths: Iterable[str | os.PathLike[str]], max_bytes: int, result: LoadResult) -> None:
    for path in iter_manifest_files(paths, result.errors):
        result.files += 1
        try:
            data = read_limited(path, limit=max_bytes, what="manifest file",
                                hint="split it into several files, or raise RECONCILER_MAX_FILE_BYTES")
        except FileNotFoundError:
            result.errors.append(LoadError(str(path), 1, 1, "no such file or directory", "check the path"))
            continue
        except OSError as exc:  # a FIFO or device named *.yaml, a directory, no permission, a broken link ...
            result.errors.append(LoadError(str(path), 1, 1, _unreadable(exc),
                                           getattr(exc, "hint", None) or "check the path and its permissions"))
            continue
        docs, errors = load_bytes(data, file=str(path))
        result.documents.extend(docs)
        result.errors.extend(errors)


def _unreadable(exc: OSError) -> str:
    """``exc`` in words: an :class:`UnreadableFile` says it all, other errors are the system's."""
    if isinstance(exc, UnreadableFile):
        return str(exc.strerror)
    return f"cannot read the file: {exc.strerror or exc}"


def _decode(data: bytes, file: str) -> str:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise _Refused(1, 1, "not UTF-8: the file is UTF-16 (it starts with a UTF-16 byte order mark)",
                       "save the file as UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        raise _Refused(line, col, f"not UTF-8: byte 0x{data[exc.start]:02x} cannot be decoded",
                       "save the file as UTF-8") from None


def load_bytes(data: bytes, *, file: str) -> tuple[list[LoadedDocument], list[LoadError]]:
    """Every document in one file; on a YAML syntax error, no document of that file is returned."""
    try:
        text = _decode(data, file)
    except _Refused as exc:
        return [], [LoadError(file, exc.line, exc.col, exc.message, exc.hint)]
    return load_text(text, file=file)


def load_text(text: str, *, file: str) -> tuple[list[LoadedDocument], list[LoadError]]:
    docs: list[LoadedDocument] = []
    loader = _CachingLoader(text)
    index = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            try:
                doc = _build_document(node, file=file, index=index, text=text)
            except _Refused as exc:
                return [], [LoadError(file, exc.line, exc.col, exc.message, exc.hint, exc.field)]
            index += 1
            if doc is not None:
                docs.append(doc)
    except yaml.MarkedYAMLError as exc:
        if _NESTING_REFUSED in str(exc.problem):  # libyaml refuses ~1000 levels itself (PyYAML >= 6.0.2 wheels)
            return [], [_deep_nesting(text, file, exc.problem_mark)]
        return [], [_syntax_error(exc, text, file)]
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow anywhere
        line, col = _line_col(text, exc.position)
        char = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
        return [], [LoadError(file, line, col, f"character U+{char:04X} is not allowed in YAML ({exc.reason})",
                              f"remove it, or write it as the escape \\x{char:02x} inside a double-quoted string"
                              if char < 0x100 else "remove it")]
    except RecursionError:  # the composer of a pure-Python PyYAML recurses per nesting level
        return [], [_deep_nesting(text, file, None)]
    except yaml.YAMLError as exc:  # pragma: no cover - every YAMLError PyYAML raises is one of the above
        return [], [LoadError(file, 1, 1, f"not valid YAML: {exc}")]
    finally:
        loader.dispose()  # type: ignore[no-untyped-call]
    return docs, []


_NESTING_REFUSED = "maximum nesting depth"
_DEEP_MESSAGE = f"values are nested more than {MAX_DEPTH} levels deep"
_DEEP_HINT = "a manifest nests a few levels only; check for runaway brackets or indentation"


def _deep_nesting(text: str, file: str, mark: Any) -> LoadError:
    """The same located refusal :func:`_construct` gives at level ``MAX_DEPTH + 1``, for text that
    PyYAML refused first (libyaml's own depth limit, or the pure-Python composer's recursion).

    Only parser events are walked, with PyYAML's pure-Python parser (it keeps its own stack and
    has no depth limit), so nothing recurses and no node tree is built; the walk stops at the
    first value deeper than the limit.
    """
    found = _first_too_deep(text)
    if found is not None:
        line, col, field_path = found
        return LoadError(file, line, col, _DEEP_MESSAGE, _DEEP_HINT, field_path)
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)  # pragma: no cover - see above
    return LoadError(file, line, col, _DEEP_MESSAGE, _DEEP_HINT)


def _first_too_deep(text: str) -> tuple[int, int, str] | None:
    """``(line, col, field)`` of the first value nested more than ``MAX_DEPTH`` levels, or None."""
    parser = yaml.SafeLoader(text)
    # one frame per open collection: [is_mapping, items seen, current key, next node is a key]
    stack: list[list[Any]] = []
    path: list[str | int] = []
    try:
        while True:
            event = parser.get_event()  # type: ignore[no-untyped-call]
            if isinstance(event, yaml.StreamEndEvent):
                return None
            if isinstance(event, (yaml.DocumentStartEvent, yaml.DocumentEndEvent)):
                stack.clear()
                path.clear()
                continue
            if isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                stack.pop()
                if path:
                    path.pop()
                continue
            if not isinstance(event, yaml.NodeEvent):
                continue
            part: str | int | None = None
            if stack:
                frame = stack[-1]
                if frame[0]:  # a mapping: keys and values alternate
                    if frame[3]:
                        frame[3] = False
                        frame[2] = event.value if isinstance(event, yaml.ScalarEvent) else "?"
                        if isinstance(event, yaml.CollectionStartEvent):
                            stack.append([isinstance(event, yaml.MappingStartEvent), 0, None, True])
                            path.append("?")
                        continue
                    frame[3] = True
                    part = frame[2]
                else:
                    part = frame[1]
                    frame[1] += 1
            depth = len(stack)
            here = [*path, part] if part is not None else list(path)
            if depth > MAX_DEPTH:
                mark = event.start_mark
                return (mark.line + 1, mark.column + 1, _dotted(tuple(here[:6])) + "...") if mark else (1, 1, "")
            if isinstance(event, yaml.CollectionStartEvent):
                stack.append([isinstance(event, yaml.MappingStartEvent), 0, None, True])
                if part is not None:
                    path.append(part)
    except yaml.YAMLError:
        return None
    finally:
        parser.dispose()  # type: ignore[no-untyped-call]


def _line_col(text: str, position: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    before = text[:position]
    return before.count("\n") + 1, position - (before.rfind("\n") + 1) + 1


def _syntax_error(exc: yaml.MarkedYAMLError, text: str, file: str) -> LoadError:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else 1
    col = mark.column + 1 if mark else 1
    problem = exc.problem or "not valid YAML"
    src_line = text.splitlines()[line - 1] if mark and line - 1 < len(text.splitlines()) else ""
    if "\t" in src_line[: max(col, 1)] or "'\\t'" in problem:
        tab_col = src_line.find("\t") + 1 if "\t" in src_line else col
        return LoadError(file, line, tab_col, "tab character used for indentation; YAML indents with spaces only",
                         "replace the tab with spaces")
    hint = None
    if "mapping values are not allowed" in problem:
        hint = "a value containing ': ' must be quoted, or a key is indented wrongly"
    elif "could not find expected ':'" in problem:
        hint = "check the indentation of this line and the one before it"
    elif "did not find expected key" in problem:
        hint = "check the indentation: the keys of one mapping must line up"
    context_mark = exc.context_mark
    if exc.context in ("while parsing a flow sequence", "while parsing a flow mapping") and context_mark:
        # the parser notices a missing bracket only where it gives up, often lines later
        bracket, closing = ("[", "]") if "sequence" in exc.context else ("{", "}")
        return LoadError(file, context_mark.line + 1, context_mark.column + 1,
                         f"not valid YAML: the '{bracket}' opened here is never closed ({problem} on line {line})",
                         f"add the missing '{closing}' (or a ',' between items), or quote a value that contains "
                         f"'{bracket}'")
    context = f" ({exc.context})" if exc.context else ""
    return LoadError(file, line, col, f"not valid YAML: {problem}{context}", hint)


def _nth_node(text: str, index: int) -> yaml.Node | None:
    """The composed node of document ``index`` (counted as :func:`load_text` counts them)."""
    loader = _CachingLoader(text)
    try:
        seen = 0
        while loader.check_node():
            node: yaml.Node | None = loader.get_node()
            if node is None:
                continue
            if seen == index:
                return node
            seen += 1
    finally:
        loader.dispose()  # type: ignore[no-untyped-call]
    return None  # pragma: no cover - the text was loaded once already


def _build_document(node: yaml.Node, *, file: str, index: int, text: str) -> LoadedDocument | None:
    line, col = node.start_mark.line + 1, node.start_mark.column + 1
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
        return None  # an empty document (`---` alone) is not an error
    if not isinstance(node, yaml.MappingNode):
        kind = "a list" if isinstance(node, yaml.SequenceNode) else "a single value"
        raise _Refused(line, col, f"document {index + 1} is {kind}, not a mapping",
                       "a manifest starts with 'apiVersion:', 'kind:', 'metadata:' and 'spec:'")
    problems: list[LoadError] = []
    data = _construct(node, (), None, [MAX_NODES_PER_DOCUMENT], set(), problems)
    assert isinstance(data, dict)
    return LoadedDocument(file=file, index=index, data=data, line=line, col=col, text=text,
                          problems=tuple(dataclasses.replace(p, file=file) for p in problems),
                          _name_mark=_name_mark(node))


_NAME_PATH: Path_ = ("metadata", "name")


def _child(node: yaml.Node, key: str) -> yaml.Node | None:
    """The value node of ``key`` in a mapping node written without merge keys; None otherwise
    (then :meth:`LoadedDocument.mark` works the position out from the whole document)."""
    if not isinstance(node, yaml.MappingNode):
        return None
    found = None
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
            return None
        if key_node.value == key and key_node.tag == _STR:
            found = value_node
    return found


def _name_mark(root: yaml.Node) -> Mark | None:
    """Where ``metadata.name``'s value starts, as :func:`_construct` records it (scalars only)."""
    metadata = _child(root, "metadata")
    name = _child(metadata, "name") if metadata is not None else None
    if not isinstance(name, yaml.ScalarNode):
        return None
    return Mark(name.start_mark.line + 1, name.start_mark.column + 1,
                raw=name.value if not name.style and name.tag != _STR else None,
                quoted=name.style in ("'", '"'), block=name.style in ("|", ">"))


def _budget_refusal(root: yaml.Node, node: yaml.Node, path: Path_) -> _Refused:
    """What was exceeded, and whether aliases did it: the distinct nodes of the document are
    counted (each once, however many aliases point at it; without recursion)."""
    distinct: set[int] = set()
    stack = [root]
    while stack and len(distinct) <= MAX_NODES_PER_DOCUMENT:
        current = stack.pop()
        if id(current) in distinct:
            continue
        distinct.add(id(current))
        if isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
        elif isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                stack.extend((key_node, value_node))
    line, col = node.start_mark.line + 1, node.start_mark.column + 1
    limit = f"{MAX_NODES_PER_DOCUMENT:,}"
    if len(distinct) <= MAX_NODES_PER_DOCUMENT:
        return _Refused(line, col, f"document expands to more than {limit} values (the limit per document) "
                        "through aliases", "this looks like an alias bomb ('billion laughs'); remove the nested "
                        "aliases", field=_dotted(path))
    return _Refused(line, col, f"document has more than {limit} values (the limit per document)",
                    "a manifest holds a few dozen values; split the data, or check what generated this file",
                    field=_dotted(path))


def _unsendable(tag: str, node: yaml.ScalarNode, value: Any, path: Path_) -> LoadError | None:
    """A number YAML can write but JSON (so the API) cannot carry, as a located problem."""
    line, col = node.start_mark.line + 1, node.start_mark.column + 1
    if tag == _FLOAT and isinstance(value, float) and not math.isfinite(value):
        return LoadError("", line, col, f"{node.value} is not a number the API can take: JSON has no NaN or "
                         "infinity", "write a finite number, or leave the field out", _dotted(path))
    if tag == _INT and isinstance(value, int) and not -_INT64 <= value < _INT64:
        return LoadError("", line, col, f"the integer {_shortened(node.value)} does not fit in 64 bits, the "
                         "largest the API takes", "write a smaller number", _dotted(path))
    return None


def _shortened(text: str) -> str:
    return text if len(text) <= 40 else f"{text[:20]}...{text[-8:]} ({len(text)} characters)"


def _construct(node: yaml.Node, path: Path_, doc: LoadedDocument | None, budget: list[int],
               building: set[int], problems: list[LoadError], depth: int = 0,
               root: yaml.Node | None = None) -> Any:
    """Plain data from a composed node; positions are recorded into ``doc`` when one is given.

    ``building`` holds the ids of the collections being built around this node: meeting one of
    them again means an alias points at its own parent (``&a [*a]``), a structure with no end.
    Values the API cannot take are appended to ``problems`` (and kept, so that the rest of the
    document is still checked).
    """
    root = node if root is None else root
    budget[0] -= 1
    if budget[0] < 0:
        raise _budget_refusal(root, node, path)
    if depth > MAX_DEPTH:
        raise _Refused(node.start_mark.line + 1, node.start_mark.column + 1, _DEEP_MESSAGE, _DEEP_HINT,
                       field=_dotted(path[:6]) + "...")
    tag = node.tag
    if isinstance(node, yaml.ScalarNode):
        if tag == _STR:
            value: Any = node.value
        elif tag in _SCALAR_TAGS:
            key = (tag, node.value)
            if key in _SCALARS:
                value = _SCALARS[key]
            else:
                try:
                    value = node.value if tag == _TIMESTAMP else _constructor.yaml_constructors[tag](_constructor, node)
                except ValueError:  # Python refuses to read an integer of thousands of digits
                    problems.append(LoadError("", node.start_mark.line + 1, node.start_mark.column + 1,
                                              f"the integer {_shortened(node.value)} does not fit in 64 bits, "
                                              "the largest the API takes", "write a smaller number", _dotted(path),
                                              unreadable=True))
                    value = node.value
                else:
                    if len(_SCALARS) < _CACHE_LIMIT:  # keep dates as the ISO strings the API takes
                        _SCALARS[key] = value
            if tag in (_FLOAT, _INT) and (problem := _unsendable(tag, node, value, path)) is not None:
                problems.append(problem)
        else:
            raise _tag_refused(node, path)
        if doc is not None:
            assert doc._values is not None
            plain = not node.style  # the C composer says '' where the Python one says None
            doc._values[path] = Mark(node.start_mark.line + 1, node.start_mark.column + 1,
                                     raw=node.value if plain and tag != _STR else None,
                                     quoted=node.style in ("'", '"'), block=node.style in ("|", ">"))
        return value
    if id(node) in building:
        raise _Refused(node.start_mark.line + 1, node.start_mark.column + 1,
                       "an alias refers to a mapping or list that contains it, so the value never ends",
                       "replace the alias with the values it should copy", field=_dotted(path))
    building.add(id(node))
    try:
        return _construct_collection(node, path, doc, budget, building, problems, depth, root)
    finally:
        building.discard(id(node))


def _tag_refused(node: yaml.Node, path: Path_) -> _Refused:
    """A node whose tag (``!!python/object``, ``!!binary``, ...) a manifest may not use."""
    return _Refused(node.start_mark.line + 1, node.start_mark.column + 1,
                    f"tag {node.tag.replace('tag:yaml.org,2002:', '!!')} is not allowed in a manifest",
                    "remove the tag; manifests hold plain strings, numbers, booleans, lists and mappings",
                    field=_dotted(path))


def _construct_collection(node: yaml.Node, path: Path_, doc: LoadedDocument | None, budget: list[int],
                          building: set[int], problems: list[LoadError], depth: int, root: yaml.Node) -> Any:
    tag = node.tag
    if doc is not None:
        assert doc._values is not None
        doc._values[path] = Mark(node.start_mark.line + 1, node.start_mark.column + 1)
    # a string child is taken in line when nothing about it needs recording or refusing (no
    # positions wanted, within the depth and the budget): most values of a manifest are strings,
    # and a call of _construct for each was a fifth of loading one
    inline = doc is None and depth < MAX_DEPTH
    if isinstance(node, yaml.SequenceNode):
        if tag != _SEQ:
            raise _tag_refused(node, path)
        items: list[Any] = []
        for i, child in enumerate(node.value):
            if inline and child.tag == _STR and budget[0] > 0 and type(child) is yaml.ScalarNode:
                budget[0] -= 1
                items.append(child.value)
            else:
                items.append(_construct(child, (*path, i), doc, budget, building, problems, depth + 1, root))
        return items
    if isinstance(node, yaml.MappingNode):
        if tag != _MAP:
            raise _tag_refused(node, path)
        out: dict[str, Any] = {}
        first_seen: dict[str, int] = {}
        for key_node, value_node in _merged_pairs(node, path):
            if not isinstance(key_node, yaml.ScalarNode):
                raise _Refused(key_node.start_mark.line + 1, key_node.start_mark.column + 1,
                               "a mapping key must be a plain string", "quote the key", field=_dotted(path))
            key = key_node.value
            if key in first_seen:
                raise _Refused(key_node.start_mark.line + 1, key_node.start_mark.column + 1,
                               f"duplicate key '{key}' (first defined on line {first_seen[key]})",
                               "remove one of them; YAML would silently keep only the last",
                               field=_dotted((*path, key)))
            first_seen[key] = key_node.start_mark.line + 1
            if inline and value_node.tag == _STR and budget[0] > 0 and type(value_node) is yaml.ScalarNode:
                budget[0] -= 1
                out[key] = value_node.value
                continue
            child = (*path, key)
            if doc is not None:
                assert doc._keys is not None
                doc._keys[child] = Mark(key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = _construct(value_node, child, doc, budget, building, problems, depth + 1, root)
        return out
    raise _Refused(node.start_mark.line + 1, node.start_mark.column + 1, "unsupported YAML node")  # pragma: no cover


def _merged_pairs(node: yaml.MappingNode, path: Path_,
                  merging: frozenset[int] = frozenset()) -> list[tuple[yaml.Node, yaml.Node]]:
    """Expand ``<<: *anchor`` merge keys; merged keys come first so that local keys override.

    ``merging`` holds the mappings whose merges are being expanded, so that a mapping merging
    itself (``&a {<<: *a}``) is refused instead of recursing forever.
    """
    pairs: list[tuple[yaml.Node, yaml.Node]] = node.value
    for key_node, _ in pairs:  # a loop, not any() over a generator: this runs for every mapping
        if key_node.tag == _MERGE:
            break
    else:
        return pairs
    merged: list[tuple[yaml.Node, yaml.Node]] = []
    local: list[tuple[yaml.Node, yaml.Node]] = []
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE:
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    raise _Refused(source.start_mark.line + 1, source.start_mark.column + 1,
                                   "'<<' merges only mappings", "point the alias at a mapping", field=_dotted(path))
                if id(source) in merging or source is node:
                    raise _Refused(source.start_mark.line + 1, source.start_mark.column + 1,
                                   "'<<' merges a mapping into itself, so the value never ends",
                                   "merge a different mapping, or write the keys out", field=_dotted(path))
                if len(merging) >= MAX_DEPTH:
                    raise _Refused(source.start_mark.line + 1, source.start_mark.column + 1,
                                   f"'<<' merges are nested more than {MAX_DEPTH} levels deep",
                                   "write the keys out instead of chaining merges", field=_dotted(path))
                merged.extend(_merged_pairs(source, path, merging | {id(node)}))
        else:
            local.append((key_node, value_node))
    if merged:
        local_keys = {k.value for k, _ in local if isinstance(k, yaml.ScalarNode)}
        deduped: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for k, v in merged:
            if k.value not in local_keys:
                deduped.setdefault(k.value, (k, v))
        return [*deduped.values(), *local]
    return local


def read_one_document(path: str | os.PathLike[str], *, what: str, schema_name: str,
                      error: Callable[[list[str]], Exception], expected: str = "") -> LoadedDocument:
    """One YAML document from a bounded read, valid against ``schemas/<schema_name>``: the project
    config and policy files. Every problem is raised as ``error(["file:line:col: ..."])``."""
    from reconciler.contract import validators
    from reconciler.contract.issues import schema_issues

    file = str(path)
    try:
        raw = read_limited(path, limit=max_file_bytes(), what=what)
    except OSError as exc:
        raise error([f"{file}: cannot read the {what}: {exc.strerror}"]) from None
    docs, load_errors = load_bytes(raw, file=file)
    if load_errors:
        raise error([f"{e.file}:{e.line}:{e.col}: {e.message}" for e in load_errors])
    if len(docs) != 1:
        raise error([f"{file}: expected exactly one YAML document{expected}, found {len(docs)}"])
    doc = docs[0]
    if doc.problems:
        raise error([f"{e.file}:{e.line}:{e.col}: {e.field}: {e.message}" for e in doc.problems])
    if not validators.validator(schema_name).is_valid(doc.data):
        raise error([i.format() for i in schema_issues(doc, schema_name=schema_name)])
    return doc
