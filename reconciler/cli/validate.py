"""``reconciler validate``: the manifests (and the project config) against the schemas, every
problem with file:line:col. Exit 0 valid, 3 invalid, 1 a usage error."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from reconciler.cli import options as o
from reconciler.cli.console import (
    EXIT_ERROR,
    EXIT_INVALID,
    EXIT_OK,
    exit_codes,
    stderr_console,
    stdout_console,
)

__all__ = ["register"]


def _validate(targets: list[Path], *, output: o.TextOrJson, target: str | None, config: Path | None,
              no_color: bool) -> None:
    from reconciler.engine import policy
    from reconciler.specs import environments, secrets
    from reconciler.specs.config import find_config, load_config
    from reconciler.specs.validate import ValidationReport, project_config_issues

    with exit_codes(no_color=no_color):
        found = config or find_config(targets)
        if found is not None and found.is_absolute() and found.is_relative_to(Path.cwd()):
            found = found.relative_to(Path.cwd())  # messages name it as the user would type it
        # the project config is checked like the manifests: a config that plan would refuse fails here
        config_issues = project_config_issues(found) if found else []
        broken = any(i.severity == "error" for i in config_issues)  # a warning (a freeze with no end) still loads
        project = load_config(found) if found and not broken else None
        if broken and target:  # a target cannot be resolved from a broken config
            report = ValidationReport(files=1)
        else:
            # secret files stay in the project (its config's directory, else the paths) or allowedDirs
            roots = secrets.secret_roots(config_path=found, allowed_dirs=project.secret_dirs if project else (),
                                         paths=targets)
            report = environments.validate_for(targets, targets=project.targets if project else None,
                                               target_name=target, overlays_root=found.parent if found else None,
                                               secret_roots=roots)
            if project is not None:  # the manifest policies, compiled once (a rule that does not compile: exit 1)
                report = policy.with_manifest_issues(report, policy.compile_policies(project.policies.rules),
                                                     target=target)
    if config_issues:
        report.issues = sorted([*config_issues, *report.issues], key=lambda i: (i.file, i.line, i.col, i.field))
    if output is o.TextOrJson.json:
        sys.stdout.write(json.dumps(report.as_json(), indent=2) + "\n")
    else:
        out = stdout_console(no_color)
        # one Text printed once: a print per line cost 1.7 s CPU for 6,210 policy warnings, this 0.55 s
        lines = []
        for issue in report.issues:
            head, _, hint = issue.format().partition("\n")
            lines.append(Text(head, style="yellow" if issue.severity == "warning" else "red"))
            if hint:
                lines.append(Text(hint, style="dim"))
        if lines:
            out.print(Text("\n").join(lines))
        summary = (f"{report.checked} manifest(s) in {report.files} file(s): "
                   f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)")
        out.print(("OK: " if report.ok else "INVALID: ") + summary, style="green" if report.ok else "bold red",
                  markup=False)
    raise typer.Exit(EXIT_OK if report.ok else EXIT_INVALID)


def register(app: typer.Typer) -> None:
    @app.command()
    def validate(
        paths: o.PathsArg = None,
        output: Annotated[o.TextOrJson, typer.Option("--output", "-o", help="text or json.")] = o.TextOrJson.text,
        target: o.TargetOpt = None, config: o.ConfigOpt = None, no_color: o.NoColorOpt = False,
    ) -> None:
        """Check manifests against the schemas and report every problem with file:line:col.

        Exit 0 when every manifest is valid, 3 when any is invalid, 1 on a path that does not exist or
        an internal error.
        """
        from reconciler.extras import MissingExtra
        from reconciler.session import require_paths

        targets = paths or [Path("specs")]
        with exit_codes(no_color=no_color):  # nothing was validated: a usage error, not "invalid manifests"
            require_paths(targets, given=bool(paths))
        try:
            _validate(targets, output=output, target=target, config=config, no_color=no_color)
        except (typer.Exit, MissingExtra):  # a missing extra: main() says which pip install
            raise
        except Exception as exc:  # a bug, not bad input: say so in one line, exit 1, no traceback
            stderr_console(no_color).print(
                f"internal error: {type(exc).__name__}: {exc}\n    hint: this is a bug in reconciler; please report it "
                "with the command and the manifest that caused it", markup=False)
            raise typer.Exit(EXIT_ERROR) from None
