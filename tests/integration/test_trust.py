"""The command line never lies about what it did (issue 11): the attacks that found the holes, end
to end against the served or embedded local service.

* a failed action is a failure: exit 1, the summary counts it, nothing is pruned after it;
* a value the API cannot take (``.nan``) is refused by validation, before anything is written;
* a hand-edited saved plan is refused, so what apply shows is what it sends;
* a refused plan leaves no plan file behind, and exits 1 in every output mode;
* a path that does not exist is a usage error (exit 1), not "invalid manifests" (exit 3);
* a symlinked folder of manifests is read, and one that cannot be read stops the plan;
* a secret file outside the project is refused at validate and never read by apply;
* a live name holding a line break or U+202E is printed escaped, never as a fake line.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.service.store import Store
from reconciler.service.testing import LocalServer

from .conftest import TOKEN
from .faults import FaultProxy
from .specs import CREDENTIAL, DATASTORE, DEPLOYMENT, PROJECT, manifest, standard, write_specs

SECRET = "pred-SECRET-value-91"
FAKE = "No changes. Live definitions match the manifests."


def _env(server: LocalServer, tmp_path: Path, **extra: str | None) -> dict[str, str | None]:
    return {"DATAROBOT_ENDPOINT": server.api_url, "DATAROBOT_API_TOKEN": TOKEN, "PRED_API_KEY": SECRET,
            "NO_COLOR": "1", "RECONCILER_LOCAL_DB_URL": f"sqlite:///{tmp_path}/unused.db", **extra}


def _cli(env: dict[str, str | None], *args: str) -> Any:
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)  # type: ignore[arg-type]


def _live(server: LocalServer) -> dict[str, dict[str, Any]]:
    with httpx.Client(headers={"Authorization": f"Token {TOKEN}"}) as h:
        items = h.get(server.api_url + "batchPredictionJobDefinitions/", params={"limit": 1000}).json()["data"]
    return {item["name"]: item for item in items}


# -- section 3: apply never reports a success it did not have ---------------------------------------

EMBEDDED_PROJECT = f"""\
apiVersion: reconciler.io/v1alpha1
kind: Project
scope: {{namePrefix: n-}}
localService:
  seed:
    deployments: [{{id: {DEPLOYMENT}, label: dep}}]
    credentials: [{{id: {CREDENTIAL}, name: cred}}]
    dataStores: [{{id: {DATASTORE}, canonicalName: store}}]
