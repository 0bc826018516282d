"""The example GitOps repository, its CI files and the pre-commit hook, checked as a user's tools would."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from reconciler.specs import environments as env
from reconciler.specs.config import load_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "gitops-repo"
RECONCILER = [sys.executable, "-c", "from reconciler.cli import main; main()"]


def _offline_prefix() -> list[str]:
    """`unshare -rn` (a network namespace with no interface) where the kernel allows it."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rn", "true"], capture_output=True, timeout=30).returncode == 0:
        return [unshare, "-rn"]
    return []


OFFLINE = _offline_prefix()


def _check_jsonschema(*args: str) -> subprocess.CompletedProcess[str]:
    """check-jsonschema with a builtin schema, offline: the schemas ship in the package. Run with no
    network at all where possible, and with every proxy pointing at a closed port in any case."""
    dead = "http://127.0.0.1:9"
    env = {**os.environ, "HTTP_PROXY": dead, "HTTPS_PROXY": dead, "http_proxy": dead, "https_proxy": dead,
           "NO_PROXY": "", "no_proxy": ""}
    return subprocess.run([*OFFLINE, sys.executable, "-m", "check_jsonschema", *args], capture_output=True,
                          text=True, timeout=60, env=env)


def test_offline_really_has_no_network() -> None:
    """The guard above is real: a download fails under the same conditions."""
    probe = "import urllib.request; urllib.request.urlopen('https://pypi.org/simple/', timeout=5)"
    dead = "http://127.0.0.1:9"
    done = subprocess.run([*OFFLINE, sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "HTTPS_PROXY": dead, "https_proxy": dead})
    assert done.returncode != 0


def test_github_workflows_match_the_schema() -> None:
    files = sorted(str(p) for p in (EXAMPLE / ".github" / "workflows").glob("*.yml"))
    assert len(files) == 3
    result = _check_jsonschema("--builtin-schema", "vendor.github-workflows", *files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_gitlab_ci_matches_the_schema() -> None:
    result = _check_jsonschema("--builtin-schema", "vendor.gitlab-ci", str(EXAMPLE / ".gitlab-ci.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  a:\n    runs_on: ubuntu-latest\n    steps: [{run: echo}]\n")
    assert _check_jsonschema("--builtin-schema", "vendor.github-workflows", str(broken)).returncode == 1


def test_workflows_keep_the_ci_contract() -> None:
    flows = {p.stem: yaml.safe_load(p.read_text()) for p in (EXAMPLE / ".github" / "workflows").glob("*.yml")}
    apply = flows["apply"]
    assert apply["concurrency"] == {"group": "reconciler-apply", "cancel-in-progress": False}
    assert apply[True]["push"]["branches"] == ["main"]  # YAML 1.1 reads the key `on` as true
    runs = "\n".join(step.get("run", "") for job in apply["jobs"].values() for step in job["steps"])
    assert "--target dev --auto-approve" in runs and "--target prod --auto-approve" in runs
    plan_runs = "\n".join(s.get("run", "") for j in flows["plan"]["jobs"].values() for s in j["steps"])
    assert "--output markdown" in plan_runs and "reconciler ci comment" in plan_runs
    drift_runs = "\n".join(s.get("run", "") for j in flows["drift"]["jobs"].values() for s in j["steps"])
    assert "--detailed-exitcode" in drift_runs and '"$code" -eq 2' in drift_runs
    assert "schedule" in flows["drift"][True]


def test_drift_step_fails_exactly_on_exit_2(tmp_path: Path) -> None:
    """The drift step's shell, run with a stand-in `reconciler` that exits with each code."""
    flow = yaml.safe_load((EXAMPLE / ".github" / "workflows" / "drift.yml").read_text())
    script = next(s["run"] for s in flow["jobs"]["drift"]["steps"] if "detailed-exitcode" in s.get("run", ""))
    script = script.replace("${{ matrix.target }}", "prod")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "reconciler"
    fake.write_text("#!/bin/sh\nexit \"$PLAN_EXIT\"\n")
    fake.chmod(0o755)
    for plan_exit, step_exit in ((0, 0), (2, 1), (1, 1), (3, 3)):
        done = subprocess.run(["bash", "-e", "-c", script], capture_output=True, text=True, timeout=30,
                              env={"PATH": f"{bin_dir}:/usr/bin:/bin", "PLAN_EXIT": str(plan_exit)})
        assert done.returncode == step_exit, (plan_exit, done.stdout, done.stderr)
        assert ("::error::drift on prod" in done.stdout) == (plan_exit == 2)


def test_plan_comment_step_edits_the_comment_even_when_the_plan_failed(tmp_path: Path) -> None:
    """The PR workflow's comment step, run with a stand-in `reconciler` that records what it is given."""
    flow = yaml.safe_load((EXAMPLE / ".github" / "workflows" / "plan.yml").read_text())
    step = next(s for s in flow["jobs"]["plan"]["steps"] if "reconciler ci comment" in s.get("run", ""))
    assert step["if"] == "always() && steps.plan.outcome != 'skipped'"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "reconciler"
    fake.write_text('#!/bin/sh\necho "$@" > args.txt\ncat plan.md > posted.md\n')
    fake.chmod(0o755)
    cases = (("success", "### reconciler plan\nPlan: 1 to create\n", "Plan: 1 to create", False),
             ("failure", "", "### reconciler plan (prod)", True),
             ("failure", "> :x: the plan deletes 3 of 4\n", "the plan deletes 3 of 4", True))
    for outcome, printed, expected, failed_note in cases:
        work = tmp_path / outcome / str(len(printed))
        work.mkdir(parents=True)
        (work / "plan.md").write_text(printed)
        env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "PLAN_OUTCOME": outcome, "TARGET": "prod", "PR": "42",
               "RUN_URL": "https://github.test/acme/specs/actions/runs/1"}
        done = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=work, env=env, capture_output=True, text=True,
                              timeout=30)
        assert done.returncode == 0, done.stderr
        assert (work / "args.txt").read_text().split() == ["ci", "comment", "--pr", "42", "--target", "prod",
                                                           "--file", "plan.md"]
        posted = (work / "posted.md").read_text()
        assert expected in posted
        assert ("The plan failed on this push" in posted) is failed_note
        assert ("actions/runs/1" in posted) is failed_note


