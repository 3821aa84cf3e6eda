"""The package's layers: no import circle between its modules, counting imports made inside functions
and imports made only for type checking (a layer knows only the seams below it)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "a3c_core"


def module_name(path: Path, root: Path = PACKAGE) -> str:
    return ".".join(path.relative_to(root).with_suffix("").parts)


def imported_modules(path: Path, modules: set[str], root: Path = PACKAGE) -> set[str]:
    """The package's modules that ``path`` (a module under ``root``) imports anywhere in it."""
    name = module_name(path, root)
    package = name.rsplit(".", 1)[0] if "." in name and path.name != "__init__.py" else ""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # from .x import y / from . import x
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)] if package else []
                stem = ".".join([*base, *([node.module] if node.module else [])])
                candidates = [stem] if node.module else [".".join([*base, alias.name]) for alias in node.names]
            elif node.module and node.module.startswith("a3c_core"):
                stem = node.module.removeprefix("a3c_core").lstrip(".")
                candidates = [stem] + [f"{stem}.{alias.name}".lstrip(".") for alias in node.names]
            else:
                continue
            found |= {c for c in candidates if c in modules}
        elif isinstance(node, ast.Import):
            found |= {alias.name.removeprefix("a3c_core.") for alias in node.names} & modules
    return found - {name}


def test_the_package_has_no_import_circle() -> None:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"}
    graph = {name: imported_modules(path, set(paths)) for name, path in paths.items()}
    assert graph["trainer"] >= {"supervisor", "listeners"} and graph["supervisor"] >= {"worker", "evaluator"}
    circles = []

    def visit(name: str, path: list[str], done: set[str]) -> None:
        for imported in sorted(graph[name]):
            if imported in path:
                circles.append(path[path.index(imported):] + [imported])
            elif imported not in done:
                visit(imported, path + [imported], done)
        done.add(name)

    done: set[str] = set()
    for name in sorted(graph):
        if name not in done:
            visit(name, [name], done)
    assert not circles, [" -> ".join(circle) for circle in circles]


def test_a_type_only_import_circle_is_found(tmp_path: Path) -> None:
    """The finder itself: an import under ``if TYPE_CHECKING:`` counts."""
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .trainer import Trainer\n"
    (tmp_path / "supervisor.py").write_text(source)
    assert imported_modules(tmp_path / "supervisor.py", {"trainer", "supervisor"}, tmp_path) == {"trainer"}


def test_the_training_processes_import_neither_plotting_nor_widgets() -> None:
    """The fork server imports what the workers run (processes.PRELOAD) and every child shares it; matplotlib, imageio and ipywidgets (the kernel's side) would add about 25 MB to
    each student's training on a class's hub. In a fresh interpreter, so that nothing imported before counts."""
    import subprocess
    import sys

    code = ("import sys, importlib; from a3c_core.processes import PRELOAD\n"
            "for name in PRELOAD: importlib.import_module(name)\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'matplotlib', 'imageio', 'PIL', 'ipywidgets'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]", f"the training processes import {result.stdout.strip()}"
