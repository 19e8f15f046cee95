"""The blueprints stand on the kernel, never on each other: ``auth/``, ``two_factor/`` and
``oauth/`` import ``identity/``, ``mail/``, ``web/``, ``utils/``, ``models/``..., and no module
of one blueprint package imports another blueprint package (their OpenAPI tables included)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "auth_microservice_app"
BLUEPRINTS = ("auth", "two_factor", "oauth")


def imported_packages(path: Path) -> set[str]:
    """The top-level ``auth_microservice_app`` subpackages a module of a blueprint imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom):
            depth = len(path.relative_to(PACKAGE).parts) - 1  # 1 for auth/x.py
            module = node.module or ""
            if node.level == 0 and module.startswith("auth_microservice_app."):
                found.add(module.split(".")[1])
            elif node.level > depth:  # climbs out of the blueprint package
                names = module.split(".") if module else [alias.name for alias in node.names]
                found.update(names[:1] if module else names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("auth_microservice_app."):
                    found.add(alias.name.split(".")[1])
    return found


@pytest.mark.parametrize("blueprint", BLUEPRINTS)
def test_a_blueprint_imports_no_other_blueprint(blueprint):
    others = set(BLUEPRINTS) - {blueprint}
    offending = {
        str(path.relative_to(PACKAGE)): sorted(imported_packages(path) & others)
        for path in sorted((PACKAGE / blueprint).rglob("*.py"))
    }
    assert {path: names for path, names in offending.items() if names} == {}
