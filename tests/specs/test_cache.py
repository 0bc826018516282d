"""The validated-manifest cache (reconciler.specs.cache, reconciler.specs.incremental): a warm run
parses nothing unchanged, and whatever changes (a file's bytes, its name, the schemas, the
target's variables, an overlay), the result is exactly the uncached one."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.contract import schemas, validators
from reconciler.specs import cache as cache_module
from reconciler.specs import load as loading

DEPLOYMENT = "5dc5b1015e6e762a6241f9aa"
CONFIG = """\
apiVersion: reconciler.io/v1alpha1
kind: Project
scope: {{namePrefix: job-}}
targets:
  dev: {{variables: {{BUCKET: {bucket}, CONCURRENCY: 2}}}}
"""


def manifest(name: str, *, url: str = "s3://${BUCKET}/in.csv", cron: str = "0 2 * * 1-5", extra: str = "") -> str:
    return textwrap.dedent(f"""\
        apiVersion: reconciler.io/v1alpha1
        kind: BatchPredictionJobDefinition
        metadata:
          name: {name}
        spec:
          enabled: true
          schedule: {{cron: "{cron}"}}
          batchPredictionJob:
            deploymentId: {DEPLOYMENT}
            numConcurrent: ${{CONCURRENCY}}
            intakeSettings: {{type: s3, url: "{url}"}}
            outputSettings: {{type: s3, url: "s3://${{BUCKET}}/out/{name}/"}}
        """) + extra


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "specs" / "team").mkdir(parents=True)
    (root / "reconciler.yaml").write_text(CONFIG.format(bucket="dev-bucket"))
    (root / "specs" / "a.yaml").write_text(manifest("job-a") + "---\n" + manifest("job-b", cron="0 0 29 2 *"))
    (root / "specs" / "team" / "c.yaml").write_text(manifest("job-c", url="s3://fixed/in.csv"))
    (root / "specs" / "d.yaml").write_text(manifest("job-d"))
    (root / "overlays" / "dev").mkdir(parents=True)
    (root / "overlays" / "dev" / "job-c.yaml").write_text("spec: {enabled: false}\n")
    (root / "overlays" / "dev" / "job-zzz.yaml").write_text("spec: {enabled: false}\n")  # used by none: a warning
    return root


def _run(root: Path, cache_dir: Path | None, *, target: str | None = "dev") -> tuple[Any, ...]:
    """Everything a load gives (documents, desired, the report), or the report of invalid manifests,
    and a plan against the embedded local service."""
    from reconciler.session import InvalidManifests, Options, Session

    options = Options(paths=(root / "specs",), paths_given=True, target=target, cache_dir=cache_dir,
                      no_cache=cache_dir is None, environ={"RECONCILER_LOCAL_DB_URL": f"sqlite:///{root}/local.db"})
    session = Session.open(options)
    try:
        manifests = session.load()
    except InvalidManifests as exc:
        return ("invalid", exc.report.as_json())

    async def plan() -> Any:
        async with session.client() as client:
            return await session.plan(client, manifests)

    documents = [(d.file, d.index, d.line, d.col, d.data, d.mark(("spec", "schedule")))
                 for d in manifests.documents]
    return ("ok", documents, manifests.desired, manifests.report.as_json() if manifests.report else None,
            asyncio.run(plan()))


def _counts(root: Path, cache_dir: Path) -> tuple[int, int]:
    """Cache hits and misses of a load as the session makes it."""
    from reconciler.session import Options, Session, _desired_derivation

    session = Session.open(Options(paths=(root / "specs",), paths_given=True, target="dev", cache_dir=cache_dir,
                                   environ={}))
    validated = session._validated(_desired_derivation(session.secret_roots))
    return validated.hits, validated.misses


def _same_with_and_without(root: Path, cache_dir: Path) -> tuple[Any, ...]:
    uncached = _run(root, None)
    assert _run(root, cache_dir) == uncached  # cold (or partly warm)
    assert _run(root, cache_dir) == uncached  # warm
    return uncached


def test_warm_run_parses_nothing_and_equals_the_uncached_run(project: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    cache_dir = tmp_path / "cache"
    result = _same_with_and_without(project, cache_dir)
    assert result[0] == "ok" and len(result[1]) == 4
    assert any("job-zzz" in w["file"] for w in result[3]["warnings"])  # the unused overlay, warned once
    assert any("29 February" in w["message"] for w in result[3]["warnings"])  # a document's own warning
    assert [d.comparable["enabled"] for d in result[2] if d.name == "job-c"] == [False]  # its overlay applied
    assert _counts(project, tmp_path / "fresh") == (0, 3)
    assert _counts(project, tmp_path / "fresh") == (3, 0)

    parsed: list[str] = []
    real = loading.load_bytes

    def counting(data: bytes, *, file: str) -> Any:
        parsed.append(file)
        return real(data, file=file)

    monkeypatch.setattr("reconciler.specs.incremental.load_bytes", counting)
    assert _run(project, cache_dir) == result
    assert parsed == []  # nothing unchanged is parsed again

    (project / "specs" / "d.yaml").write_text(manifest("job-d", url="s3://${BUCKET}/changed.csv"))
    edited = _run(project, cache_dir)
    assert parsed == [str(project / "specs" / "d.yaml")]  # only the edited file
    assert edited == _run(project, None) and edited != result


def test_edit_rename_variables_and_overlay_changes(project: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    first = _same_with_and_without(project, cache_dir)
    (project / "specs" / "a.yaml").write_text(manifest("job-a", cron="0 3 * * *") + "---\n" + manifest("job-b"))
    edited = _same_with_and_without(project, cache_dir)
    assert edited != first
    (project / "specs" / "a.yaml").rename(project / "specs" / "renamed.yaml")
    renamed = _same_with_and_without(project, cache_dir)
    assert [d[0] for d in renamed[1]].count(str(project / "specs" / "renamed.yaml")) == 2
    (project / "reconciler.yaml").write_text(CONFIG.format(bucket="other-bucket"))
    variables = _same_with_and_without(project, cache_dir)
    assert "other-bucket" in json.dumps(variables[2][0].body)
    (project / "overlays" / "dev" / "job-d.yaml").write_text("spec: {batchPredictionJob: {numConcurrent: 7}}\n")
    overlaid = _same_with_and_without(project, cache_dir)
    assert [d.body["numConcurrent"] for d in overlaid[2] if d.name == "job-d"] == [7]
    (project / "overlays" / "dev" / "job-d.yaml").write_text("spec: {batchPredictionJob: {numConcurrent: 5}}\n")
    assert [d.body["numConcurrent"] for d in _same_with_and_without(project, cache_dir)[2] if d.name == "job-d"] == [5]
    # without --target: the default target, where the placeholders are errors (same report either way)
    invalid = _run(project, None, target=None)
    assert invalid[0] == "invalid" and _run(project, cache_dir, target=None) == invalid


def test_an_error_after_a_warm_run_is_reported_exactly_as_without_the_cache(project: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    _same_with_and_without(project, cache_dir)
    (project / "specs" / "e.yaml").write_text(manifest("job-a"))  # a duplicate name in a new file
    duplicate = _same_with_and_without(project, cache_dir)
    assert duplicate[0] == "invalid" and "also declared at" in json.dumps(duplicate[1])
    (project / "specs" / "e.yaml").write_text(manifest("job-e").replace("numConcurrent", "numConcurent"))
    typo = _same_with_and_without(project, cache_dir)
    assert typo[0] == "invalid" and "numConcurent" in json.dumps(typo[1])


@pytest.fixture
def changed_schemas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of schemas/ the validators read instead (their caches cleared before and after)."""
    copy = tmp_path / "schemas"
    copy.mkdir()
    for path in schemas.schema_dir().iterdir():
        (copy / path.name).write_bytes(path.read_bytes())

    def clear() -> None:
        for cached in (schemas.all_schemas, validators.registry, validators.validator, validators.fast_validator,
                       cache_module.schema_digest):
            cached.cache_clear()  # type: ignore[attr-defined]

    clear()
    monkeypatch.setattr(schemas, "schema_dir", lambda: copy)
    yield copy
    monkeypatch.undo()
    clear()


