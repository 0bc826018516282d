"""Manifest files that miss the cache (all of them with --no-cache) are validated and derived in
forked workers (reconciler.specs.incremental, reconciler.cores.in_ranges): whatever the road (in
this process, in workers, from the cache, a worker that died), the documents, warnings and derived
values are the same, and an invalid file anywhere gives exactly the whole run's report."""

from __future__ import annotations

import os
import resource
import textwrap
from pathlib import Path
from typing import Any

import pytest

from reconciler.specs import environments
from reconciler.specs.incremental import Derivation, Validated, validate_with_cache
from tests.specs.test_cache import manifest as cache_manifest

CONFIG = """\
apiVersion: reconciler.io/v1alpha1
kind: Project
scope: {namePrefix: job-}
targets:
  dev: {variables: {BUCKET: dev-bucket, CONCURRENCY: 2}}
"""
FILES = 30
PER_FILE = 10


def manifest(name: str, *, cron: str = "0 2 * * 1-5", extra: str = "") -> str:
    """test_cache's manifest, each reading its own intake file."""
    return cache_manifest(name, url=f"s3://${{BUCKET}}/in/{name}.csv", cron=cron, extra=extra)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """300 manifests in 30 files: variables, an overlay used and one unused (a warning), a
    document's own warning (29 February), a file naming a secret file."""
    root = tmp_path / "proj"
    (root / "specs").mkdir(parents=True)
    (root / "reconciler.yaml").write_text(CONFIG)
    for f in range(FILES):
        docs = [manifest(f"job-{f:02d}-{m}", cron="0 0 29 2 *" if (f, m) == (7, 3) else "0 2 * * 1-5")
                for m in range(PER_FILE)]
        (root / "specs" / f"f{f:02d}.yaml").write_text("---\n".join(docs))
    (root / "secrets").mkdir()
    (root / "secrets" / "key").write_text("k")
    (root / "specs" / "f12.yaml").write_text("---\n".join(
        manifest(f"job-12-{m}", extra=textwrap.indent(
            "predictionInstance: {hostName: h.example.com, apiKeyFrom: {file: ../secrets/key}}\n", "    ")
                 if m == 5 else "") for m in range(PER_FILE)))
    (root / "overlays" / "dev").mkdir(parents=True)
    (root / "overlays" / "dev" / "job-20-4.yaml").write_text("spec: {enabled: false}\n")
    (root / "overlays" / "dev" / "job-zzz.yaml").write_text("spec: {enabled: false}\n")  # used by none
    return root


def _session(root: Path) -> Any:
    from reconciler.session import Options, Session

    return Session.open(Options(paths=(root / "specs",), paths_given=True, target="dev", no_cache=True,
                                environ={}))


def _derivation(session: Any) -> Derivation:
    from reconciler.session import _desired_derivation

    derivation: Derivation = _desired_derivation(session.secret_roots)
    return derivation


def _load(root: Path, cache_dir: Path | None, *, fork_minimum: int, workers: int = 2,
          derivation: Derivation | None = None) -> Validated:
    session = _session(root)
    return validate_with_cache([root / "specs"], targets=session.config.targets, target_name="dev",
                               overlays_root=session.config_dir, secret_roots=session.secret_roots,
                               cache_dir=cache_dir, derivation=derivation or _derivation(session),
                               fork_minimum=fork_minimum, workers=workers)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _forked(root: Path, cache_dir: Path | None, **kwargs: Any) -> Validated:
    """A load with workers forced on, checked to have run some of its work in children."""
    before = _children_cpu()
    out = _load(root, cache_dir, fork_minimum=1, **kwargs)
    assert _children_cpu() > before, "no worker ran: the files were validated in this process"
    return out


def _everything(validated: Validated) -> tuple[Any, ...]:
    report = validated.report
    docs = [(d.file, d.index, d.line, d.col, d.data, d.mark(("spec", "schedule")), d.mark(("metadata", "name")))
            for d in report.documents]
    derived = validated.derived or []
    return (docs, report.issues, report.files, report.checked, derived, [d.exact for d in derived])


def _whole_run(root: Path) -> tuple[Any, ...]:
    """The reference: the run validated as a whole (environments.validate_for), derived in order."""
    session = _session(root)
    derivation = _derivation(session)
    report = environments.validate_for([root / "specs"], targets=session.config.targets, target_name="dev",
                                       overlays_root=session.config_dir, secret_roots=session.secret_roots)
    derived = [derivation.revive(derivation.make(doc)) for doc in report.documents]
    docs = [(d.file, d.index, d.line, d.col, d.data, d.mark(("spec", "schedule")), d.mark(("metadata", "name")))
            for d in report.documents]
    return docs, report.issues, report.files, report.checked, derived, [d.exact for d in derived]