"""


def test_the_nan_attack_is_refused_by_validate_and_nothing_is_deleted(tmp_path: Path) -> None:
    """The attack as reported: rename n-00001 to n-00002 whose manifest has `predictionThreshold:
    .nan`; apply --prune deleted n-00001, never created n-00002 and said `Apply complete` (exit 0)."""
    env: dict[str, str | None] = {"NO_COLOR": "1", "DATAROBOT_ENDPOINT": None, "DATAROBOT_API_TOKEN": None,
                                  "RECONCILER_LOCAL_DB_URL": f"sqlite:///{tmp_path}/local.db"}
    root = write_specs(tmp_path / "p", [manifest("n-00000"), manifest("n-00001")], project=EMBEDDED_PROJECT)
    assert _cli(env, "apply", str(root), "--auto-approve").exit_code == 0
    renamed = manifest("n-00002")
    renamed["spec"]["batchPredictionJob"]["predictionThreshold"] = float("nan")  # written as .nan
    write_specs(root, [manifest("n-00000"), renamed], project=EMBEDDED_PROJECT)
    assert "predictionThreshold: .nan" in (root / "n-00002.yaml").read_text()
    checked = _cli(env, "validate", str(root))
    assert checked.exit_code == 3
    assert ("n-00002.yaml:" in checked.stdout and "spec.batchPredictionJob.predictionThreshold: .nan is not a number "
            "the API can take: JSON has no NaN or infinity" in checked.stdout)
    applied = _cli(env, "apply", str(root), "--prune", "--auto-approve")
    assert applied.exit_code == 3 and "nothing was planned or applied" in applied.stderr
    listed = _cli(env, "list", "-o", "json")
    assert sorted(r["name"] for r in json.loads(listed.stdout)) == ["n-00000", "n-00001"]


def test_an_answer_no_error_class_covers_fails_its_action_and_stops_the_prune(server: LocalServer,
                                                                             tmp_path: Path) -> None:
    """A 200 whose body is not JSON (a proxy's error page) raised inside the action's task: the
    action was never recorded and the prune ran. Now: FAILED, counted, nothing deleted, exit 1."""
    env = _env(server, tmp_path)
    docs = standard()
    root = write_specs(tmp_path / "specs", docs)
    assert _cli(env, "apply", str(root), "--auto-approve").exit_code == 0
    docs[0]["spec"]["enabled"] = False  # an update
    write_specs(root, [*docs[:3], manifest("demo-new")])  # a create; demo-3 goes: a delete under --prune
    with FaultProxy(upstream=server.url) as proxy:
        proxy.add("POST", "batchPredictionJobDefinitions", 1, "garbage")
        proxy.add("PATCH", "batchPredictionJobDefinitions", 1, "garbage")
        result = _cli({**env, "DATAROBOT_ENDPOINT": proxy.url + "/api/v2/"}, "apply", str(root), "--prune",
                      "--auto-approve")
        sent = list(proxy.requests)
    out = result.stdout
    assert result.exit_code == 1, out + result.stderr
    assert "demo-new: create FAILED: unexpected JSONDecodeError: " in out
    assert "demo-0: update FAILED: unexpected JSONDecodeError: " in out
    assert "demo-3: delete not attempted (an earlier action failed, so nothing is pruned)" in out
    assert out.rstrip().endswith("Apply failed: 0 created, 0 updated, 0 deleted; 2 failed, 1 not attempted.")
    assert "Task exception was never retrieved" not in result.stderr
    assert not [r for r in sent if r[0] == "DELETE"] and "demo-3" in _live(server)


# -- section 6: plans, saved plans and exit codes never mislead -----------------------------------

def _edit(path: Path, change: Any) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))


def test_a_saved_plan_edited_by_hand_is_refused_and_nothing_is_sent(server: LocalServer, tmp_path: Path) -> None:
    env = _env(server, tmp_path)
    docs = standard()
    root = write_specs(tmp_path / "specs", docs)
    assert _cli(env, "apply", str(root), "--auto-approve").exit_code == 0
    docs[3]["spec"]["batchPredictionJob"]["predictionThreshold"] = 0.45
    write_specs(root, docs)
    planned = _cli(env, "plan", str(root), "-o", "json", "--out", str(tmp_path / "plan.json"))
    assert planned.exit_code == 0, planned.stderr
    original = (tmp_path / "plan.json").read_text()
    assert json.loads(planned.stdout)["digest"] == json.loads(original)["digest"]
    before = _live(server)["demo-3"]["batchPredictionJob"]

    edits = {
        "actions[0].body.numConcurrent": lambda d: d["actions"][0]["body"].update(numConcurrent=77),
        "actions[0].changes": lambda d: d["actions"][0]["changes"][0].update(new=0.99),
        "actions[0].id": lambda d: d["actions"][0].update(id="0" * 24),
        "options.prune": lambda d: d["options"].update(prune=True),
        "scope": lambda d: d["scope"].update(name_prefix=""),
        "target": lambda d: d["target"].update(endpoint="https://elsewhere.example.com/api/v2/"),
        "fingerprint": lambda d: d["fingerprint"].update(digest="0" * 64),
        "summary": lambda d: d["summary"].update(text="No changes."),
        "digest": lambda d: d.update(digest="sha256:" + "0" * 64),
        "no digest": lambda d: d.pop("digest"),
    }
    for what, change in edits.items():
        (tmp_path / "edited.json").write_text(original)
        _edit(tmp_path / "edited.json", change)
        refused = _cli(env, "apply", str(tmp_path / "edited.json"))
        assert refused.exit_code == 1, (what, refused.stdout)
        assert refused.stdout == "", what  # not even shown: it would not be what is sent
        expected = "the plan has no digest" if what == "no digest" else "the plan was changed after `reconciler plan` wrote it"
        assert expected in refused.stderr and "nothing was applied" in refused.stderr, (what, refused.stderr)
    assert _live(server)["demo-3"]["batchPredictionJob"] == before  # nothing was sent
    applied = _cli(env, "apply", str(tmp_path / "plan.json"))
    assert applied.exit_code == 0, applied.stderr
    assert "batchPredictionJob.predictionThreshold" in applied.stdout and "numConcurrent" not in applied.stdout
    assert "Apply complete: 0 created, 1 updated" in applied.stdout
    after = _live(server)["demo-3"]["batchPredictionJob"]
    assert after["predictionThreshold"] == 0.45 and after["numConcurrent"] == before["numConcurrent"]


def test_a_refused_plan_writes_no_plan_file_and_exits_1_in_every_mode(server: LocalServer, tmp_path: Path) -> None:
    env = _env(server, tmp_path)
    docs = standard()
    root = write_specs(tmp_path / "specs", docs)
    out = tmp_path / "plan.json"
    assert _cli(env, "apply", str(root), "--auto-approve").exit_code == 0
    assert _cli(env, "plan", str(root), "--out", str(out)).exit_code == 0 and out.exists()  # an earlier run's plan
    write_specs(root, docs[:1])  # 3 of 4 deleted: over maxDeleteFraction 0.5
    modes = {"--out": ["--out", str(out)], "plain": [], "--detailed-exitcode": ["--detailed-exitcode"],
             "-o json": ["-o", "json"], "-o json --out": ["-o", "json", "--out", str(out)],
             "-o markdown --out": ["-o", "markdown", "--out", str(out)]}
    for mode, extra in modes.items():
        result = _cli(env, "plan", str(root), "--prune", *extra)
        assert result.exit_code == 1, (mode, result.stdout, result.stderr)
        assert "more than maxDeleteFraction 50%" in result.stdout, mode
        assert not out.exists(), mode  # the earlier plan is gone too: nothing a pipeline could apply
        if "--out" in extra:
            assert f"No plan was saved to {out}" in result.stderr, mode
        if mode == "--out":
            assert "Removed the plan an earlier run saved" in result.stderr
        if mode.startswith("-o json"):
            assert json.loads(result.stdout)["applyable"] is False
    notes = tmp_path / "notes.txt"
    notes.write_text("not a plan\n")
    assert _cli(env, "plan", str(root), "--prune", "--out", str(notes)).exit_code == 1
    assert notes.read_text() == "not a plan\n"  # only a saved plan is ever removed
    assert _cli(env, "apply", str(root), "--prune", "--auto-approve").exit_code == 1
    assert len(_live(server)) == 4


def test_a_path_that_does_not_exist_is_a_usage_error_in_every_command(server: LocalServer, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(server, tmp_path)
    missing = str(tmp_path / "nonexistent")
    for args in (["validate", missing], ["validate", missing, "-o", "json"], ["plan", missing],
                 ["plan", missing, "--detailed-exitcode"], ["apply", missing, "--auto-approve"],
                 ["apply", "-p", missing], ["diff", "-p", missing]):
        result = _cli(env, *args)
        assert result.exit_code == 1, (args, result.exit_code)  # 3 would say "invalid manifests"
        assert f"no such file or directory: {missing}" in result.stderr, args
    monkeypatch.chdir(tmp_path)  # no specs/ here: the default path is missing
    for args in (["validate"], ["plan"], ["apply", "--auto-approve"], ["diff"]):
        result = _cli(env, *args)
        assert result.exit_code == 1 and "the default when no path is given" in result.stderr, args


def test_the_same_name_twice_is_reported_with_the_documents_other_errors(tmp_path: Path) -> None:
    docs = [manifest("demo-a"), manifest("demo-b")]
    docs[1]["spec"]["name"] = "demo-a"
    docs[0]["spec"]["batchPredictionJob"]["num_concurrent"] = 2
    docs[1]["spec"]["enabled"] = "maybe"
    root = write_specs(tmp_path / "specs", docs)
    result = _cli({"NO_COLOR": "1"}, "validate", str(root))
    assert result.exit_code == 3
    assert "unknown field 'num_concurrent'" in result.stdout and "expected true or false, got 'maybe'" in result.stdout
    assert "definition name 'demo-a' is also declared at " in result.stdout
    assert "3 error(s)" in result.stdout


# -- section 4: what is read -------------------------------------------------------------------------

def _unprivileged() -> list[str]:
    """A prefix that runs a command without root's power to read any file, so that a directory
    with mode 000 is unreadable as it is for everyone else."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot make a directory unreadable")
    return [setpriv, "--bounding-set=-all", "--inh-caps=-all"]