def test_a_schema_change_is_never_served_from_the_cache(project: Path, tmp_path: Path,
                                                         changed_schemas: Path) -> None:
    cache_dir = tmp_path / "cache"
    assert _same_with_and_without(project, cache_dir)[0] == "ok"
    path = changed_schemas / "job-spec-fields.schema.json"
    schema = json.loads(path.read_text())
    schema["properties"]["numConcurrent"]["maximum"] = 1  # the manifests ask for 2
    path.write_text(json.dumps(schema))
    for cached in (schemas.all_schemas, validators.registry, validators.validator, validators.fast_validator,
                   cache_module.schema_digest):
        cached.cache_clear()  # type: ignore[attr-defined]
    refused = _same_with_and_without(project, cache_dir)
    assert refused[0] == "invalid"


def test_corrupt_and_truncated_entries_are_misses_and_rewritten(project: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    result = _same_with_and_without(project, cache_dir)
    entries = sorted(p for p in cache_dir.rglob("*") if p.is_file())
    assert entries
    for i, entry in enumerate(entries):
        data = entry.read_bytes()
        if i % 3 == 0:
            entry.write_bytes(data[: len(data) // 2])  # truncated
        elif i % 3 == 1:
            entry.write_bytes(data[:-5] + bytes(b ^ 0x20 for b in data[-5:]))  # flipped bits, same length
        else:
            entry.write_bytes(b"")
    assert _run(project, cache_dir) == result
    hits, misses = _counts(project, cache_dir)
    assert misses == 0 and hits == 3  # rewritten by the run before


def test_the_cache_is_bounded(project: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    filler = cache_module.DocumentCache(cache_dir, context="filler", max_bytes=10**9)
    for i in range(40):  # forty packs of another context, 1 KB each, the oldest first
        filler.put(filler.key(f"f{i}.yaml", b"x"), {"k": "x" * 1000})
        filler.flush()
    store = cache_module.DocumentCache(cache_dir, context="test", max_bytes=20_000)
    store.put(store.key("f.yaml", b"a"), {"k": 1})
    store.flush()
    assert store.evict() > 0
    assert sum(p.stat().st_size for p in cache_dir.rglob("*") if p.is_file()) <= 16_000
    assert store.get(store.key("f.yaml", b"a")) == {"k": 1}  # the newest entry stays


def test_many_runs_of_a_context_are_merged_into_few_packs(tmp_path: Path) -> None:
    """Each run that writes adds a pack; past MAX_PACKS a run merges the packs it read into one,
    keeping what that run used and what is young, each entry once."""
    cache_dir = tmp_path / "cache"
    for run in range(3 * cache_module.MAX_PACKS):
        store = cache_module.DocumentCache(cache_dir, context="test")
        assert all(store.get(store.key(f"f{i}.yaml", b"a")) == {"run": i} for i in range(run))
        store.put(store.key(f"f{run}.yaml", b"a"), {"run": run})
        store.flush()
        store.close()
        assert len(list((cache_dir / "packs").glob("*.pack"))) <= cache_module.MAX_PACKS
    store = cache_module.DocumentCache(cache_dir, context="test")
    assert [store.get(store.key(f"f{i}.yaml", b"a")) for i in range(3 * cache_module.MAX_PACKS)] == [
        {"run": i} for i in range(3 * cache_module.MAX_PACKS)]


def test_a_merge_leaves_the_large_young_pack_as_it_is(tmp_path: Path) -> None:
    """A watch loop merges after every eighth edit: the first run's large pack is not rewritten
    each time (only the small ones are merged), and every entry stays readable."""
    cache_dir = tmp_path / "cache"
    store = cache_module.DocumentCache(cache_dir, context="test")
    for i in range(50):
        store.put(store.key(f"base{i}.yaml", b"a"), {"base": i, "pad": "x" * 200})
    store.flush()
    [base] = list((cache_dir / "packs").glob("*.pack"))
    for edit in range(2 * cache_module.MAX_PACKS):
        store = cache_module.DocumentCache(cache_dir, context="test")
        assert all(store.get(store.key(f"base{i}.yaml", b"a")) is not None for i in range(50))
        store.put(store.key(f"edit{edit}.yaml", b"a"), {"edit": edit})
        store.flush()
        store.close()
        assert base.exists() and len(list((cache_dir / "packs").glob("*.pack"))) <= cache_module.MAX_PACKS
    store = cache_module.DocumentCache(cache_dir, context="test")
    assert all(store.get(store.key(f"edit{edit}.yaml", b"a")) == {"edit": edit}
               for edit in range(2 * cache_module.MAX_PACKS))


def test_a_pack_whose_entries_are_all_written_again_goes(tmp_path: Path) -> None:
    """The live memo rewrites its one entry after each listing: the pack it was read from goes."""
    cache_dir = tmp_path / "cache"
    for value in range(5):
        store = cache_module.DocumentCache(cache_dir, context="memo")
        assert store.get(store.key("rows", b"")) == (None if value == 0 else {"v": value - 1})
        store.put(store.key("rows", b""), {"v": value})
        store.flush()
        assert len(list((cache_dir / "packs").glob("*.pack"))) == 1


def test_two_concurrent_runs_share_one_cache(project: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    for i in range(40):  # enough files that the two runs overlap
        (project / "specs" / f"many-{i:02d}.yaml").write_text(manifest(f"job-m{i:02d}"))
    code = textwrap.dedent(f"""
        import json, pathlib
        from reconciler.session import Options, Session
        root = pathlib.Path({str(project)!r})
        session = Session.open(Options(paths=(root / "specs",), paths_given=True, target="dev",
                                       cache_dir=pathlib.Path({str(cache_dir)!r}), environ={{}}))
        manifests = session.load()
        print(json.dumps([[d.name, d.body, d.comparable, d.source] for d in manifests.desired]))
        """)
    runs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert all(run.returncode == 0 for run in runs), [err[-2000:] for _, err in outputs]
    expected = [[d.name, d.body, d.comparable, d.source] for d in _run(project, None)[2]]
    assert [json.loads(out) for out, _ in outputs] == [expected, expected]
    assert _run(project, cache_dir)[2] == _run(project, None)[2]
    assert not [p for p in cache_dir.rglob(".tmp-*")]  # no temporary file left behind


def test_a_file_naming_a_secret_file_is_never_cached(project: Path, tmp_path: Path) -> None:
    """Whether a secret file stays inside the project depends on links, not on the manifest's bytes."""
    cache_dir = tmp_path / "cache"
    (project / "secrets").mkdir()
    (project / "secrets" / "key").write_text("k")
    (project / "specs" / "d.yaml").write_text(manifest("job-d", extra=textwrap.indent(
        "predictionInstance: {hostName: h.example.com, apiKeyFrom: {file: ../secrets/key}}\n", "    ")))
    assert _same_with_and_without(project, cache_dir)[0] == "ok"
    assert _counts(project, cache_dir) == (2, 1)  # d.yaml validated again on every run
    outside = tmp_path / "elsewhere"
    outside.write_text("k")
    (project / "secrets" / "key").unlink()
    (project / "secrets" / "key").symlink_to(outside)  # now it resolves outside the project
    refused = _same_with_and_without(project, cache_dir)
    assert refused[0] == "invalid" and "outside the project" in json.dumps(refused[1])


def test_an_entry_larger_than_the_cache_is_neither_stored_nor_read(tmp_path: Path) -> None:
    """Every read is bounded: an entry or a pack beyond ``max_bytes`` (written by a run with a
    larger limit) is a miss, and is never read."""
    store = cache_module.DocumentCache(tmp_path / "cache", context="test", max_bytes=1_000)
    big, small = store.key("big.yaml", b"a"), store.key("small.yaml", b"b")
    store.put(big, {"k": "x" * 2_000})
    store.put(small, {"k": "x" * 100})
    store.flush()
    store.close()
    assert store.get(big) is None and store.get(small) == {"k": "x" * 100}
    store.close()
    roomy = cache_module.DocumentCache(tmp_path / "cache", context="test", max_bytes=10_000)
    roomy.put(big, {"k": "x" * 2_000})
    roomy.flush()
    roomy.close()
    assert roomy.get(big) == {"k": "x" * 2_000}  # the entry itself is sound: a cache allowed more reads it
    assert store.get(big) is None  # its pack is larger than this cache may hold


def test_a_cache_deleted_during_a_run_is_no_error(tmp_path: Path) -> None:
    """`rm -rf .reconciler/cache` while a watch runs: that run goes on (what it wrote may be lost),
    the next one writes the cache again."""
    import shutil

    store = cache_module.DocumentCache(tmp_path / "cache", context="test")
    first = store.key("a.yaml", b"a")
    store.put(first, {"k": 1})
    shutil.rmtree(tmp_path / "cache")
    store.flush()
    again = cache_module.DocumentCache(tmp_path / "cache", context="test")
    assert again.get(first) is None
    again.put(first, {"k": 2})
    again.flush()
    assert cache_module.DocumentCache(tmp_path / "cache", context="test").get(first) == {"k": 2}


def test_entry_files_of_earlier_versions_are_removed_and_nothing_else(tmp_path: Path) -> None:
    """Before packs, each entry was a file ``xx/xx…`` (40 hex digits); they are never read now and
    go with the next eviction. A cache directory may be any directory: nothing else goes."""
    cache_dir = tmp_path / "cache"
    old = cache_dir / "ab" / ("ab" + "0" * 38)
    old.parent.mkdir(parents=True)
    old.write_bytes(b"RCC2....")
    mine = [cache_dir / "ab" / "notes.txt", cache_dir / "go" / ("go" + "0" * 38), cache_dir / "cd" / "readme"]
    for path in mine:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("keep")
    store = cache_module.DocumentCache(cache_dir, context="test")
    store.put(store.key("a.yaml", b"a"), {"k": 1})
    store.flush()
    assert store.evict() == 1
    assert not old.exists() and all(path.exists() for path in mine)


def test_a_fifo_or_a_link_named_like_a_pack_is_no_pack(tmp_path: Path) -> None:
    """Nothing in the cache directory can make a run hang or read elsewhere."""
    import os

    cache_dir = tmp_path / "cache"
    store = cache_module.DocumentCache(cache_dir, context="test")
    key = store.key("a.yaml", b"a")
    store.put(key, {"k": 1})
    store.flush()
    [pack] = list((cache_dir / "packs").glob("*.pack"))
    prefix = pack.name.split(".")[0]
    os.mkfifo(cache_dir / "packs" / f"{prefix}.99999999999999999999.1.pack")
    (cache_dir / "packs" / f"{prefix}.99999999999999999998.1.pack").symlink_to(pack)
    fresh = cache_module.DocumentCache(cache_dir, context="test")
    assert fresh.get(key) == {"k": 1} and len(fresh._packs) == 1  # the real pack only
