"""The loader: positions of keys and values, multi-document files, directory walking, merge keys."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.specs import load
from reconciler.specs.load import LoadError, iter_manifest_files, load_bytes, load_paths, load_text

TEXT = """\
apiVersion: reconciler.io/v1alpha1
kind: BatchPredictionJobDefinition
metadata:
  name: churn
spec:
  schedule: {minute: [0, 30], hour: ["*"]}
  batchPredictionJob:
    numConcurrent: 4
    passthroughColumns:
      - id
      - "no"
    csvSettings: {delimiter: no}
---
---
apiVersion: v2
"""


def test_positions_of_keys_and_values() -> None:
    docs, errors = load_text(TEXT, file="a.yaml")
    assert errors == []
    doc = docs[0]
    assert (doc.line, doc.col, doc.index) == (1, 1, 0)
    key = doc.keys[("spec", "batchPredictionJob", "numConcurrent")]
    assert (key.line, key.col) == (8, 5)
    assert doc.values[("spec", "batchPredictionJob", "numConcurrent")].line == 8
    assert doc.values[("spec", "batchPredictionJob", "numConcurrent")].col == 20
    assert (doc.values[("spec", "schedule", "minute", 1)].line, doc.values[("spec", "schedule", "minute", 1)].col) == (6, 26)
    item = doc.values[("spec", "batchPredictionJob", "passthroughColumns", 1)]
    assert (item.line, item.col, item.quoted, item.raw) == (11, 9, True, None)
    text = doc.values[("spec", "batchPredictionJob", "csvSettings", "delimiter")]
    assert text.raw is None and doc.data["spec"]["batchPredictionJob"]["csvSettings"]["delimiter"] == "no"
    number = doc.values[("spec", "batchPredictionJob", "numConcurrent")]
    assert number.raw == "4"  # kept for "YAML read 4 as a number" hints


def test_mark_falls_back_to_the_nearest_parent() -> None:
    doc = load_text(TEXT, file="a.yaml")[0][0]
    missing = doc.mark(("spec", "batchPredictionJob", "intakeSettings", "url"))
    assert (missing.line, missing.col) == (8, 5)  # the batchPredictionJob mapping starts there
    key = doc.mark(("spec", "schedule"), key=True)
    assert (key.line, key.col) == (6, 3)
    assert doc.mark(()).line == 1


def test_multi_document_files_keep_indices_and_skip_empty_documents() -> None:
    docs, errors = load_text(TEXT, file="a.yaml")
    assert errors == []
    assert [d.index for d in docs] == [0, 2]  # the empty document between the two still counts
    assert docs[1].data == {"apiVersion": "v2"}
    assert (docs[1].line, docs[1].col) == (15, 1)
    assert docs[1].mark(("apiVersion",)).line == 15


def test_values_are_plain_data() -> None:
    docs, _ = load_text("a: 2024-01-01\nb: 0x10\nc: ~\nd: 1.5\ne: [yes, 'yes']\n", file="x.yaml")
    assert docs[0].data == {"a": "2024-01-01", "b": 16, "c": None, "d": 1.5, "e": ["yes", "yes"]}


def test_booleans_are_yaml_1_2_booleans_as_every_other_tool_reads_them() -> None:
    """YAML 1.1's yes/no/on/off (PyYAML's reading) are text in YAML 1.2, which editors and
    check-jsonschema follow: one file means one thing to every tool."""
    words = ["yes", "No", "ON", "off", "y", "n", "Yes", "OFF"]
    docs, errors = load_text(f"a: [{', '.join(words)}]\nb: [true, True, TRUE, false, False, FALSE]\n", file="b.yaml")
    assert errors == [] and docs[0].data == {"a": words, "b": [True, True, True, False, False, False]}


def test_merge_keys() -> None:
    text = """\
defaults: &defaults
  numConcurrent: 2
  abortOnError: false
job:
  <<: *defaults
  numConcurrent: 8
many:
  <<: [*defaults, {extra: 1}]