def test_a_symlinked_folder_is_followed_and_one_that_cannot_be_read_stops_the_prune(server: LocalServer,
                                                                                   tmp_path: Path) -> None:
    """A symlinked folder was skipped while symlinked files were followed: `plan --prune` then
    deleted every definition whose manifest lived there."""
    env = _env(server, tmp_path)
    root = write_specs(tmp_path / "specs", [manifest("demo-a")])
    team = write_specs(tmp_path / "elsewhere" / "team-b", [manifest("demo-b"), manifest("demo-c")], project=None)
    (root / "team-b").symlink_to(team, target_is_directory=True)
    (root / "loop").symlink_to(root, target_is_directory=True)  # a link back up the tree ends
    applied = _cli(env, "apply", str(root), "--auto-approve")
    assert applied.exit_code == 0 and "Apply complete: 3 created" in applied.stdout, applied.stdout
    assert _cli(env, "plan", str(root), "--prune", "--detailed-exitcode").exit_code == 0  # nothing to delete
    out = tmp_path / "plan.json"

    moved = tmp_path / "moved"
    team.rename(moved)  # the link now points nowhere
    for args in (["plan", str(root), "--prune", "--out", str(out)], ["apply", str(root), "--prune", "--auto-approve"]):
        result = _cli(env, *args)
        assert result.exit_code == 3, (args, result.stdout)
        assert f"{root / 'team-b'}:1:1: broken symbolic link (to {team})" in result.stderr
        assert "nothing was planned or applied" in result.stderr and not out.exists()
    moved.rename(team)

    team.chmod(0)
    try:
        proc = subprocess.run([*_unprivileged(), sys.executable, "-m", "reconciler", "plan", str(root), "--prune",
                               "--out", str(out)], capture_output=True, text=True, timeout=120,
                              env={**os.environ, **{k: v for k, v in env.items() if v is not None}})
    finally:
        team.chmod(0o755)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "team-b:1:1: cannot read the directory: Permission denied" in proc.stderr and not out.exists()
    assert sorted(_live(server)) == ["demo-a", "demo-b", "demo-c"]


