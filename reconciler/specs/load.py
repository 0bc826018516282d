"""Reading manifests: files and directories into plain data, keeping the line and column of every
key and value so that later errors can point at them.

Pure apart from reading files. YAML is composed with PyYAML's safe (C, when present) composer and
constructed here, by hand, so that we can refuse what a manifest has no business containing
(duplicate keys, language-specific tags, alias bombs) with a located message instead of a
traceback, and keep positions without a second parse.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

try:  # the C composer is several times faster; fall back silently where libyaml is missing
    _Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader

MAX_FILE_BYTES = int(os.environ.get("RECONCILER_MAX_FILE_BYTES", str(1024 * 1024)))
MAX_NODES_PER_DOCUMENT = 100_000
PROJECT_CONFIG_NAMES = frozenset({"reconciler.yaml", "reconciler.yml"})

Path_ = tuple[str | int, ...]

_STR = "tag:yaml.org,2002:str"
_SCALAR_TAGS = {
    _STR,
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
}
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_constructor = yaml.SafeLoader("")  # only its scalar constructors are used


@dataclass(frozen=True, slots=True)
class Mark:
    """1-based line and column; ``raw`` keeps a plain scalar's text (YAML may read ``no`` as false)."""

    line: int
    col: int
    raw: str | None = None
    quoted: bool = False


@dataclass(slots=True)
class LoadedDocument:
    """One YAML document: its data and where each part of it stands in the file."""

    file: str
    index: int  # 0-based position of the document in its file
    data: dict[str, Any]
    line: int
    col: int
    values: dict[Path_, Mark] = field(default_factory=dict)  # where each value starts
    keys: dict[Path_, Mark] = field(default_factory=dict)  # where each mapping key stands

    def mark(self, path: Path_, *, key: bool = False) -> Mark:
        """The closest known position for ``path``: its key or value, else its nearest parent."""
        probe = tuple(path)
        table = self.keys if key else self.values
        while probe:
            if probe in table:
                return table[probe]
            if not key and probe in self.keys:
                return self.keys[probe]
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


@dataclass(slots=True)
class LoadResult:
    documents: list[LoadedDocument] = field(default_factory=list)
    errors: list[LoadError] = field(default_factory=list)
    files: int = 0


