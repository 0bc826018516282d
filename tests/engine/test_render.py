"""Renderers: text markers, JSON valid against its schema, Markdown under the comment limit."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path

import pytest

from reconciler.contract import validators
from reconciler.engine.plan import build_plan
from reconciler.engine.render import MARKDOWN_LIMIT, render
from reconciler.engine.types import Scope

from .helpers import desired, live

SCOPE = Scope(name_prefix="demo-")


def _plan(n_create: int = 1):
    a, b = desired("demo-a"), desired("demo-b", previousNames=["demo-b-old"])
    creates = [desired(f"demo-new-{i:05d}", job={
        "deploymentId": "5dc5b1015e6e762a6241f9aa",
        "intakeSettings": {"type": "dataset", "datasetId": "5dc5b1015e6e762a6241f9aa"},
        "predictionInstance": {"hostName": "h", "apiKeyFrom": {"env": "PRED_KEY"}}}) for i in range(n_create)]
    la = live(a, id_="a" * 24)
    la.comparable["enabled"] = True
    gone = live(desired("demo-gone"), id_="9" * 24)
    return build_plan(desired=[a, b, *creates], live=[la, live(b, id_="b" * 24, name="demo-b-old"), gone,
                                                      live(desired("other"), id_="8" * 24)],
                      scope=SCOPE, prune=True, max_delete_fraction=1.0)


def test_text_has_markers_paths_and_summary() -> None:
    text = render(_plan(), "text")
    assert "  ~ update demo-a [id aaaaaaaaaaaaaaaaaaaaaaaa] (1 change)" in text
    assert "      ~ enabled: true -> false" in text
    assert "  ~ rename demo-b (was demo-b-old)" in text
    assert "  + create demo-new-00000" in text
    assert "      + batchPredictionJob.predictionInstance.hostName = \"h\"" in text
    assert "  - delete demo-gone" in text
    assert "Unmanaged, outside the scope, never touched (1): other" in text
    assert text.rstrip().endswith("Plan: 1 to create, 2 to update, 1 to delete.")
    assert "\x1b[" not in text


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("view", ["plan", "diff"])
def test_the_cli_colours_the_views_with_rich_and_colour_off_is_the_plain_text(
        view: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine writes no escape code; the cli prints its styled lines with rich on a terminal,
    and exactly the plain text with --no-color, NO_COLOR or no terminal."""
    from reconciler.cli.console import write_lines
    from reconciler.engine.render import diff_lines, plain, render_diff, text_lines

    lines = text_lines(_plan()) if view == "plan" else diff_lines(_plan())
    expected = render(_plan(), "text") if view == "plan" else render_diff(_plan())
    assert plain(lines) == expected
    monkeypatch.delenv("NO_COLOR", raising=False)
    for no_color, env, out in ((False, None, _Terminal()), (True, None, _Terminal()), (False, "1", _Terminal()),
                               (False, None, io.StringIO())):
        if env is None:
            monkeypatch.delenv("NO_COLOR", raising=False)
        else:
            monkeypatch.setenv("NO_COLOR", env)
        monkeypatch.setattr(sys, "stdout", out)
        write_lines(lines, no_color=no_color)
        if not no_color and env is None and out.isatty():
            coloured = out.getvalue()
            assert "\x1b[32m" in coloured and "\x1b[33m" in coloured and "\x1b[31m" in coloured
            assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == expected
        else:
            assert out.getvalue() == expected
    source = Path(__file__).parents[2] / "reconciler" / "engine" / "render.py"
    assert "\\x1b" not in source.read_text() and "\x1b" not in source.read_text()


def test_json_is_valid_against_the_plan_schema_and_keeps_only_references() -> None:
    doc = json.loads(render(_plan(), "json", version="9.9"))
    validators.validator("plan").validate(doc)
    assert list(doc)[:3] == ["format_version", "reconciler_version", "applyable"]
    assert doc["format_version"] == "1.2"
    assert [a["kind"] for a in doc["actions"]] == ["rename", "update", "create", "delete"]
    create = doc["actions"][2]
    assert create["body"]["predictionInstance"]["apiKeyFrom"] == {"env": "PRED_KEY"}


def test_markdown_is_cut_under_the_limit_with_a_note() -> None:
    small = render(_plan(), "markdown")
    assert "| 1 | 1 | 0 | 1 | 1 | 0 |" in small and "<details>" in small and "cut" not in small
    big = render(_plan(n_create=400), "markdown")
    assert len(big) < MARKDOWN_LIMIT
    assert "Output cut to stay under 65,000 characters" in big
    assert "Unmanaged" in big


def test_markdown_caps_warnings_so_the_comment_stays_under_the_limit() -> None:
    ds = [desired(f"demo-{i:05d}") for i in range(3000)]
    lives = []
    for i, d in enumerate(ds):
        lv = live(d, id_=f"{i:024d}")
        lv.comparable["batchPredictionJob"]["thresholdHigh"] = 0.9  # set live, not in the manifest: a warning
        lives.append(lv)
    plan = build_plan(desired=ds, live=lives, scope=SCOPE)
    assert len(plan.warnings) == 3000
    text = render(plan, "markdown")
    assert len(text) < MARKDOWN_LIMIT
    assert "… and 2980 more warnings: run `reconciler plan` to see them all." in text


def test_compact_time_keeps_everything_but_the_zeros() -> None:
    from reconciler.engine.render import compact_time

    assert compact_time("2026-12-02T02:00:00.000000Z") == "2026-12-02 02:00"
    assert compact_time("2026-12-02T02:00:07Z") == "2026-12-02 02:00:07"
    assert compact_time("2026-12-02T03:00:00.250000+01:00") == "2026-12-02 02:00:00.250000"
    assert compact_time(None) == "-" and compact_time("soon") == "soon"


def test_no_color_consoles_print_plain_text_even_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """--no-color means no escape codes at all (as Terraform's -no-color), not only no colour."""
    from reconciler.cli.console import stderr_console, stdout_console

    monkeypatch.setenv("FORCE_COLOR", "1")  # rich then treats the stream as a terminal
    monkeypatch.delenv("NO_COLOR", raising=False)
    for make in (stdout_console, stderr_console):
        styled = make(False)
        with styled.capture() as captured:
            styled.print("Plan", style="bold red")
        assert "\x1b[" in captured.get()
        plain = make(True)
        with plain.capture() as captured:
            plain.print("Plan", style="bold italic red")
        assert captured.get() == "Plan\n"


def test_markdown_fence_cannot_be_closed_by_a_value_holding_backticks() -> None:
    """A field value with ``` (or longer runs) stays inside its code block: the fence is longer."""
    import re

    want = desired("demo-fence")
    want.comparable["description"] = "x ``` </details> ```` y"
    md = render(build_plan(desired=[want], live=[], scope=SCOPE), "markdown")
    block = md[md.index("<details>"):]
    fence = re.search(r"^(`{3,})diff$", block, re.M)
    assert fence is not None and len(fence.group(1)) == 5, block
    body_lines = block.split("\n")
    opened = body_lines.index(fence.group(1) + "diff")
    closed = body_lines.index(fence.group(1), opened + 1)
    assert any("x ``` </details> ```` y" in line for line in body_lines[opened + 1:closed])