SECRET_MANIFEST = """\
apiVersion: reconciler.io/v1alpha1
kind: BatchPredictionJobDefinition
metadata:
  name: demo-secret
spec:
  enabled: false
  batchPredictionJob:
    deploymentId: {deployment}
    intakeSettings: {{type: s3, url: "s3://bucket/in.csv", credentialId: {credential}}}
    outputSettings: {{type: s3, url: "s3://bucket/out.csv", credentialId: {credential}}}
    predictionInstance:
      hostName: collector.example.com
      apiKeyFrom: {{file: {file}}}
"""


def _secret_specs(tmp_path: Path, file: str, project: str = PROJECT) -> Path:
    root = tmp_path / "specs"
    root.mkdir(parents=True, exist_ok=True)
    (root / "reconciler.yaml").write_text(project)
    (root / "demo-secret.yaml").write_text(SECRET_MANIFEST.format(deployment=DEPLOYMENT, credential=CREDENTIAL,
                                                                  file=file))
    return root


@pytest.mark.parametrize("file, why", [
    ("../../../../../../../../etc/passwd", "it resolves to /etc/passwd, outside "),
    ("/etc/passwd", "it resolves to /etc/passwd, outside "),
    ("keys/link", "(through a symbolic link), outside "),
])
def test_a_secret_file_outside_the_project_is_refused_and_never_sent(server: LocalServer, tmp_path: Path,
                                                                    file: str, why: str) -> None:
    """`apiKeyFrom: {file: ../../etc/passwd}` validated, and apply sent the file to the manifest's
    hostName as the prediction server's key: in a pull request, any file the CI runner can read."""
    env = _env(server, tmp_path)
    root = _secret_specs(tmp_path, file)
    (root / "keys").mkdir()
    (root / "keys" / "link").symlink_to("/etc/passwd")
    checked = _cli(env, "validate", str(root))
    assert checked.exit_code == 3
    line = next(line for line in checked.stdout.splitlines() if "apiKeyFrom.file" in line)
    assert line.startswith(f"{root / 'demo-secret.yaml'}:13:26: spec.batchPredictionJob.predictionInstance."
                           f"apiKeyFrom.file: secret file {file!r} is outside the project: ")
    assert why + str(root.resolve()) in line
    assert "secrets: {allowedDirs: [DIR]}" in checked.stdout
    applied = _cli(env, "apply", str(root), "--auto-approve")
    assert applied.exit_code == 3 and _live(server) == {}