class _Refused(Exception):
    def __init__(self, line: int, col: int, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.line, self.col, self.message, self.hint = line, col, message, hint


def iter_manifest_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Files named on the command line as given; directories searched for ``*.yaml``/``*.yml``.

    Hidden directories and the project config (``reconciler.yaml``) are skipped when walking.
    """
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = []
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in files:
                    if name.endswith((".yaml", ".yml")) and name not in PROJECT_CONFIG_NAMES:
                        found.append(Path(root) / name)
            candidates = sorted(found)
        else:
            candidates = [path]
        for candidate in candidates:
            if candidate not in seen:
                seen.add(candidate)
                yield candidate


def load_paths(paths: Iterable[str | os.PathLike[str]], *, max_bytes: int = MAX_FILE_BYTES) -> LoadResult:
    result = LoadResult()
    for path in iter_manifest_files(paths):
        result.files += 1
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            result.errors.append(LoadError(str(path), 1, 1, "no such file or directory", "check the path"))
            continue
        if size > max_bytes:
            result.errors.append(
                LoadError(str(path), 1, 1, f"file is {size} bytes, over the {max_bytes}-byte limit for a manifest file",
                          "split it into several files, or raise RECONCILER_MAX_FILE_BYTES")
            )
            continue
        docs, errors = load_bytes(path.read_bytes(), file=str(path))
        result.documents.extend(docs)
        result.errors.extend(errors)
    return result


def _decode(data: bytes, file: str) -> str:
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
    loader = _Loader(text)
    index = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            try:
                doc = _build_document(node, file=file, index=index)
            except _Refused as exc:
                return [], [LoadError(file, exc.line, exc.col, exc.message, exc.hint)]
            index += 1
            if doc is not None:
                docs.append(doc)
    except yaml.MarkedYAMLError as exc:
        return [], [_syntax_error(exc, text, file)]
    except yaml.YAMLError as exc:  # pragma: no cover - unmarked errors are rare (reader errors)
        return [], [LoadError(file, 1, 1, f"not valid YAML: {exc}")]
    finally:
        loader.dispose()  # type: ignore[no-untyped-call]
    return docs, []


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
    context = f" ({exc.context})" if exc.context else ""
    return LoadError(file, line, col, f"not valid YAML: {problem}{context}", hint)


def _build_document(node: yaml.Node, *, file: str, index: int) -> LoadedDocument | None:
    line, col = node.start_mark.line + 1, node.start_mark.column + 1
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
        return None  # an empty document (`---` alone) is not an error
    if not isinstance(node, yaml.MappingNode):
        kind = "a list" if isinstance(node, yaml.SequenceNode) else "a single value"
        raise _Refused(line, col, f"document {index + 1} is {kind}, not a mapping",
                       "a manifest starts with 'apiVersion:', 'kind:', 'metadata:' and 'spec:'")
    doc = LoadedDocument(file=file, index=index, data={}, line=line, col=col)
    budget = [MAX_NODES_PER_DOCUMENT]
    data = _construct(node, (), doc, budget)
    assert isinstance(data, dict)
    doc.data = data
    return doc


def _construct(node: yaml.Node, path: Path_, doc: LoadedDocument, budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise _Refused(node.start_mark.line + 1, node.start_mark.column + 1,
                       f"document expands to more than {MAX_NODES_PER_DOCUMENT} values through aliases",
                       "this looks like an alias bomb ('billion laughs'); remove the nested aliases")
    line, col = node.start_mark.line + 1, node.start_mark.column + 1
    tag = node.tag
    if isinstance(node, yaml.ScalarNode):
        if tag not in _SCALAR_TAGS:
            raise _Refused(line, col, f"tag {tag.replace('tag:yaml.org,2002:', '!!')} is not allowed in a manifest",
                           "remove the tag; manifests hold plain strings, numbers, booleans, lists and mappings")
        plain = not node.style  # the C composer says '' where the Python one says None
        doc.values[path] = Mark(line, col, raw=node.value if plain and tag != _STR else None, quoted=node.style in ("'", '"'))
        if tag == "tag:yaml.org,2002:timestamp":
            return node.value  # keep dates as the ISO strings the API takes
        return _constructor.yaml_constructors[tag](_constructor, node)
    doc.values[path] = Mark(line, col)
    if isinstance(node, yaml.SequenceNode):
        if tag != _SEQ:
            raise _Refused(line, col, f"tag {tag} is not allowed in a manifest", "remove the tag")
        return [_construct(child, (*path, i), doc, budget) for i, child in enumerate(node.value)]
    if isinstance(node, yaml.MappingNode):
        if tag != _MAP:
            raise _Refused(line, col, f"tag {tag.replace('tag:yaml.org,2002:', '!!')} is not allowed in a manifest",
                           "remove the tag; manifests hold plain strings, numbers, booleans, lists and mappings")
        out: dict[str, Any] = {}
        first_seen: dict[str, int] = {}
        for key_node, value_node in _merged_pairs(node):
            kline, kcol = key_node.start_mark.line + 1, key_node.start_mark.column + 1
            if not isinstance(key_node, yaml.ScalarNode):
                raise _Refused(kline, kcol, "a mapping key must be a plain string", "quote the key")
            key = key_node.value
            if key in first_seen:
                raise _Refused(kline, kcol, f"duplicate key '{key}' (first defined on line {first_seen[key]})",
                               "remove one of them; YAML would silently keep only the last")
            first_seen[key] = kline
            doc.keys[(*path, key)] = Mark(kline, kcol)
            out[key] = _construct(value_node, (*path, key), doc, budget)
        return out
    raise _Refused(line, col, "unsupported YAML node")  # pragma: no cover


def _merged_pairs(node: yaml.MappingNode) -> list[tuple[yaml.Node, yaml.Node]]:
    """Expand ``<<: *anchor`` merge keys; merged keys come first so that local keys override."""
    merged: list[tuple[yaml.Node, yaml.Node]] = []
    local: list[tuple[yaml.Node, yaml.Node]] = []
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE:
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    raise _Refused(source.start_mark.line + 1, source.start_mark.column + 1,
                                   "'<<' merges only mappings", "point the alias at a mapping")
                merged.extend(_merged_pairs(source))
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
