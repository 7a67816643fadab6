"""Does the package's layout show the course: checks above the taught code above the machinery?

``course_utils/lessons/`` holds the code the lessons teach; ``course_utils/grading/checks/`` the
checks of the exercises; everything else is machinery (runtime, data, training loop, plotting,
grading, authoring, book, bench, CLI). Checks may import the taught code and the machinery; the
taught code only the machinery; the machinery neither.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "course_utils"


def _layer(module: str) -> str:
    if module.startswith("course_utils.grading.checks"):
        return "checks"
    if module.startswith("course_utils.lessons"):
        return "lessons"
    return "machinery"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every course_utils module imported by the file (absolute or relative, at any depth)."""
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("course_utils")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("course_utils"):
                found.add(target)
                found |= {f"{target}.{a.name}" for a in node.names}
    return found


ALLOWED = {"checks": {"checks", "lessons", "machinery"}, "lessons": {"lessons", "machinery"},
           "machinery": {"machinery"}}


def test_no_import_goes_the_other_way():
    """Does no machinery module import the taught code or the checks, and no taught module the checks?"""
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        layer = _layer(_module_name(path))
        for target in sorted(_imports(path)):
            if target in ("course_utils.lessons", "course_utils.grading.checks") and layer == "machinery":
                # the registry finds the checks by their package path, and the package docstring
                # names the lessons: allowed only as the bare package, never a module of it
                if path.name == "registry.py" and target == "course_utils.grading.checks":
                    continue
            if _layer(target) not in ALLOWED[layer]:
                wrong.append(f"{_module_name(path)} ({layer}) imports {target} ({_layer(target)})")
    assert wrong == []


def test_the_layer_test_sees_relative_imports():
    """Does the import reader resolve relative imports (so the test above can fail)?"""
    found = _imports(PACKAGE / "grading" / "checks" / "lesson02" / "train_mlp.py")
    assert "course_utils.lessons.mlp_numpy" in found and _layer("course_utils.lessons.mlp_numpy") == "lessons"


def test_every_taught_module_names_its_lesson():
    """Does each module of course_utils/lessons/ say which lesson teaches it?"""
    import re

    for path in sorted((PACKAGE / "lessons").glob("*.py")):
        if path.name == "__init__.py":
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        assert re.search(r"lesson \d\d", doc), f"{path.name}: its docstring names no lesson"