def test_secret_files_inside_the_project_or_an_allowed_directory_are_read(server: LocalServer, tmp_path: Path) -> None:
    env = _env(server, tmp_path)
    outside = tmp_path / "mounted"
    outside.mkdir()
    (outside / "key").write_text(SECRET + "\n")
    root = _secret_specs(tmp_path, "../mounted/key")
    assert _cli(env, "validate", str(root)).exit_code == 3
    root = _secret_specs(tmp_path, "../mounted/key", project=PROJECT + "secrets:\n  allowedDirs: [../mounted]\n")
    assert _cli(env, "validate", str(root)).exit_code == 0
    planned = _cli(env, "plan", str(root), "--out", str(tmp_path / "plan.json"))
    assert planned.exit_code == 0
    saved = json.loads((tmp_path / "plan.json").read_text())
    assert saved["actions"][0]["secret_roots"] == [str(root.resolve()), str(outside.resolve())]
    assert SECRET not in (tmp_path / "plan.json").read_text()
    applied = _cli(env, "apply", str(tmp_path / "plan.json"))
    assert applied.exit_code == 0, applied.stdout + applied.stderr
    (root / "keys").mkdir()
    (root / "keys" / "key").write_text(SECRET)
    inside = _secret_specs(tmp_path, "keys/key")
    assert _cli(env, "apply", str(inside), "--auto-approve").exit_code == 0


# -- names with control characters ---------------------------------------------------------------

def test_names_with_line_breaks_or_bidi_controls_are_printed_escaped(server: LocalServer, tmp_path: Path) -> None:
    env = _env(server, tmp_path)
    docs = [manifest("demo-a"), manifest("demo-b"), manifest("demo-evil"), manifest("other-rlo")]
    root = write_specs(tmp_path / "specs", docs)
    assert _cli(env, "apply", str(root), "--auto-approve").exit_code == 0
    evil = f"demo-zz\n{FAKE}\n"
    rlo = "other-\u202egnp.exe"
    live = _live(server)
    store = Store(server.db_url)  # straight into the store: the API would refuse these names
    try:
        store.update_definition(live["demo-evil"]["id"], lambda r: dataclasses.replace(r, name=evil))
        store.update_definition(live["other-rlo"]["id"], lambda r: dataclasses.replace(r, name=rlo))
        store.update_definition(live["demo-a"]["id"], lambda r: dataclasses.replace(
            r, job={**r.job, "passthroughColumns": ["id", "x\u202ey\nz"]}))
    finally:
        store.close()
    write_specs(root, docs[:2])
    outputs = {
        "list": _cli(env, "list"),
        "plan": _cli(env, "plan", str(root)),
        "plan --prune": _cli(env, "plan", str(root), "--prune"),
        "plan -o markdown": _cli(env, "plan", str(root), "-o", "markdown"),
        "diff": _cli(env, "diff", "-p", str(root)),
        "apply": _cli(env, "apply", str(root), "--prune", "--auto-approve"),
    }
    for what, result in outputs.items():
        text = result.stdout + result.stderr
        assert result.exit_code == 0, (what, text)
        assert "\u202e" not in text, what
        assert not any(line.strip() == FAKE for line in text.splitlines()), (what, text)
    assert "demo-zz\\nNo changes. Live definitions match the manifests.\\n" in outputs["list"].stdout
    assert "other-\\u202egnp.exe" in outputs["list"].stdout
    assert "In scope without a manifest (pass --prune to delete) (1): demo-zz\\nNo changes." in outputs["plan"].stdout
    assert "- delete demo-zz\\nNo changes. Live definitions match the manifests.\\n [id " in outputs["plan --prune"].stdout
    assert '"x\\u202ey\\nz"' in outputs["diff"].stdout
    assert "demo-zz\\nNo changes. Live definitions match the manifests.\\n: deleted [id " in outputs["apply"].stdout
    assert outputs["apply"].stdout.rstrip().endswith("Apply complete: 0 created, 1 updated, 1 deleted.")
    # error messages too: a saved plan gone stale names the live definition that changed
    assert _cli(env, "plan", str(root), "--out", str(tmp_path / "p.json")).exit_code == 0
    store = Store(server.db_url)
    try:
        store.update_definition(_live(server)["demo-b"]["id"], lambda r: dataclasses.replace(r, name=f"demo-b\n{FAKE}"))
    finally:
        store.close()
    stale = _cli(env, "apply", str(tmp_path / "p.json"))
    assert stale.exit_code == 1 and f"demo-b\\n{FAKE} [id " in stale.stderr
    assert not any(line.strip() == FAKE for line in stale.stderr.splitlines())
