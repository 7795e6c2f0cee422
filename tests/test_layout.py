"""The house's layout holds: imports run one way between the wings, with no cycles.

The wings, lowest first (README, "Layout"): ``store`` < ``registry`` < ``scoring`` <
``cache`` < ``api`` < ``moderation`` < ``cli``, then the frame's top (``app``,
``wsgi``, ``gunicorn_conf``, ``health``). The frame's base (``config``, ``errors``,
``logs``, ``metrics``, ``resources``, ``sessions``) may be imported from anywhere and
imports no wing at run time. Imports under ``if TYPE_CHECKING:`` are types only and
do not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVICE = ROOT / "service"
WINGS = ["store", "registry", "scoring", "cache", "api", "moderation", "cli"]
BASE = {"config", "errors", "logs", "metrics", "resources", "sessions"}
TOP = {"app", "wsgi", "gunicorn_conf", "health"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def rank(module: str) -> int:
    """0 for the frame's base, 1.. for the wings in order, above them the top."""
    parts = module.split(".")
    if len(parts) < 2:
        return 0
    if parts[1] in BASE:
        return 0
    if parts[1] in WINGS:
        return 1 + WINGS.index(parts[1])
    return len(WINGS) + 1  # app, wsgi, gunicorn_conf, health, __main__


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(path: Path) -> list[tuple[str, bool]]:
    """(imported service module, at module level?) for every run-time import."""
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit(sub, top)
                continue
            if isinstance(child, ast.Import):
                found.extend((a.name, top) for a in child.names if a.name.startswith("service"))
            elif (
                isinstance(child, ast.ImportFrom)
                and child.level == 0
                and (child.module or "").startswith("service")
            ):
                for alias in child.names:
                    sub = f"{child.module}.{alias.name}"
                    target = sub if _module_path(sub) else str(child.module)
                    found.append((target, top))
            inner = top and not isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
            )
            visit(child, inner)

    visit(ast.parse(path.read_text(encoding="utf-8")), True)
    return found


def _module_path(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


MODULES = {module_name(p): p for p in SERVICE.rglob("*.py") if "migrations" not in p.parts}


def test_every_wing_has_a_docstring_saying_what_it_owns() -> None:
    for wing in WINGS:
        doc = ast.get_docstring(ast.parse((SERVICE / wing / "__init__.py").read_text()))
        assert doc and "May import" in doc, f"service/{wing}/__init__.py needs its docstring"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_one_way(module: str) -> None:
    mine = rank(module)
    upward = [
        target for target, _ in imports(MODULES[module])
        if rank(target) > mine and not target.startswith(module)
    ]
    assert not upward, f"{module} (rank {mine}) imports higher wings: {upward}"


def test_no_import_cycles_at_module_level() -> None:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for target, top in imports(path):
            if top and target in graph and target != module:
                graph[module].add(target)
    # Tarjan's strongly connected components
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
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
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            strong(v)
    assert not cycles, f"import cycles: {cycles}"
