"""pyproject.toml declares exactly what the code imports, each in the right place, and the lock
file pins every declared dependency inside its range.

The imports are found with an AST walk (every ``import``, at module level or inside a function)
and mapped to distributions with the installed metadata (``packages_distributions``).
"""

from __future__ import annotations

import ast
import re
import shlex
import sys
import tomllib
from collections import defaultdict
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from reconciler.extras import DISTRIBUTION, EXTRAS

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]
OWN = canonicalize_name(PROJECT["name"])
RUNTIME_EXTRAS = ("runner", "models", "operator", "postgres", "dask", "notify", "policy")


def _requirements(lines: list[str]) -> list[Requirement]:
    return [Requirement(line) for line in lines]


def _closure(extra: str | None) -> dict[str, Requirement]:
    """Distribution name -> requirement for the core plus ``extra``, following self-references."""
    found: dict[str, Requirement] = {}
    todo = [*_requirements(PROJECT["dependencies"])]
    seen: set[str] = set()
    extras = [extra] if extra else []
    while extras:
        name = extras.pop()
        if name in seen:
            continue
        seen.add(name)
        for req in _requirements(PROJECT["optional-dependencies"][name]):
            if canonicalize_name(req.name) == OWN:
                extras.extend(req.extras)
            else:
                todo.append(req)
    for req in todo:
        found[canonicalize_name(req.name)] = req
    return found


@cache
def _imported_modules(*roots: Path) -> dict[str, set[str]]:
    """Top-level third-party module -> files that import it."""
    found: dict[str, set[str]] = defaultdict(set)
    for root in roots:
        for path in root.rglob("*.py"):
            if "cases" in path.relative_to(ROOT).parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for name in names:
                    top = name.partition(".")[0]
                    if top not in sys.stdlib_module_names and top not in ("reconciler", "tests", "__future__"):
                        found[top].add(str(path.relative_to(ROOT)))
    return found


@cache
def _module_distributions() -> dict[str, list[str]]:
    """Read once: it walks every installed distribution's file list (about a second each call)."""
    return packages_distributions()


def _distributions_of(module: str) -> set[str]:
    return {canonicalize_name(d) for d in _module_distributions().get(module, [])}


def _local_test_modules() -> set[str]:
    """Modules and packages that tests import from their own tree (``operator_harness``, or
    ``gitops.test_github`` for the fake GitHub server)."""
    tests = ROOT / "tests"
    # and the benchmarks' own modules (bench/scoring_data.py; bench_policy reuses bench_validate's generator)
    return ({p.stem for p in tests.rglob("*.py")} | {p.parent.name for p in tests.rglob("__init__.py")}
            | {p.stem for p in (ROOT / "bench").glob("*.py")})


def test_every_import_of_the_package_is_declared() -> None:
    declared = set(_closure("all"))
    undeclared = {}
    for module, files in _imported_modules(ROOT / "reconciler").items():
        dists = _distributions_of(module)
        assert dists, f"{module} (imported by {sorted(files)}) is not installed: declare it and install it"
        if not dists & declared:
            undeclared[module] = (sorted(dists), sorted(files))
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_every_declared_runtime_dependency_is_imported() -> None:
    imported = set().union(*(_distributions_of(m) for m in _imported_modules(ROOT / "reconciler")))
    unused = sorted(set(_closure("all")) - imported)
    assert not unused, f"declared in pyproject.toml but never imported by reconciler/: {unused}"


def test_the_extras_helper_names_the_same_modules_as_pyproject() -> None:
    """require() checks exactly the modules of an extra, and each of them comes from that extra."""
    assert set(EXTRAS) == set(RUNTIME_EXTRAS)
    for extra, modules in EXTRAS.items():
        own = {canonicalize_name(r.name) for r in _requirements(PROJECT["optional-dependencies"][extra])} - {OWN}
        provided = set().union(*(_distributions_of(m) for m in modules))
        assert own <= provided, f"[{extra}] declares {sorted(own - provided)} but reconciler.extras does not check it"
        for module in modules:
            assert _distributions_of(module) & own, f"{module} is checked for [{extra}] but not declared there"


