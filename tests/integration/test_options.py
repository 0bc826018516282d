"""``cli.options.api_flags``: the flags every session-opening command shares are one definition;
typer sees them in the command's ``api`` place and the command gets them as one ``Options``."""

from __future__ import annotations

import re
from pathlib import Path

import typer
from typer.testing import CliRunner

from reconciler.cli import app as cli
from reconciler.cli import options as o
from reconciler.session import Options


def _app(**decorator: object) -> tuple[typer.Typer, list[Options]]:
    app, got = typer.Typer(), []

    @app.command()
    @o.api_flags(**decorator)  # type: ignore[arg-type]
    def command(name: str = "x", api: Options = Options(), verbose: o.VerboseOpt = False) -> None:
        got.append(api)

    return app, got


def test_the_flags_arrive_gathered_with_their_defaults_and_values(tmp_path: Path) -> None:
    app, got = _app()
    assert CliRunner().invoke(app, []).exit_code == 0
    assert got == [Options()]
    args = ["--config", str(tmp_path / "r.yaml"), "--target", "prod", "--endpoint", "http://h:1/api/v2",
            "--token-file", str(tmp_path / "t"), "--allow-http", "--concurrency", "3"]
    assert CliRunner().invoke(app, args).exit_code == 0
    assert got[-1] == Options(config=tmp_path / "r.yaml", target="prod", endpoint="http://h:1/api/v2",
                                 token_file=tmp_path / "t", allow_http=True, concurrency=3)


def test_a_flag_left_out_is_not_offered_and_bounds_still_hold() -> None:
    app, got = _app(without=("concurrency",))
    refused = CliRunner().invoke(app, ["--concurrency", "3"])
    assert refused.exit_code != 0 and "No such option: --concurrency" in refused.output
    low = CliRunner().invoke(_app()[0], ["--concurrency", "0"])  # min=1, as declared once
    assert low.exit_code != 0 and "Invalid value for '--concurrency'" in low.output
    assert got == []


def test_every_session_command_offers_the_shared_flags_in_one_order() -> None:
    for command in (["plan"], ["apply"], ["watch"], ["diff"], ["export"], ["list"], ["run"], ["schedule"],
                    ["ci", "comment"]):
        shown = CliRunner().invoke(cli, [*command, "--help"], env={"NO_COLOR": "1", "COLUMNS": "200"}).output
        offered = re.findall(r"^\W*(--[a-z-]+)", shown, flags=re.M)
        shared = [flag for flag in offered if flag in ("--config", "--endpoint", "--token-file", "--allow-http")]
        assert shared == ["--config", "--endpoint", "--token-file", "--allow-http"], (command, offered)
