"""The shape of the package: blueprints on one kernel, no import cycles, no module over 500 lines.

Read from the source with :mod:`ast`, so the rules hold without importing (or configuring) the
app. A module-level import is an edge; an import inside a function is "lazy" and allowed only
where :data:`LAZY_IMPORTS` lists it (each one is explained in its module's docstring).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "auth_microservice_app"
ROOT = Path(__file__).resolve().parents[2] / PACKAGE
MAX_LINES = 500
BLUEPRINTS = ("auth", "two_factor", "oauth", "oauth2", "admin")
KERNEL = ("identity", "mail", "web", "utils", "models", "audit")
#: (importing module, imported module): the lazy imports we could not avoid.
LAZY_IMPORTS = {
    # `from auth_microservice_app import create_app`: the package names the factory lazily,
    # so importing a submodule (models, for Alembic) does not build the whole app.
    (PACKAGE, f"{PACKAGE}.app"),
    # The Celery tasks reach the app's factory only when a worker starts without one.
    (f"{PACKAGE}.tasks", f"{PACKAGE}.app"),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _resolve(module: str, node: ast.ImportFrom | ast.Import) -> set[str]:
    """The app's modules an import statement loads (names, not packages' parents)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in MODULES}
    if node.level:
        package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
    else:
        base = node.module or ""
    found = {f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES}
    if len(found) < len(node.names) and base in MODULES:
        found.add(base)
    return found


def _imports(module: str) -> tuple[set[str], set[str]]:
    """(module-level imports, imports inside functions) of ``module``; TYPE_CHECKING skipped."""
    tree = ast.parse(MODULES[module].read_text())
    eager: set[str] = set()
    lazy: set[str] = set()

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                (lazy if in_function else eager).update(_resolve(module, child))
            visit(child, in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef))

    visit(tree, False)
    return eager, lazy


GRAPH = {module: _imports(module) for module in MODULES}


def _top(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def test_no_module_is_over_500_lines():
    long = {
        name: count
        for name, path in MODULES.items()
        if (count := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_blueprints_import_the_kernel_never_each_other():
    crossing = sorted(
        (module, target)
        for module, (eager, lazy) in GRAPH.items()
        for target in eager | lazy
        if _top(module) in BLUEPRINTS and _top(target) in BLUEPRINTS
        if _top(target) != _top(module)
    )
    assert crossing == []


def test_the_kernel_never_imports_a_blueprint():
    upward = sorted(
        (module, target)
        for module, (eager, lazy) in GRAPH.items()
        for target in eager | lazy
        if _top(module) in KERNEL and _top(target) in BLUEPRINTS
    )
    assert upward == []


def test_only_the_documented_lazy_imports_remain():
    lazy = {(module, target) for module, (_, targets) in GRAPH.items() for target in targets}
    assert lazy == LAZY_IMPORTS


def _reachable(start: str) -> set[str]:
    """Every module that importing ``start`` loads at module level."""
    seen: set[str] = set()
    todo = list(GRAPH[start][0])
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(GRAPH[module][0])
    return seen


def test_there_is_no_import_cycle():
    in_a_cycle = sorted(module for module in GRAPH if module in _reachable(module))
    assert in_a_cycle == []


def test_the_rules_see_the_package():
    # a broken walk would pass every rule above with nothing to check
    assert len(MODULES) > 50
    assert f"{PACKAGE}.identity.tokens" in GRAPH[f"{PACKAGE}.web.auth"][0]