def test_gitlab_plan_job_fails_when_the_plan_fails() -> None:
    job = yaml.safe_load((EXAMPLE / ".gitlab-ci.yml").read_text())["plan"]
    assert not any("| tee" in line and "reconciler plan" in line for line in job["script"])  # no pipe hides the exit


def test_gitlab_plan_job_posts_the_note_even_when_the_plan_failed(tmp_path: Path) -> None:
    """The merge request's plan job, run as GitLab runs a script (sh -e), with a stand-in `reconciler`
    that records what it is given: the note is posted every time, and the job keeps plan's exit code."""
    job = yaml.safe_load((EXAMPLE / ".gitlab-ci.yml").read_text())["plan"]
    script = "\n".join(job["script"])
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "reconciler"
    fake.write_text('#!/bin/sh\nif [ "$1" = plan ]; then printf "$PRINTED"; exit "$PLAN_EXIT"; fi\n'
                    'echo "$@" > args.txt\ncat plan-prod.md > posted.md\n')
    fake.chmod(0o755)
    for plan_exit, printed, failed_note in ((0, "### reconciler plan\nPlan: 1 to create\n", False), (1, "", True),
                                            (3, "> the plan deletes 3 of 4\n", True)):
        work = tmp_path / str(plan_exit)
        work.mkdir()
        env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "PLAN_EXIT": str(plan_exit), "PRINTED": printed, "TARGET": "prod",
               "CI_JOB_URL": "https://gitlab.test/acme/specs/-/jobs/7"}
        done = subprocess.run(["sh", "-e", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=30)
        assert done.returncode == plan_exit, done.stderr
        assert (work / "args.txt").read_text().split() == ["ci", "comment", "--target", "prod", "--file",
                                                           "plan-prod.md"]
        posted = (work / "posted.md").read_text()
        assert (printed or "### reconciler plan (prod)") in posted
        assert ("The plan failed on this push" in posted and "/-/jobs/7" in posted) is failed_note


def test_example_config_and_manifests_are_valid_per_target() -> None:
    config = load_config(EXAMPLE / "reconciler.yaml")
    assert sorted(config.targets) == ["dev", "local", "prod"]
    assert config.targets["local"].endpoint is None and config.targets["local"].token_from is None  # embedded
    assert {d["id"] for d in config.local_seed["deployments"]} == {config.targets["local"].variables["DEPLOYMENT_ID"]}
    seen = {}
    for name in ("dev", "prod", "local"):
        target = env.resolve_target(config.targets, name)
        report = env.validate_for_target([EXAMPLE / "specs"], target, overlays_root=EXAMPLE)
        assert report.ok and not report.issues, [i.format() for i in report.issues]
        seen[name] = {d.data["metadata"]["name"]: d.data for d in report.documents}
    churn_dev, churn_prod = seen["dev"]["acme-churn-nightly"], seen["prod"]["acme-churn-nightly"]
    assert churn_dev["spec"]["enabled"] is False and churn_prod["spec"]["enabled"] is True
    assert churn_dev["spec"]["batchPredictionJob"]["numConcurrent"] == 1
    assert churn_prod["spec"]["batchPredictionJob"]["numConcurrent"] == 16  # the prod overlay
    assert churn_prod["spec"]["schedule"] == {"cron": "0 1 * * *"}
    assert seen["prod"]["acme-fraud-hourly"]["spec"]["batchPredictionJob"]["numConcurrent"] == 8
    assert "${" not in repr(seen)


def test_no_token_in_the_example() -> None:
    text = "\n".join(p.read_text() for p in EXAMPLE.rglob("*") if p.is_file())
    assert not re.search(r"(?i)\btoken:\s*\S", text.replace("GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}", ""))


# --- pre-commit -----------------------------------------------------------------------------

HOOKS = ROOT / ".pre-commit-hooks.yaml"


def test_hook_manifest_is_valid_for_pre_commit() -> None:
    done = subprocess.run([sys.executable, "-m", "pre_commit", "validate-manifest", str(HOOKS)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          timeout=30).stdout


def _run_hook_like_pre_commit(repo: Path, args: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """Select the staged files with the hook's `files`/`exclude`, then run its entry with them appended,
    as pre-commit does (its own run would first pip-install reconciler into a fresh venv, which needs
    the package index; this runs the installed command instead)."""
    hook = next(h for h in yaml.safe_load(HOOKS.read_text()) if h["id"] == "reconciler-validate")
    files_re, exclude_re = re.compile(hook["files"]), re.compile(hook["exclude"])
    staged = _git(repo, "diff", "--cached", "--name-only").split()
    chosen = [f for f in staged if files_re.search(f) and not exclude_re.search(f)]
    entry = shlex.split(hook["entry"])
    assert entry[0] == "reconciler" and shutil.which("reconciler") is not None
    return subprocess.run([*RECONCILER, *entry[1:], *args, *chosen], cwd=repo, capture_output=True, text=True,
                          timeout=60)


def test_hook_entry_on_a_real_git_repo(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "specs").mkdir(parents=True)
    for name in ("churn-nightly.yaml", "fraud-hourly.yaml", "reconciler.yaml"):
        shutil.copy(ROOT / "specs" / name, repo / "specs" / name)
    shutil.copytree(EXAMPLE / ".github", repo / ".github")  # YAML that is not a manifest
    shutil.copytree(EXAMPLE / "overlays", repo / "overlays")  # partial manifests
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    ok = _run_hook_like_pre_commit(repo)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK: 2 manifest(s) in 2 file(s)" in ok.stdout  # the config, workflows and overlays are not passed

    bad = repo / "specs" / "churn-nightly.yaml"
    bad.write_text(bad.read_text().replace("numConcurrent: 4", "num_concurrent: 4"))
    _git(repo, "add", "-A")
    invalid = _run_hook_like_pre_commit(repo)
    assert invalid.returncode == 3
    assert "specs/churn-nightly.yaml:" in invalid.stdout and "did you mean `numConcurrent`" in invalid.stdout


@pytest.fixture(autouse=True)
def _example_exists() -> None:
    assert EXAMPLE.is_dir()


def test_hook_with_a_target_on_the_example_repository(tmp_path: Path) -> None:
    """The example's manifests have placeholders: the hook needs `args: [--target, NAME]` (docs/editors.md)."""
    repo = tmp_path / "gitops-repo"
    shutil.copytree(EXAMPLE, repo)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    without = _run_hook_like_pre_commit(repo)
    assert without.returncode == 3 and "choose one with --target NAME (known: dev, local, prod)" in without.stdout
    for target in ("dev", "prod", "local"):
        done = _run_hook_like_pre_commit(repo, ("--target", target))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "OK: 2 manifest(s) in 2 file(s)" in done.stdout
    churn = repo / "specs" / "churn-nightly.yaml"
    churn.write_text(churn.read_text().replace("${BUCKET}", "${BUCKT}"))
    _git(repo, "add", "-A")
    typo = _run_hook_like_pre_commit(repo, ("--target", "prod"))
    assert typo.returncode == 3 and "specs/churn-nightly.yaml:17:12" in typo.stdout and "BUCKET" in typo.stdout
