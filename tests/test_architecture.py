"""The rules ARCHITECTURE.md states, checked: the library never imports the app or gradio, only the console
script imports the commands, evaluation/models/data never import the trainer, modules stay small, every
module is on the map. (No import cycles: ``tests/test_import_cycles.py``.)"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAX_LINES = 500


def python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (REPO / folder).rglob("*.py"))


def imported_names(path: Path) -> set[str]:
    """Every module named by an import anywhere in the file (function bodies included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_the_library_never_imports_the_app_or_gradio():
    offenders = {str(p.relative_to(REPO)): sorted(n for n in imported_names(p)
                                                   if n.split(".")[0] in ("gradio", "workbench"))
                 for p in python_files("paraclip")}
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"paraclip/ must not import gradio or workbench: {offenders}"


def test_only_the_console_script_imports_the_commands():
    """``paraclip/commands/`` parses and calls the library; the library never calls back into a command."""
    entry_points = {"paraclip/cli.py", "paraclip/__main__.py"}
    offenders = sorted(str(p.relative_to(REPO)) for p in python_files("paraclip")
                       if p.relative_to(REPO).as_posix() not in entry_points
                       and not p.relative_to(REPO).as_posix().startswith("paraclip/commands/")
                       and any(n.startswith("paraclip.commands") for n in imported_names(p)))
    assert not offenders, f"library modules importing paraclip.commands: {offenders}"


def test_evaluation_models_and_data_never_import_the_trainer():
    """open_clip's split between the model library and its trainer: evaluators, models and data readers
    work without the training package (the trainer may use them, never the other way round)."""
    offenders = sorted(str(p.relative_to(REPO)) for folder in ("paraclip/evaluation", "paraclip/models", "paraclip/data")
                       for p in python_files(folder)
                       if any(n.startswith("paraclip.training") for n in imported_names(p)))
    assert not offenders, f"modules importing paraclip.training: {offenders}"


def test_the_import_check_sees_imports_inside_functions(tmp_path):
    file = tmp_path / "m.py"
    file.write_text("def f():\n    from workbench.serving import serve\n    import gradio as gr\n")
    assert {"workbench.serving", "gradio"} <= imported_names(file)


def test_no_module_is_over_500_lines():
    long = {str(p.relative_to(REPO)): n for p in python_files("paraclip", "workbench")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by concept): {long}"


def test_every_module_is_on_the_architecture_map():
    """Each module of paraclip/ and workbench/ is named in ARCHITECTURE.md (by path, or by file name in a
    row that names its folder), so the map cannot silently fall behind the code."""
    text = (REPO / "ARCHITECTURE.md").read_text(encoding="utf-8")
    missing = []
    for path in python_files("paraclip", "workbench"):
        rel = path.relative_to(REPO).as_posix()
        if path.name == "__init__.py" or rel in text:
            continue
        folder = path.parent.relative_to(REPO).as_posix() + "/"
        rows = [line for line in text.splitlines() if folder in line]
        if not any(re.search(rf"(?<![\w/]){re.escape(path.name)}\b", row) for row in rows):
            missing.append(rel)
    assert not missing, "modules missing from ARCHITECTURE.md's map: " + ", ".join(missing)
