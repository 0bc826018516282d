"""``reconciler policy test [FILES]``: run the policies' own test cases (each an input and the
rules expected to deny and warn, like ``conftest verify``). Exit 0 when every case passes, 1 on a
mismatch, a rule that does not compile, or no test case at all (a suite that tests nothing
passes nothing)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli import options as o
from reconciler.cli.console import EXIT_ERROR, EXIT_OK, exit_codes, stdout_console
from reconciler.errors import UsageError

__all__ = ["register"]


def _policy_test(files: list[Path], *, config: Path | None, output: o.TextOrJson, no_color: bool) -> None:
    from reconciler.engine import policy
    from reconciler.specs.config import find_config, load_config
    from reconciler.specs.policies import load_policy_files

    with exit_codes(no_color=no_color):
        if files:
            policies = load_policy_files(files)
            where = ", ".join(str(f) for f in files)
        else:
            found = config or find_config([Path.cwd()])
            if found is None:
                raise UsageError("no reconciler.yaml here or above, and no policy files given: pass policy files "
                                 "(`reconciler policy test policies/*.yaml`) or --config")
            if found.is_absolute() and found.is_relative_to(Path.cwd()):
                found = found.relative_to(Path.cwd())  # messages name files as the user would type them
            policies = load_config(found).policies
            where = f"the policy files of {found}"
        if not policies.tests:
            raise UsageError(f"no test cases in {where}: add `tests:` to a policy file (kind: Policy)")
        outcomes = policy.run_tests(policy.compile_policies(policies.rules), policies.tests)
    failed = [r for r in outcomes if not r.passed]
    if output is o.TextOrJson.json:
        sys.stdout.write(json.dumps({
            "passed": len(outcomes) - len(failed), "failed": len(failed),
            "tests": [{"name": r.test.name, "file": r.test.file, "line": r.test.line, "passed": r.passed,
                       "denied": sorted(r.denied), "warned": sorted(r.warned), "mismatches": r.mismatches()}
                      for r in outcomes]}, indent=2) + "\n")
    else:
        out = stdout_console(no_color)
        for r in outcomes:
            where_test = f"{r.test.file}:{r.test.line}"
            if r.passed:
                out.print(f"PASS {r.test.name} ({where_test})", style="green", markup=False)
                continue
            out.print(f"FAIL {r.test.name} ({where_test}): {'; '.join(r.mismatches())}", style="red", markup=False)
            for verdict in r.verdicts:
                out.print(f"    {verdict.line()}", style="dim", markup=False)
        out.print(f"{len(outcomes) - len(failed)} passed, {len(failed)} failed",
                  style="bold red" if failed else "green", markup=False)
    raise typer.Exit(EXIT_ERROR if failed else EXIT_OK)


def register(app: typer.Typer) -> None:
    group = typer.Typer(name="policy", help="Policies (CEL rules in reconciler.yaml): test them.", no_args_is_help=True)
    app.add_typer(group, name="policy")

    @group.command("test")
    def test(
        files: Annotated[list[Path] | None, typer.Argument(
            help="Policy files (kind: Policy). Default: the project's (policies.files of reconciler.yaml).")] = None,
        config: o.ConfigOpt = None,
        output: Annotated[o.TextOrJson, typer.Option("--output", "-o", help="text or json.")] = o.TextOrJson.text,
        no_color: o.NoColorOpt = False,
    ) -> None:
        """Run the test cases of policy files against their rules; exit 1 on any mismatch.

        A case gives a manifest (and for action rules an action and the live definition) and the
        rules expected to deny and to warn: exactly those must, no other.
        """
        _policy_test(list(files or ()), config=config, output=output, no_color=no_color)
