"""No import cycles in ``paraclip/``: the import graph of its modules, read with ``ast``, has no cycle,
counting imports inside functions too (a function-level import that closes a cycle is still two modules
that know each other; it only hides the cycle from the interpreter).

Not counted: ``if TYPE_CHECKING:`` blocks. An import edge goes to the module named (``from a.b import c``
goes to ``a.b.c`` when that is a module, else to ``a.b``), not to the packages above it.
``python tests/test_import_cycles.py`` prints both graphs' cycles.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "paraclip"


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.Module, module: str, is_package: bool) -> tuple[list[str], list[str]]:
    """(names imported when the module is imported, names imported inside functions)."""
    at_import, in_functions = [], []

    def targets(node) -> list[str]:
        if isinstance(node, ast.Import):
            return [alias.name for alias in node.names]
        base = node.module or ""
        if node.level:
            anchor = module.split(".") if is_package else module.split(".")[:-1]
            anchor = anchor[:len(anchor) - (node.level - 1)]
            base = ".".join(anchor + ([base] if base else []))
        return [f"{base}.{alias.name}" if base else alias.name for alias in node.names]

    def visit(node, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                (in_functions if in_function else at_import).extend(targets(child))
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, True)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.orelse:
                    visit(ast.Module(body=[stmt], type_ignores=[]), in_function)
            else:
                visit(child, in_function)

    visit(tree, False)
    return at_import, in_functions


def import_graph(root: Path = PACKAGE_ROOT, package: str = PACKAGE) -> tuple[dict[str, set], dict[str, set]]:
    """(module -> modules it imports when imported, module -> modules it imports inside functions),
    both restricted to ``package``'s own modules."""
    files = {_module_name(p, root): p for p in sorted((root / package).rglob("*.py"))}
    at_import: dict[str, set] = {m: set() for m in files}
    in_functions: dict[str, set] = {m: set() for m in files}

    def resolve(name: str) -> str | None:
        # "from a.b import c": a.b.c when it is a module; otherwise the names were attributes of a.b
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    for module, path in files.items():
        eager, lazy = _imports(ast.parse(path.read_text(encoding="utf-8")), module, path.name == "__init__.py")
        for names, graph in ((eager, at_import), (lazy, in_functions)):
            for name in names:
                target = resolve(name)
                if target is not None and target != module:
                    graph[module].add(target)
    return at_import, in_functions


def find_cycles(graph: dict[str, set]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))

    def connect(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return sorted(out)


def test_the_graph_sees_imports():
    at_import, in_functions = import_graph()
    assert "paraclip.files" in at_import["paraclip.miniworld.report"]
    assert "paraclip.training" in in_functions["paraclip.miniworld.stages"]


def test_cycle_finder_finds_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_paraclip():
    at_import, _ = import_graph()
    cycles = find_cycles(at_import)
    assert not cycles, "modules of paraclip/ that import each other when imported: " + "; ".join(
        " <-> ".join(c) for c in cycles)


def test_no_import_cycle_through_imports_inside_functions():
    at_import, in_functions = import_graph()
    cycles = find_cycles({m: at_import[m] | in_functions[m] for m in at_import})
    assert not cycles, "modules of paraclip/ that import each other (some inside functions): " + "; ".join(
        " <-> ".join(c) for c in cycles)


if __name__ == "__main__":
    eager, lazy = import_graph()
    print("cycles through imports at import time:", find_cycles(eager) or "none")
    combined = {m: eager[m] | lazy[m] for m in eager}
    print("cycles once imports inside functions count too:")
    for cycle in find_cycles(combined):
        print("  " + " <-> ".join(cycle))