"""
    docs, errors = load_text(text, file="m.yaml")
    assert errors == []
    data = docs[0].data
    assert data["job"] == {"numConcurrent": 8, "abortOnError": False}
    assert data["many"] == {"numConcurrent": 2, "abortOnError": False, "extra": 1}
    assert docs[0].keys[("job", "numConcurrent")].line == 6  # the local key, not the merged one


def test_refusals_are_located() -> None:
    _, errors = load_text("a: 1\nb:\n  c: 1\n  c: 2\n", file="d.yaml")
    assert [(e.line, e.col, e.message) for e in errors] == [
        (4, 3, "duplicate key 'c' (first defined on line 3)")]
    _, errors = load_bytes(b"a: 1\nb: caf\xc3\n", file="u.yaml")
    assert [(e.line, e.col) for e in errors] == [(2, 7)]
    _, errors = load_text("a: !!binary aGVsbG8=\n", file="b.yaml")
    assert errors[0].message == "tag !!binary is not allowed in a manifest"
    for text, tag in (("a:\n  b: !!set {x: null}\n", "!!set"), ("a: !list [1]\n", "!list")):  # mapping, sequence
        _, errors = load_text(text, file="t.yaml")
        assert [(e.message, e.field) for e in errors] == [(f"tag {tag} is not allowed in a manifest", "a.b"
                                                           if tag == "!!set" else "a")]


def test_a_syntax_error_drops_every_document_of_the_file() -> None:
    docs, errors = load_text("a: 1\n---\nb: [1\n", file="s.yaml")
    assert docs == [] and len(errors) == 1


def test_bom_is_accepted() -> None:
    docs, errors = load_bytes(b"\xef\xbb\xbfa: 1\n", file="bom.yaml")
    assert errors == [] and docs[0].data == {"a": 1}


def test_directories_are_walked(tmp_path: Path) -> None:
    for rel in ["b.yaml", "a.yml", "sub/deeper/c.yaml", "sub/notes.txt", ".git/x.yaml", "sub/.hidden/y.yaml",
                "reconciler.yaml", "sub/reconciler.yml"]:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("a: 1\n", encoding="utf-8")
    found = [p.relative_to(tmp_path).as_posix() for p in iter_manifest_files([tmp_path])]
    assert found == ["a.yml", "b.yaml", "sub/deeper/c.yaml"]
    # a file named explicitly is read whatever its name; the same file twice is read once
    explicit = list(iter_manifest_files([tmp_path / "sub/notes.txt", tmp_path, tmp_path / "b.yaml"]))
    assert [p.name for p in explicit] == ["notes.txt", "a.yml", "b.yaml", "c.yaml"]
    result = load_paths([tmp_path])
    assert result.files == 3 and len(result.documents) == 3 and result.errors == []


def test_missing_path_and_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = load_paths([tmp_path / "nope.yaml"])
    assert [e.message for e in result.errors] == ["no such file or directory"]
    big = tmp_path / "big.yaml"
    big.write_text("a: " + "x" * 100 + "\n", encoding="utf-8")
    assert load_paths([big], max_bytes=50).errors[0].message == "file is 104 bytes, over the 50-byte limit for a manifest file"
    assert load_paths([big], max_bytes=200).errors == []
    monkeypatch.setenv("RECONCILER_MAX_FILE_BYTES", "10")
    assert len(load_paths([big]).errors) == 1


def test_alias_bomb_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 7):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    _, errors = load_text("\n".join(lines) + "\n", file="bomb.yaml")
    assert "through aliases" in errors[0].message


def test_refusals_name_the_field() -> None:
    _, errors = load_text("a: 1\nb:\n  c: [x, !!python/name:os.system y]\n", file="t.yaml")
    assert [(e.line, e.col, e.field) for e in errors] == [(3, 10, "b.c[1]")]
    _, errors = load_text("a:\n  b: 1\n  b: 2\n", file="d.yaml")
    assert errors[0].field == "a.b"


@pytest.mark.parametrize("text, field, message", [
    ("a: &x [1, *x]\n", "a[1]", "an alias refers to a mapping or list that contains it, so the value never ends"),
    ("a: &x {b: {c: *x}}\n", "a.b.c", "an alias refers to a mapping or list that contains it, so the value never ends"),
    ("a: &x {<<: *x}\n", "a", "'<<' merges a mapping into itself, so the value never ends"),
])
def test_structures_without_end_are_refused_not_a_recursion_error(text: str, field: str, message: str) -> None:
    docs, errors = load_text(text, file="r.yaml")
    assert docs == []
    assert [(e.field, e.message) for e in errors] == [(field, message)]


def _block(levels: int, *, sequence: bool = False) -> str:
    """``levels`` nested block collections under ``a``, one-space indents, a scalar at the bottom."""
    item = "-" if sequence else "b:"
    return "a:\n" + "".join(" " * i + item + "\n" for i in range(1, levels)) + " " * levels + "1\n"


DEEP = "values are nested more than 64 levels deep"
# (text, line, col, field): the first value deeper than 64 levels, whoever refuses the text first:
# reconciler's own check (65 to ~300 levels), the pure-Python composer's recursion, or libyaml's
# own limit of 1000 levels (PyYAML >= 6.0.2 wheels), which reports no field and a later place.
NESTING = {
    "flow, just over": ("a: " + "[" * 65 + "]" * 65 + "\n", 1, 68, "a[0][0][0][0][0]..."),
    "flow, far over": ("a: " + "[" * 1100 + "]" * 1100 + "\n", 1, 68, "a[0][0][0][0][0]..."),
    "flow mappings, just over": ("a: " + "{b: " * 70 + "1" + "}" * 70 + "\n", 1, 260, "a.b.b.b.b.b..."),
    "flow mappings, far over": ("a: " + "{b: " * 2000 + "1" + "}" * 2000 + "\n", 1, 260, "a.b.b.b.b.b..."),
    "block, just over": (_block(65), 66, 66, "a.b.b.b.b.b..."),
    "block, far over": (_block(1200), 66, 66, "a.b.b.b.b.b..."),
    "block sequences, far over": (_block(1200, sequence=True), 66, 66, "a[0][0][0][0][0]..."),
}


@pytest.fixture(params=["libyaml", "pure-python"])
def loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both of PyYAML's composers: the C one (libyaml) where PyYAML was built with it, and the
    pure-Python one that runs where it was not."""
    if request.param == "libyaml":
        if not hasattr(yaml, "CSafeLoader"):
            pytest.skip("this PyYAML has no libyaml")
        monkeypatch.setattr(load, "_CachingLoader", load._caching_loader(yaml.CSafeLoader))
    else:
        monkeypatch.setattr(load, "_CachingLoader", load._caching_loader(yaml.SafeLoader))
    return str(request.param)


