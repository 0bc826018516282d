"""How long the core install takes and how much it puts on disk, before and after the extras split.

Each variant installs a wheel built from the source (this checkout, and the commit before the
split, ``--before``) into a fresh virtual environment, with an empty package cache and no machine
pip configuration (``PIP_CONFIG_FILE=/dev/null``), as a user's CI job would: ``pip install WHEEL``
resolves and downloads the dependencies from the package index. uv does the same for comparison.
Printed: wall time, size of site-packages, number of distributions; then whether the core command
``reconciler validate`` imports any module of an extra (``python -X importtime``).

    python bench/bench_install.py [--before REV] [--repeat N]

Needs the package index. The target (issue #11): the core under 150 MB and in half the time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reconciler.extras import EXTRAS  # noqa: E402

# The last commit whose core install carried the job runner, the operator and their stacks.
BEFORE = "3c6f753"


@dataclass
class Result:
    label: str
    seconds: list[float]
    megabytes: float
    distributions: int

    def row(self) -> str:
        best = min(self.seconds)
        spread = f" (median {statistics.median(self.seconds):.1f})" if len(self.seconds) > 1 else ""
        return f"{self.label:<34} {best:7.1f} s{spread:<16} {self.megabytes:8.1f} MB {self.distributions:6d}"


def _clean_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "PYTHONPATH", "VIRTUAL_ENV"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_CACHE_DIR=str(cache / "pip"),
               UV_CACHE_DIR=str(cache / "uv"), UV_NO_CONFIG="1")
    return env


def _run(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> None:
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")


def _site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def _size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6


def _distributions(venv: Path) -> int:
    bootstrap = ("pip-", "setuptools-", "wheel-")
    return sum(1 for d in _site_packages(venv).glob("*.dist-info") if not d.name.startswith(bootstrap))


def _wheel(source: Path, out: Path, env: dict[str, str]) -> Path:
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(source)], env)
    return next(out.glob("*.whl"))


def _source_at(rev: str, dest: Path) -> Path:
    archive = dest / "src.tar"
    with archive.open("wb") as handle:
        done = subprocess.run(["git", "-C", str(ROOT), "archive", rev], stdout=handle, stderr=subprocess.PIPE)
    if done.returncode != 0:
        raise SystemExit(f"cannot read commit {rev}: {done.stderr.decode().strip()}; pass --before REV")
    with tarfile.open(archive) as tar:
        tar.extractall(dest / "src", filter="data")
    return dest / "src"


def install(label: str, wheel: Path, tool: str, work: Path, repeat: int) -> tuple[Result, Path]:
    seconds: list[float] = []
    venv = work / "venv"
    for _ in range(repeat):
        shutil.rmtree(venv, ignore_errors=True)
        cache = Path(tempfile.mkdtemp(dir=work))  # empty cache: every package is downloaded
        env = _clean_env(cache)
        if tool == "pip":
            _run([sys.executable, "-m", "venv", str(venv)], env)
            start = time.perf_counter()
            _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)], env)
        else:
            _run(["uv", "venv", "--quiet", "--python", sys.executable, str(venv)], env)
            start = time.perf_counter()
            _run(["uv", "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), str(wheel)], env)
        seconds.append(time.perf_counter() - start)
        shutil.rmtree(cache, ignore_errors=True)
    return Result(label, seconds, _size_mb(_site_packages(venv)), _distributions(venv)), venv


def extras_imported_by_validate(venv: Path) -> tuple[list[str], float]:
    """Modules of an extra that `reconciler validate specs` imports, and its total import time (s)."""
    done = subprocess.run([str(venv / "bin" / "python"), "-X", "importtime", "-c",
                           "from reconciler.cli import main; main()", "validate", "specs"],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""})
    extra_modules = {m for modules in EXTRAS.values() for m in modules}
    found, total_us = set(), 0
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or line.count("|") != 2:
            continue
        _self, cumulative, raw = line.removeprefix("import time:").split("|")
        name = raw.strip()
        if cumulative.strip().isdigit() and raw.startswith(" ") and not raw.startswith("  "):
            total_us += int(cumulative)  # a top-level import: its cumulative time holds its children's
        if name.split(".")[0] in extra_modules:
            found.add(name.split(".")[0])
    return sorted(found), total_us / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default=BEFORE, help="the commit to compare with (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=1, help="installs per variant (the best is shown)")
    args = parser.parse_args()
    if shutil.which("uv") is None:
        raise SystemExit("uv is not on PATH: install the dev lock (requirements/dev.txt)")
    with tempfile.TemporaryDirectory(prefix="bench-install-") as tmp:
        work = Path(tmp)
        env = _clean_env(work / "build-cache")
        (work / "before").mkdir()
        (work / "after").mkdir()
        before = _wheel(_source_at(args.before, work / "before"), work / "before" / "wheel", env)
        after = _wheel(ROOT, work / "after" / "wheel", env)
        results = []
        imported: list[str] = []
        seconds = 0.0
        for label, wheel, tool in ((f"before ({args.before}), pip", before, "pip"),
                                   (f"before ({args.before}), uv", before, "uv"),
                                   ("after: core, pip", after, "pip"),
                                   ("after: core, uv", after, "uv")):
            place = work / label.split(":")[0].split(" ")[0] / tool
            place.mkdir(parents=True, exist_ok=True)
            result, venv = install(label, wheel, tool, place, args.repeat)
            results.append(result)
            print(result.row(), flush=True)
            if label.startswith("after") and tool == "pip":
                imported, seconds = extras_imported_by_validate(venv)
        print(f"\n{'variant':<34} {'time':>9} {'':<16} {'site-packages':>11} {'dists':>6}")
        for result in results:
            print(result.row())
        old, new = results[0], results[2]
        print(f"\ncore install with pip: {min(new.seconds) / min(old.seconds):.0%} of the time "
              f"(target under 50%), {new.megabytes:.0f} MB (target under 150 MB), "
              f"{new.distributions} instead of {old.distributions} distributions")
        print(f"`reconciler validate specs` on the core install: imports {seconds:.2f} s of modules; "
              f"modules of an extra imported: {imported or 'none'}")


if __name__ == "__main__":
    main()
