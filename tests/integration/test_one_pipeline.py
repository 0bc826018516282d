"""One pipeline: `plan -o json`, one watch run, `ci comment PATHS` and the operator's decision, over
the same manifests and the same live state (the served local service), build the same plan."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from gitops import test_github as fake_github
from typer.testing import CliRunner

from reconciler.api.client import Client
from reconciler.cli import app
from reconciler.engine import plan as plans
from reconciler.operator import act, decide, opening
from reconciler.operator.config import ApiSecret, OperatorConfig
from reconciler.service.testing import LocalServer
from reconciler.session import Options, Session
from reconciler.watch import observe

from .conftest import TOKEN
from .specs import manifest, write_specs

github = fake_github.github  # the fake GitHub server fixture of the ci comment tests
PR, REPO = fake_github.PR, fake_github.REPO


def _env(server: LocalServer, tmp_path: Path) -> dict[str, str]:
    return {"DATAROBOT_ENDPOINT": server.api_url, "DATAROBOT_API_TOKEN": TOKEN, "NO_COLOR": "1",
            "RECONCILER_LOCAL_DB_URL": f"sqlite:///{tmp_path}/unused.db"}


def _cli(env: dict[str, str], *args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == code, (args, result.stdout, result.stderr)
    return result


def _shape(actions: Any) -> list[tuple[str, str, str | None, str | None, tuple[Any, ...]]]:
    """What a plan decides for each definition: kind, name, live id, previous name, changes."""
    return sorted((a.kind.value, a.name, a.id, a.previous_name, tuple(a.changes)) for a in actions)


def test_every_entry_point_builds_the_same_plan(server: LocalServer, tmp_path: Path, github: fake_github.FakeGitHub) -> None:
    env = _env(server, tmp_path)
    docs = [manifest(f"demo-{i}") for i in range(5)]
    docs[4]["spec"]["previousNames"] = ["demo-old"]
    root = write_specs(tmp_path / "specs", [*docs[:3], manifest("demo-old"), manifest("demo-gone")])
    _cli(env, "apply", "-p", str(root), "--auto-approve")
    # the same live state, new manifests: demo-0 unchanged, demo-1 updated, demo-2 renamed
    # (previousNames), demo-3 created, demo-gone in scope without a manifest (an orphan)
    docs[1]["spec"]["batchPredictionJob"]["numConcurrent"] = 3
    docs = docs[:2] + docs[3:]
    write_specs(root, docs)

    # 1. the command line
    as_json = plans.from_dict(json.loads(_cli(env, "plan", str(root), "-o", "json").stdout))
    expected = _shape(as_json.actions)
    kinds = {kind for kind, *_ in expected}
    assert kinds == {"noop", "update", "create", "rename"}, expected
    assert as_json.orphans == ("demo-2", "demo-gone")
    markdown = _cli(env, "plan", str(root), "-o", "markdown").stdout

    # 2. watch: one run, as the loop makes it
    options = Options(paths=(root,), paths_given=True, environ={**os.environ, **env})
    observation, _session, watched = observe(lambda: Session.open(options))
    assert observation.valid and watched is not None
    assert _shape(watched.actions) == expected and watched.orphans == as_json.orphans

    # 3. `ci comment PATHS`: planned through the session and posted
    github_env = {k: "" for k in os.environ if k.startswith("GITHUB_")}
    github_env.update({"GITHUB_TOKEN": "ghs_test", "GITHUB_REPOSITORY": REPO, "GITHUB_API_URL": github.base})
    posted = _cli({**env, **github_env}, "ci", "comment", str(root), "--pr", str(PR), "--detailed-exitcode", code=2)
    assert "created the plan comment" in posted.stdout
    body = github.comments[-1]["body"]
    assert body.split("\n", 1)[1] == markdown

    # 4. the operator's decision, one resource per manifest, over the same live state, each made
    # ready by the session's steps as act.reconcile does (the session the operator opens)
    config = OperatorConfig(secret=ApiSecret("default", "api"))
    session = opening.open_session(config, opening.compile_rules(config), endpoint=server.api_url)

    async def decisions() -> list[plans.Action]:
        out = []
        async with Client(endpoint=server.api_url, token=TOKEN) as client:
            for doc in docs:
                resource = {**doc, "metadata": {**doc["metadata"], "namespace": "default"}}
                desired, _document, _warned = await act.prepare(session, client, decide.parse(resource))
                candidates, _raw = await act.find_candidates(client, desired, None)
                decision = decide.decide(desired, candidates, recorded_id=None, mode=decide.Mode.apply,
                                         drift_policy=None, window=session.window())
                out.append(decision.action)
        return out

    assert _shape(asyncio.run(decisions())) == expected
