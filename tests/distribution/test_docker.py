"""The container image the Helm chart runs: what can be checked without a container daemon.

The Dockerfile's install step is ``docker/install.sh``, run here for real into a temporary prefix;
the Dockerfile itself is parsed (that script, a non-root user matching the chart, the entrypoint
the chart's Deployments pass arguments to); the release workflow that builds and publishes the
image is checked against check-jsonschema's GitHub workflow schema, its version step is run, and
the image it publishes is the chart's default.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.__about__ import __version__
from reconciler.extras import EXTRAS

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "reconciler"
RELEASE = ROOT / ".github" / "workflows" / "release.yml"
PREFIX = "/opt/reconciler"


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        keyword, _, rest = (pending + line).strip().partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    return instructions


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for keyword, rest in dockerfile():
        if keyword == "FROM":
            found.append([])
        found[-1].append((keyword, rest))
    return found


def _values() -> dict[str, Any]:
    data = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_the_build_stage_installs_with_the_script() -> None:
    build = stages()[0]
    runs = [rest for keyword, rest in build if keyword == "RUN"]
    assert runs == [f"sh docker/install.sh {PREFIX}"], "the image's only install step is docker/install.sh"
    copied = [rest.split()[0] for keyword, rest in build if keyword == "COPY" and not rest.startswith("--from=")]
    assert {"docker/install.sh", "requirements/image.txt", "reconciler", "schemas", "pyproject.toml"} <= set(copied)
    uv = [rest for keyword, rest in build if keyword == "COPY" and rest.startswith("--from=")]
    locked = re.search(r"^uv==(\S+)", (ROOT / "requirements" / "dev.txt").read_text(encoding="utf-8"), re.M)
    assert locked and uv == [f"--from=ghcr.io/astral-sh/uv:{locked.group(1)} /uv /usr/local/bin/uv"], uv
    ignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert ignore[0] == "*", "the build context holds only what the image needs"
    for source in copied:
        assert (ROOT / source).exists(), source
        assert f"!{source}" in ignore or f"!{source}/" in ignore, f".dockerignore leaves out {source}"


def test_the_final_stage_runs_reconciler_as_the_charts_non_root_user() -> None:
    final = stages()[-1]
    keywords = dict(final)
    assert keywords["COPY"] == f"--from=build {PREFIX} {PREFIX}"
    user = keywords["USER"].split(":")
    assert all(part.isdigit() and int(part) != 0 for part in user), "a numeric, non-root user"
    pod = _values()["podSecurityContext"]
    assert int(user[0]) == pod["runAsUser"] and int(user[1]) == pod["runAsGroup"] and pod["runAsNonRoot"] is True
    assert json.loads(keywords["ENTRYPOINT"]) == ["reconciler"]
    env = keywords["ENV"]
    assert f"PATH={PREFIX}/bin:$PATH" in env and "HOME=/tmp" in env  # the chart mounts an emptyDir on /tmp only


def test_the_charts_deployments_pass_arguments_to_that_entrypoint() -> None:
    """No `command:` overrides the entrypoint: `args` start with the subcommand."""
    for template, subcommand in (("deployment.yaml", "operator"), ("local-service.yaml", "serve")):
        text = (CHART / "templates" / template).read_text(encoding="utf-8")
        assert "command:" not in text, template
        args = text.split("args:", 1)[1].splitlines()[1].strip()
        assert args == f"- {subcommand}", (template, args)


def test_the_release_workflow_matches_the_github_schema() -> None:
    dead = "http://127.0.0.1:9"  # the schema ships in check-jsonschema: no network needed
    env = {**os.environ, "HTTP_PROXY": dead, "HTTPS_PROXY": dead, "http_proxy": dead, "https_proxy": dead}
    done = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                           str(RELEASE)], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stdout + done.stderr


def _release() -> dict[Any, Any]:
    data = yaml.safe_load(RELEASE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_the_release_publishes_the_charts_default_image() -> None:
    flow = _release()
    assert flow[True] == {"push": {"tags": ["v*"]}}  # YAML 1.1 reads the key `on` as true
    values = _values()["image"]
    assert flow["env"]["IMAGE"] == values["repository"] and values["tag"] == ""  # the tag is appVersion
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    assert chart["appVersion"] == __version__
    image = flow["jobs"]["image"]
    assert image["permissions"]["packages"] == "write"
    build = next(s for s in image["steps"] if str(s.get("uses", "")).startswith("docker/build-push-action"))
    assert build["with"]["push"] is True and build["with"]["context"] == "."
    assert build["with"]["tags"] == "${{ env.IMAGE }}:${{ needs.version.outputs.version }}"
    publish = flow["jobs"]["distribution"]
    assert publish["permissions"]["id-token"] == "write"  # trusted publishing of reconciler-gitops


@pytest.mark.parametrize(("tag", "ok"), [(f"v{__version__}", True), ("v9.9.9", False), (__version__, False)])
def test_the_release_refuses_a_tag_that_is_not_the_version(tmp_path: Path, tag: str, ok: bool) -> None:
    step = next(s for s in _release()["jobs"]["version"]["steps"] if s.get("id") == "version")
    output = tmp_path / "output"
    done = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=ROOT, capture_output=True, text=True, timeout=30,
                          env={"PATH": os.environ["PATH"], "GITHUB_REF_NAME": tag, "GITHUB_OUTPUT": str(output)})
    assert (done.returncode == 0) is ok, done.stdout + done.stderr
    if ok:
        assert output.read_text() == f"version={__version__}\n"
    else:
        assert "must agree" in done.stdout


def test_the_install_script_builds_a_working_prefix(tmp_path: Path) -> None:
    """docker/install.sh as the image build runs it: the locked [all] set with hashes, then
    reconciler; the prefix then runs the core commands and has every extra."""
    prefix = tmp_path / "opt" / "reconciler"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(["sh", str(ROOT / "docker" / "install.sh"), str(prefix)], capture_output=True, text=True,
                          timeout=900, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert not (prefix / "bin" / "pip").exists(), "nothing but the locked set: not even pip"
    assert done.stdout.strip().endswith(f"reconciler {__version__}")
    work = tmp_path / "work"
    shutil.copytree(ROOT / "specs", work / "specs")
    reconciler = str(prefix / "bin" / "reconciler")
    validated = subprocess.run([reconciler, "validate", "specs"], cwd=work, capture_output=True, text=True,
                               timeout=120, env=env)
    assert validated.returncode == 0 and "OK: 11 manifest(s)" in validated.stdout, validated.stdout + validated.stderr
    crd = subprocess.run([reconciler, "crd"], cwd=work, capture_output=True, text=True, timeout=120, env=env)
    assert crd.returncode == 0 and "kind: CustomResourceDefinition" in crd.stdout
    # every extra is there (found, not imported: importing them all takes half a minute; the
    # script's `uv pip check` has checked that their dependencies are consistent)
    modules = sorted({m for mods in EXTRAS.values() for m in mods})
    probe = f"import importlib.util as u, reconciler; print([m for m in {modules!r} if u.find_spec(m) is None]); " \
            "print(reconciler.__file__)"
    where = subprocess.run([str(prefix / "bin" / "python"), "-c", probe], cwd=work, capture_output=True, text=True,
                           timeout=120, env=env)
    assert where.returncode == 0, where.stderr
    missing, location = where.stdout.splitlines()
    assert missing == "[]", f"extras missing from the image's set: {missing}"
    assert location.startswith(str(prefix)), "reconciler must come from the prefix, not the checkout"
    schemas = list((prefix / "lib").glob("python3*/site-packages/reconciler/_schemas/manifest.schema.json"))
    assert schemas, "the wheel carries the schemas"
