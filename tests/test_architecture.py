"""The layering of src/uniroute, read from the source: the engine imports nothing outside itself,
and no module-level import cycle exists (docs/architecture.md)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import uniroute

SRC = Path(uniroute.__file__).parent
ENGINE_MAY_IMPORT = ("uniroute.engine", "uniroute.exceptions", "uniroute._optional")


def _modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _is_typing_block(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(module: str, path: Path, is_package: bool, known: set[str]) -> tuple[set[str], set[str]]:
    """uniroute modules imported at module level (run on import) and inside functions (run on use)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {id(n) for block in tree.body if _is_typing_block(block) for n in ast.walk(block)}
    module_level = {id(n) for block in tree.body for n in ast.walk(block) if not _is_typing_block(block)}
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    for fn in functions:
        module_level -= {id(n) for n in ast.walk(fn)}
    # A module-level __getattr__ (PEP 562) is a lazy namespace or a deprecated alias, not a dependency.
    shims = {id(n) for fn in tree.body if isinstance(fn, ast.FunctionDef) and fn.name == "__getattr__"
             for n in ast.walk(fn)}  # fmt: skip
    eager: set[str] = set()
    lazy: set[str] = set()
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(tree):
        if id(node) in typing_only | shims or not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = package[: len(package) - node.level + 1] if node.level else []
            stem = ".".join(base + ([node.module] if node.module else []))
            targets = [f"{stem}.{a.name}" if f"{stem}.{a.name}" in known else stem for a in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != module:
                (eager if id(node) in module_level else lazy).add(target)
    return eager, lazy


def _graph() -> dict[str, tuple[set[str], set[str]]]:
    modules = _modules()
    return {name: _imports(name, path, pkg, set(modules)) for name, (path, pkg) in modules.items()}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_the_imports():
    eager, lazy = _graph()["uniroute.cli"]
    assert "uniroute._cli" in eager and "uniroute.exceptions" in eager
    assert {"uniroute.engine.router", "uniroute.datasets"} <= lazy and "uniroute.engine.router" not in eager
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_engine_imports_nothing_outside_itself():
    outside = {
        (module, target)
        for module, (eager, lazy) in _graph().items()
        if module.startswith("uniroute.engine")
        for target in eager | lazy
        if not target.startswith(ENGINE_MAY_IMPORT)
    }
    assert outside == set()


def test_no_module_level_import_cycle():
    assert _cycles({module: eager for module, (eager, _) in _graph().items()}) == []


def test_no_import_cycle_even_through_imports_inside_functions():
    assert _cycles({module: eager | lazy for module, (eager, lazy) in _graph().items()}) == []


def test_every_type_ignore_names_its_code_and_says_why():
    bare = [
        f"{path.relative_to(SRC.parent)}:{number}"
        for path in SRC.rglob("*.py")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if "type: ignore" in line and not re.search(r"# type: ignore\[[\w,-]+\]\s+#\s*\S", line)
    ]
    assert bare == []
