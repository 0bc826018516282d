"""Every install instruction, workflow and pipeline installs reconciler under its own distribution
name. ``reconciler`` on the package index is an unrelated project: a team copying an example that
installs it would run someone else's code in CI with its DataRobot token in the environment."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from reconciler.extras import DISTRIBUTION

ROOT = Path(__file__).resolve().parents[2]
TAKEN = "reconciler"  # on the index, not ours

# pip install / pipx install / uv pip install / uv tool install / uv add / pip download, up to the
# end of the shell command
INSTALL = re.compile(r"\b(?:pip3?|pipx|uv\s+pip|uv\s+tool|uv)\s+(?:install|download|add|run\s+--with)\s+([^\n;&|`)]*)")
# an environment variable that names the package to install (RECONCILER_PACKAGE: reconciler)
PACKAGE_VAR = re.compile(r"(?im)^\s*-?\s*([A-Z_]*PACKAGE[A-Z_]*)\s*[:=]\s*['\"]?([^'\"\s#]+)")
# a pin written in prose ("pin it, e.g. reconciler==0.1.0")
PROSE_PIN = re.compile(r"(?<![\w.-])reconciler\s*(?:\[[^\]]*\])?\s*(?:==|>=|~=|<=|!=)\s*\d")
# options whose value is the next word
VALUED = {"-r", "--requirement", "-c", "--constraint", "-e", "--editable", "-i", "--index-url",
          "--extra-index-url", "-f", "--find-links", "--python", "-p", "--target", "-t", "--prefix", "--root",
          "-d", "--dest", "--only-binary", "--no-binary", "--platform", "--python-version", "--with"}


def documents() -> list[Path]:
    """The files a user copies install lines from."""
    found = [ROOT / "README.md", ROOT / ".pre-commit-hooks.yaml", ROOT / "Dockerfile", ROOT / "docker" / "install.sh"]
    found += sorted((ROOT / "docs").rglob("*.md"))
    found += sorted(p for p in (ROOT / "examples").rglob("*") if p.is_file() and p.suffix in (".md", ".yml", ".yaml"))
    found += [*sorted((ROOT / "charts").rglob("*.md")), ROOT / "charts" / "reconciler" / "values.yaml"]
    found += sorted((ROOT / ".github").rglob("*.yml"))
    return [p for p in found if p.is_file()]


def installed_names(text: str) -> list[str]:
    """Distribution names that the install commands and package variables in ``text`` fetch from an
    index (paths, files and options are not names)."""
    names: list[str] = []
    for match in INSTALL.finditer(text):
        try:
            words = shlex.split(match.group(1), comments=True)
        except ValueError:
            words = match.group(1).split()
        skip = False
        for word in words:
            if skip:
                skip = False
                continue
            if word.startswith("-"):
                skip = word in VALUED
                continue
            if word.startswith(("$", ".", "/", "~")) or "/" in word or word.endswith((".whl", ".txt", ".tar.gz")):
                continue
            try:
                names.append(canonicalize_name(Requirement(word).name))
            except InvalidRequirement:
                continue
    for _var, value in PACKAGE_VAR.findall(text):
        try:
            names.append(canonicalize_name(Requirement(value).name))
        except InvalidRequirement:
            continue
    names += [TAKEN] * len(PROSE_PIN.findall(text))
    return names


@pytest.mark.parametrize("text", [
    "pip install reconciler", "pip install 'reconciler[models]'", "pip install -U reconciler==0.1.0",
    "  - pip install reconciler && reconciler plan", "uv pip install reconciler", "pipx install reconciler",
    "env:\n  RECONCILER_PACKAGE: reconciler\n", "variables:\n  RECONCILER_PACKAGE: 'reconciler>=0.1'\n",
    "# pin it, e.g. reconciler==0.1.0", "pip install --quiet -r req.txt reconciler",
])
def test_the_check_finds_the_bare_name(text: str) -> None:
    assert TAKEN in installed_names(text)


@pytest.mark.parametrize("text", [
    f"pip install {DISTRIBUTION}", f"pip install '{DISTRIBUTION}[runner]'", "pip install -e '.[dev]'",
    "pip install --require-hashes -r requirements/dev.txt && pip install --no-deps -e .",
    f"env:\n  RECONCILER_PACKAGE: {DISTRIBUTION}==0.1.0\n", "reconciler plan specs", "pip install check-jsonschema",
    "helm install reconciler charts/reconciler -n ml-jobs", 'pip install "$RECONCILER_PACKAGE"',
])
def test_the_check_leaves_our_name_alone(text: str) -> None:
    assert TAKEN not in installed_names(text)


def test_no_document_installs_the_bare_name() -> None:
    offenders = {str(p.relative_to(ROOT)): names for p in documents()
                 if TAKEN in (names := installed_names(p.read_text(encoding="utf-8")))}
    assert offenders == {}, f"these install `{TAKEN}`, an unrelated project on the index: use {DISTRIBUTION}"


def test_the_example_pipelines_install_our_distribution() -> None:
    example = ROOT / "examples" / "gitops-repo"
    flows = [*sorted((example / ".github" / "workflows").glob("*.yml")), example / ".gitlab-ci.yml"]
    for flow in flows:
        text = flow.read_text(encoding="utf-8")
        assert installed_names(text) == [DISTRIBUTION], flow  # the package variable, and nothing else
        data = yaml.safe_load(text)
        variables = data.get("env") or data.get("variables")
        assert variables["RECONCILER_PACKAGE"] == DISTRIBUTION, flow
        assert 'pip install "$RECONCILER_PACKAGE"' in text, flow


def test_the_documents_that_install_reconciler_name_it() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"pip install {DISTRIBUTION}" in readme
    assert DISTRIBUTION in installed_names((ROOT / "examples" / "gitops-repo" / "README.md").read_text())
    assert f"pip install '{DISTRIBUTION}[operator]'" in (ROOT / "charts" / "reconciler" / "README.md").read_text()