@pytest.mark.fresh_process
def test_workers_give_what_one_process_gives(project: Path, tmp_path: Path) -> None:
    in_process = _everything(_load(project, None, fork_minimum=10**9))
    docs, issues, files, checked, derived, exact = in_process
    assert (files, checked, len(docs), len(derived)) == (FILES, FILES * PER_FILE, FILES * PER_FILE, FILES * PER_FILE)
    assert any("29 February" in i.message for i in issues)  # a document's own warning
    assert any("job-zzz" in i.file for i in issues)  # the overlay no manifest used
    assert [d.comparable["enabled"] for d in derived if d.name == "job-20-4"] == [False]  # its overlay applied
    assert all(e is not None for e in exact)
    assert in_process == _whole_run(project)

    assert _everything(_forked(project, None)) == in_process  # no cache: every file in a worker
    cache_dir = tmp_path / "cache"
    cold = _forked(project, cache_dir)
    assert (cold.hits, cold.misses) == (0, FILES)
    assert _everything(cold) == in_process
    # one pack from this process and one from the worker (reconciler.specs.cache: never a file per entry)
    assert len([p for p in cache_dir.rglob("*") if p.is_file()]) == 2
    warm = _load(project, cache_dir, fork_minimum=1)
    assert (warm.hits, warm.misses) == (FILES - 1, 1)  # the secret file is validated on every run
    assert _everything(warm) == in_process
    assert _everything(_load(project, tmp_path / "in-process", fork_minimum=10**9)) == in_process
    assert _everything(_forked(project, None, workers=3)) == in_process


def test_no_cache_reads_and_writes_no_cache(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a cache the run takes the per-file road, and no entry is read or written anywhere."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECONCILER_CACHE_DIR", str(tmp_path / "env-cache"))
    validated = _load(project, None, fork_minimum=10**9)
    assert (validated.hits, validated.misses) == (0, 0)
    assert len(validated.report.documents) == FILES * PER_FILE
    assert not [p for p in tmp_path.rglob("*") if ".reconciler" in p.parts or "env-cache" in p.parts]


@pytest.mark.fresh_process
@pytest.mark.parametrize("where", [0, 17, FILES - 1])
def test_an_invalid_file_anywhere_gives_the_whole_runs_report(project: Path, tmp_path: Path, where: int) -> None:
    from reconciler.session import InvalidManifests, Options, Session

    (project / "specs" / f"f{where:02d}.yaml").write_text(
        manifest(f"job-{where:02d}-0") + "---\n" + manifest(f"job-{where:02d}-1", cron="61 * * * *"))
    reference = environments.validate_for([project / "specs"], targets=_session(project).config.targets,
                                          target_name="dev", overlays_root=project,
                                          secret_roots=_session(project).secret_roots)
    assert reference.errors
    for cache_dir in (None, tmp_path / "cache"):
        got = _forked(project, cache_dir).report
        assert got.as_json() == reference.as_json()
        assert [(d.file, d.index) for d in got.documents] == [(d.file, d.index) for d in reference.documents]
        options = Options(paths=(project / "specs",), paths_given=True, target="dev", cache_dir=cache_dir,
                          no_cache=cache_dir is None, environ={})
        with pytest.raises(InvalidManifests) as raised:
            Session.open(options).load()
        assert raised.value.report.as_json() == reference.as_json()


@pytest.mark.fresh_process
def test_a_worker_that_dies_has_its_files_validated_here(project: Path, tmp_path: Path) -> None:
    """A child killed mid-run (here: its derivation ends the process, as the OOM killer would):
    in_ranges redoes its range in the parent, and the result is the same."""
    session = _session(project)
    real = _derivation(session)
    parent = os.getpid()

    def dies_in_a_child(doc: Any) -> Any:
        if os.getpid() != parent:
            os._exit(9)
        return real.make(doc)

    dying = Derivation(tag=real.tag, make=dies_in_a_child, revive=real.revive)
    in_process = _everything(_load(project, None, fork_minimum=10**9))
    for cache_dir in (None, tmp_path / "cache"):
        assert _everything(_load(project, cache_dir, fork_minimum=1, derivation=dying)) == in_process
    assert _everything(_load(project, tmp_path / "cache", fork_minimum=10**9)) == in_process  # its entries whole
