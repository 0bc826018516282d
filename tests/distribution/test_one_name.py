"""One name per concept: no two modules of ``reconciler/`` define a class of the same name.

A name that meant two things (``Verdict`` the policy verdict and the operator's step, ``Outcome``
three times, the local service's HTTP ``Conflict`` next to the operator's ``Conflict``) made a
reader check the import to know which was meant. A new class must pick a name nobody else uses.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "reconciler"


def class_definitions(root: Path) -> dict[str, set[str]]:
    """Class name -> the modules (paths relative to ``root``) that define it, at any nesting."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.ClassDef):
                found[node.name].add(path.relative_to(root).as_posix())
    return found


def test_no_class_name_is_defined_in_two_modules() -> None:
    found = class_definitions(PACKAGE)
    assert "Step" in found and "Verdict" in found  # the walk reached the operator and the engine
    shared = {name: sorted(modules) for name, modules in found.items() if len(modules) > 1}
    assert shared == {}, ("each of these names is defined in more than one module; give each concept "
                          f"its own name: {shared}")


def test_the_check_sees_a_name_defined_twice(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("class Outcome:\n    pass\n")
    (tmp_path / "b.py").write_text("def f() -> None:\n    class Outcome:\n        pass\n")
    assert class_definitions(tmp_path)["Outcome"] == {"a.py", "b.py"}