def test_core_dependencies_are_not_in_an_extra_and_extras_do_not_overlap() -> None:
    core = set(_closure(None))
    owners: dict[str, str] = {}
    for extra in RUNTIME_EXTRAS:
        for req in _requirements(PROJECT["optional-dependencies"][extra]):
            name = canonicalize_name(req.name)
            if name == OWN:
                continue
            assert name not in core, f"{name} is in the core and in [{extra}]"
            assert owners.setdefault(name, extra) == extra, f"{name} is in [{owners[name]}] and [{extra}]"


def test_all_and_dev_cover_every_extra() -> None:
    all_extras = next(r for r in _requirements(PROJECT["optional-dependencies"]["all"]))
    assert canonicalize_name(all_extras.name) == OWN and set(all_extras.extras) == set(RUNTIME_EXTRAS)
    assert set(_closure("all")) <= set(_closure("dev"))


def test_tests_and_benchmarks_import_only_what_dev_declares() -> None:
    declared = set(_closure("dev"))
    local = _local_test_modules()
    undeclared = {}
    for module, files in _imported_modules(ROOT / "tests", ROOT / "bench").items():
        if module in local:
            continue
        dists = _distributions_of(module)
        if not dists & declared:
            undeclared[module] = (sorted(dists), sorted(files)[:3])
    assert not undeclared, f"imported by tests or benchmarks but not in the [dev] extra: {undeclared}"


def test_the_distribution_name_is_the_one_the_messages_give() -> None:
    assert canonicalize_name(DISTRIBUTION) == OWN
    assert PROJECT["scripts"] == {"reconciler": "reconciler.cli:main"}


# --- the lock files ---------------------------------------------------------------------------

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(\S+)(?:\s*;\s*(.+?))?\s*\\?$", re.M)


def _pins(path: Path) -> dict[str, set[Version]]:
    """Name -> pinned versions (a universal lock may pin one per environment marker)."""
    found: dict[str, set[Version]] = defaultdict(set)
    for name, version, _marker in PIN.findall(path.read_text(encoding="utf-8")):
        found[canonicalize_name(name)].add(Version(version))
    return found


def _lock_command(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "# This file was autogenerated by uv via the following command:", path
    return shlex.split(lines[1].lstrip("#").strip())


def test_the_dev_lock_pins_every_declared_dependency_within_its_range() -> None:
    lock = ROOT / "requirements" / "dev.txt"
    pins = _pins(lock)
    for name, req in _closure("dev").items():
        assert name in pins, f"{name} is declared but not in {lock.name}: run requirements/lock.sh"
        outside = [str(v) for v in pins[name] if not req.specifier.contains(v, prereleases=True)]
        assert not outside, f"{lock.name} pins {name}=={outside} outside pyproject.toml's {req}: run requirements/lock.sh"
    assert OWN not in pins


def test_every_line_of_the_locks_has_hashes() -> None:
    for lock in (ROOT / "requirements" / "dev.txt", ROOT / "requirements" / "image.txt"):
        text = lock.read_text(encoding="utf-8")
        blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
        for block in blocks:
            assert "--hash=sha256:" in block, f"{lock.name}: no hash for {block.splitlines()[0]}"


def test_the_image_lock_is_the_all_extra_at_the_dev_locks_versions() -> None:
    dev, image = _pins(ROOT / "requirements" / "dev.txt"), _pins(ROOT / "requirements" / "image.txt")
    assert {name: version for name, version in image.items() if dev.get(name) != version} == {}
    for name, req in _closure("all").items():
        assert name in image and all(req.specifier.contains(v, prereleases=True) for v in image[name]), name
    tools = {"pytest", "hypothesis", "ruff", "mypy", "schemathesis", "moto", "datarobot", "uv"}
    assert not tools & set(image), "the image lock holds test tools"


def test_the_locks_were_made_by_the_documented_script() -> None:
    script = (ROOT / "requirements" / "lock.sh").read_text(encoding="utf-8")
    for lock, extra in (("dev.txt", "dev"), ("image.txt", "all")):
        command = _lock_command(ROOT / "requirements" / lock)
        assert command[:4] == ["uv", "pip", "compile", "pyproject.toml"], command
        assert {"--universal", "--generate-hashes"} <= set(command)
        assert command[command.index("--extra") + 1] == extra and command[command.index("-o") + 1] == f"requirements/{lock}"
        assert command[command.index("--python-version") + 1] == "3.11" == PROJECT["requires-python"].removeprefix(">=")
    assert "--extra dev -o requirements/dev.txt" in script and "--extra all -c requirements/dev.txt" in script