@pytest.mark.parametrize("case", sorted(NESTING))
def test_deep_nesting_is_a_located_refusal_whichever_parser_refuses_first(loader: str, case: str) -> None:
    text, line, col, field = NESTING[case]
    docs, errors = load_text(text, file="deep.yaml")
    assert docs == []
    assert [(e.file, e.line, e.col, e.field, e.message) for e in errors] == [("deep.yaml", line, col, field, DEEP)]
    assert errors[0].hint == "a manifest nests a few levels only; check for runaway brackets or indentation"


def test_64_levels_are_accepted(loader: str) -> None:
    docs, errors = load_text(_block(64), file="ok.yaml")
    assert errors == [] and docs[0].data["a"]["b"]["b"]["b"] is not None


def test_the_value_budget_says_what_was_exceeded() -> None:
    """100,001 plain values, no alias anywhere: not an "alias bomb"."""
    text = "a: [" + ", ".join(["1"] * 100_001) + "]\n"
    _, errors = load_text(text, file="big.yaml")
    assert [(e.message, e.hint) for e in errors] == [
        ("document has more than 100,000 values (the limit per document)",
         "a manifest holds a few dozen values; split the data, or check what generated this file")]
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, n in zip("abcde", "bcdef", strict=True))
    _, errors = load_text(bomb, file="bomb.yaml")
    assert errors[0].message == "document expands to more than 100,000 values (the limit per document) through aliases"
    assert "alias bomb" in (errors[0].hint or "")


def test_values_json_cannot_carry_are_kept_and_located_for_validation() -> None:
    text = "a: .nan\nb: [-.inf, .Inf]\nc: 9223372036854775807\nd: -9223372036854775809\ne: " + "7" * 5000 + "\n"
    (doc,), errors = load_text(text, file="n.yaml")
    assert errors == []
    assert [(p.line, p.col, p.field, p.unreadable) for p in doc.problems] == [
        (1, 4, "a", False), (2, 5, "b[0]", False), (2, 12, "b[1]", False), (4, 4, "d", False), (5, 4, "e", True)]
    assert doc.problems[0].message == ".nan is not a number the API can take: JSON has no NaN or infinity"
    assert doc.problems[3].message == ("the integer -9223372036854775809 does not fit in 64 bits, the largest the "
                                       "API takes")
    assert doc.problems[4].message.startswith("the integer 77777777777777777777...77777777 (5000 characters) does")
    assert doc.data["c"] == 2**63 - 1 and doc.data["e"] == "7" * 5000


def test_an_alias_used_twice_is_not_a_cycle() -> None:
    docs, errors = load_text("a: &x {b: 1}\nc: [*x, *x]\nd: {<<: *x, e: 2}\n", file="ok.yaml")
    assert errors == [] and docs[0].data == {"a": {"b": 1}, "c": [{"b": 1}, {"b": 1}], "d": {"b": 1, "e": 2}}


def test_control_characters_and_utf16_are_located() -> None:
    _, errors = load_text('a: 1\nb: "x\x07"\n', file="c.yaml")
    assert [(e.line, e.col, e.message) for e in errors] == [
        (2, 6, "character U+0007 is not allowed in YAML (control characters are not allowed)")]
    _, errors = load_bytes("a: 1\n".encode("utf-16"), file="w.yaml")
    assert errors[0].message == "not UTF-8: the file is UTF-16 (it starts with a UTF-16 byte order mark)"


