"""Reading policies: inline rules and policy files, each located; what is wrong is refused at its place."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.engine import policy
from reconciler.errors import ConfigError
from reconciler.specs.config import load_config
from reconciler.specs.policies import PolicyError, load_policy_files

HEAD = "apiVersion: reconciler.io/v1alpha1\nkind: Project\n"
POLICY = "apiVersion: reconciler.io/v1alpha1\nkind: Policy\n"


def _project(tmp_path: Path, policies: str, **files: str) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    config = tmp_path / "reconciler.yaml"
    config.write_text(HEAD + policies)
    return config


def test_inline_rules_and_files_are_read_with_where_each_expression_stands(tmp_path: Path) -> None:
    config = _project(tmp_path, (
        "policies:\n"
        "  files: [policies/a.yaml]\n"
        "  rules:\n"
        "    - name: inline\n"
        "      expression: manifest.spec.enabled\n"
        "      message: enable it\n"
    ), **{"policies/a.yaml": POLICY + (
        "rules:\n"
        "  - name: from-file\n"
        "    on: action\n"
        "    severity: warn\n"
        "    targets: [prod]\n"
        "    selector: tier=critical\n"
        "    expression: >-\n"
        "      action.kind != 'delete'\n"
        "    message: no deletes\n"
        "tests:\n"
        "  - name: case\n"
        "    action: {kind: delete}\n"
        "    expect: {deny: [from-file]}\n")})
    policies = load_config(config).policies
    inline, named = policies.rules
    assert (inline.name, inline.on, inline.severity, inline.where) == ("inline", "manifest", "deny", f"{config}:7:19")
    assert inline.field == "policies.rules[0].expression"
    assert (named.on, named.severity, named.targets, named.selector) == ("action", "warn", ("prod",), "tier=critical")
    assert named.where == f"{tmp_path / 'policies/a.yaml'}:9:17" and named.field == "rules[0].expression"
    (case,) = policies.tests
    assert case.action == "delete" and case.expect_deny == {"from-file"} and case.line == 13


def test_what_is_wrong_is_refused_at_its_place(tmp_path: Path) -> None:
    rule = "    - name: {name}\n      expression: 'true'\n      message: m\n"
    with pytest.raises(ConfigError) as missing:
        load_config(_project(tmp_path, "policies:\n  files: [nope.yaml]\n"))
    assert f"{tmp_path / 'reconciler.yaml'}:4:11: policies.files[0]: no policy file" in str(missing.value)
    with pytest.raises(ConfigError) as twice:
        load_config(_project(tmp_path, "policies:\n  rules:\n" + rule.format(name="a") + rule.format(name="a")))
    assert "reconciler.yaml:9:19: rule 'a' is also defined at" in str(twice.value)
    (tmp_path / "p.yaml").write_text(POLICY + "rules:\n  - name: Bad Name\n    expression: 'true'\n    message: m\n"
                                              "    severity: block\n")
    with pytest.raises(PolicyError) as schema:
        load_policy_files([tmp_path / "p.yaml"])
    text = str(schema.value)
    assert "p.yaml:4:11: rules[0].name" in text and "p.yaml:7:15: rules[0].severity" in text
    with pytest.raises(ConfigError) as unknown_key:
        load_config(_project(tmp_path, "policies:\n  rule: []\n"))
    assert "reconciler.yaml:4:3" in str(unknown_key.value)


def test_a_project_rule_that_does_not_compile_is_located_in_reconciler_yaml(tmp_path: Path) -> None:
    config = _project(tmp_path, "policies:\n  rules:\n    - name: broken\n      expression: manifest.spec.(\n"
                                "      message: m\n")
    with pytest.raises(policy.PolicyCompileError) as caught:
        policy.compile_policies(load_config(config).policies.rules)
    assert str(caught.value).startswith(f"{config}:6:19: policies.rules[0].expression: rule 'broken' does not "
                                        "compile: <input>:1:15: Syntax error")