def test_what_is_not_a_regular_file_is_an_error_that_names_it(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.yaml")
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    (tmp_path / "gone.yaml").symlink_to(tmp_path / "nowhere.yaml")
    result = load_paths([tmp_path])
    assert sorted((Path(e.file).name, e.message) for e in result.errors) == [
        ("gone.yaml", "broken symbolic link (to " + str(tmp_path / "nowhere.yaml") + "): whatever it pointed at "
         "cannot be read"),
        ("pipe.yaml", "not a regular file: it is a FIFO (named pipe)"),
        ("zero.yaml", "not a regular file: it is a character device")]


def test_symlinked_directories_are_followed_once_and_link_loops_end(tmp_path: Path) -> None:
    root = tmp_path / "specs"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.yaml").write_text("a: 1\n")
    elsewhere = tmp_path / "elsewhere" / "team"
    elsewhere.mkdir(parents=True)
    (elsewhere / "y.yaml").write_text("b: 1\n")
    (root / "team").symlink_to(elsewhere, target_is_directory=True)
    (root / "a" / "up").symlink_to(root, target_is_directory=True)  # a loop
    (root / "moved").symlink_to(tmp_path / "not-there", target_is_directory=True)
    errors: list[LoadError] = []
    found = [p.relative_to(root).as_posix() for p in iter_manifest_files([root], errors)]
    assert found == ["a/x.yaml", "team/y.yaml"]
    assert [(Path(e.file).name, e.message.split(":")[0]) for e in errors] == [
        ("moved", "broken symbolic link (to " + str(tmp_path / "not-there") + ")")]


_NAMES = """\
metadata: {name: first}
spec: {}
---
# a comment
metadata:
  labels: {team: a}
  name: "second"
---
base: &base {name: merged}
metadata:
  <<: *base
---
metadata:
  name: [not, a, string]
---
metadata:
  name: 42
"""


def test_metadata_name_is_located_without_reading_the_file_again() -> None:
    """Policy verdicts are located at metadata.name: noted while the document is built, it is the
    mark the position tables give, and asking for it composes nothing again (a merge key or a
    name that is not a scalar falls back to the tables)."""
    docs, errors = load_text(_NAMES, file="names.yaml")
    assert errors == []
    fast = [doc.mark(("metadata", "name")) for doc in docs]
    assert [doc._values is None for doc in docs] == [True, True, False, False, True]
    again, _ = load_text(_NAMES, file="names.yaml")
    tables = [doc.values[("metadata", "name")] for doc in again]
    assert fast == tables
    assert [(m.line, m.col) for m in fast] == [(1, 18), (7, 9), (9, 20), (14, 9), (17, 9)]


_TRICKY = [
    "a: x\nb: 'y'\nc: \"z\"\nd: |\n  block\ne: >\n  folded\nf: [p, 'q', 1, true, yes, null, ~, 1.5]\n",
    "base: &b {k: v, n: 1}\nuse: {<<: *b, k: w}\nlist: [&s str, *s, *s]\n",
    "merge:\n  <<: [{a: '1'}, {b: two}]\n  c: three\n",
    "k: " + "[" * 63 + "leaf" + "]" * 63 + "\n",  # strings at the deepest level allowed
    "k: " + "[" * 64 + "leaf" + "]" * 64 + "\n",  # one level too deep
    "a: &a [s, s, s, s, s, s, s, s, s, s]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
    "e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n",  # 100,000 strings through aliases: over the budget
    "dup: a\ndup: b\n",
    "when: 2024-01-01\nbig: 123456789012345678901234567890\nodd: !!binary aGk=\n",
    "'quoted key': v\n? complex\n: value\nempty:\nnull_key: ~\n",
]


@pytest.mark.parametrize("text", _TRICKY)
def test_strings_taken_in_line_build_what_the_recorded_walk_builds(text: str, loader: str) -> None:
    """The constructor takes a string child in line when no positions are recorded (the common
    case); with positions (a document asked for a mark) every node goes through _construct. Both
    must build the same data and refuse the same way, at the same place."""
    def built(with_positions: bool) -> tuple[Any, ...]:
        node = load._nth_node(text, 0)
        assert node is not None
        doc = load.LoadedDocument(file="f.yaml", index=0, data={}, line=1, col=1, text=text)
        if with_positions:
            doc._values, doc._keys = {}, {}
        problems: list[load.LoadError] = []
        try:
            data = load._construct(node, (), doc if with_positions else None, [load.MAX_NODES_PER_DOCUMENT], set(),
                                   problems)
        except load._Refused as refused:
            return ("refused", refused.line, refused.col, refused.message, refused.field)
        return ("built", data, [(p.line, p.col, p.message, p.field) for p in problems])

    fast, recorded = built(False), built(True)
    assert fast == recorded
    assert load.load_text(text, file="f.yaml")[0 if fast[0] == "built" else 1]  # and load_text agrees
