#!/usr/bin/env python3
"""Static checks of the Terraform code that need no provider download.

`terraform validate` needs the providers, which cannot be downloaded everywhere (CI
sandboxes, offline machines). This script catches the mistakes validate would catch
between modules, using python-hcl2 to parse every .tf file:

* every file parses;
* every variable is declared with a `type` and a non-empty `description`, and variables
  whose names say they hold a secret are `sensitive = true`;
* every `var.X` used in a module is declared in that module, and every declared variable
  is used;
* every call of a local module passes only variables that module declares, and passes
  every variable that has no default;
* every `module.NAME.OUTPUT` reference names an output the module declares;
* an output whose value uses a sensitive variable is itself marked sensitive.

It does not check provider resource schemas, types of expressions or values: only
`terraform validate` and `terraform plan` can.

Usage: check_terraform.py [DIR]   (default: infrastructure/terraform)
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2

SECRET_NAME = re.compile(r"password|secret|token|private_key|api_key", re.IGNORECASE)
VAR_REF = re.compile(r"\bvar\.([A-Za-z_][A-Za-z0-9_-]*)")
MODULE_REF = re.compile(r"\bmodule\.([A-Za-z_][A-Za-z0-9_-]*)\.([A-Za-z_][A-Za-z0-9_-]*)")
MODULE_META_ARGS = {"source", "version", "providers", "count", "for_each", "depends_on"}


def unquote(label: str) -> str:
    """python-hcl2 keeps the quotes of block labels and string literals."""
    if len(label) >= 2 and label[0] == label[-1] == '"':
        return label[1:-1]
    return label


def interpolations(text: str) -> list[str]:
    """The `${...}` expressions inside a value, with nested braces handled.

    Plain string literals ("var.x is ...") contain no `${`, so their words are not
    mistaken for references.
    """
    found = []
    start = text.find("${")
    while start != -1:
        depth, i = 0, start + 1
        while i < len(text):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        found.append(text[start + 2 : i])
        start = text.find("${", i)
    return found


def expressions(node: Any) -> list[str]:
    """Every `${...}` expression anywhere below a parsed node."""
    if isinstance(node, str):
        return interpolations(node)
    if isinstance(node, dict):
        return [e for key, value in node.items() for e in expressions(key) + expressions(value)]
    if isinstance(node, list):
        return [e for item in node for e in expressions(item)]
    return []


def refs(pattern: re.Pattern[str], node: Any) -> set[Any]:
    found: set[Any] = set()
    for expr in expressions(node):
        for match in pattern.finditer(expr):
            found.add(match.group(1) if pattern.groups == 1 else match.groups())
    return found


@dataclass
class Module:
    path: Path
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Every top-level block except variables, as parsed.
    body: list[Any] = field(default_factory=list)


def parse(tf: Path, errors: list[str]) -> dict[str, Any]:
    try:
        with tf.open(encoding="utf-8") as handle:
            return dict(hcl2.load(handle))
    except Exception as exc:  # noqa: BLE001 - report any parser failure and go on
        errors.append(f"{tf}: does not parse: {exc}")
        return {}


def add_block(module: Module, block_type: str, block: dict[str, Any]) -> None:
    named = {unquote(name): attrs for name, attrs in block.items()}
    if block_type == "variable":
        module.variables.update(named)
        return
    module.body.append(block)
    if block_type == "output":
        module.outputs.update(named)
    elif block_type == "module":
        module.calls.update(named)


def load_module(path: Path, errors: list[str]) -> Module:
    module = Module(path)
    for tf in sorted(path.glob("*.tf")):
        for block_type, blocks in parse(tf, errors).items():
            for block in blocks if isinstance(blocks, list) else [blocks]:
                add_block(module, block_type, block)
    return module


def check_variables(module: Module, errors: list[str]) -> None:
    for name, attrs in sorted(module.variables.items()):
        where = f"{module.path}: variable {name!r}"
        if "type" not in attrs:
            errors.append(f"{where} has no type")
        if not unquote(str(attrs.get("description", ""))).strip():
            errors.append(f"{where} has no description")
        if SECRET_NAME.search(name) and attrs.get("sensitive") is not True:
            errors.append(f"{where} looks like a secret but is not sensitive = true")

    used = refs(VAR_REF, module.body)
    for name in sorted(used - module.variables.keys()):
        errors.append(f"{module.path}: var.{name} is used but not declared")
    for name in sorted(module.variables.keys() - used):
        errors.append(f"{module.path}: variable {name!r} is declared but never used")


def check_outputs(module: Module, errors: list[str]) -> None:
    sensitive_vars = {n for n, a in module.variables.items() if a.get("sensitive") is True}
    for name, attrs in sorted(module.outputs.items()):
        if not unquote(str(attrs.get("description", ""))).strip():
            errors.append(f"{module.path}: output {name!r} has no description")
        leaked = refs(VAR_REF, attrs.get("value")) & sensitive_vars
        if leaked and attrs.get("sensitive") is not True:
            errors.append(
                f"{module.path}: output {name!r} uses sensitive var(s) "
                f"{', '.join(sorted(leaked))} but is not sensitive = true"
            )


def check_calls(module: Module, modules: dict[Path, Module], errors: list[str]) -> None:
    for call, attrs in sorted(module.calls.items()):
        source = unquote(str(attrs.get("source", "")))
        if not source.startswith("."):
            continue  # registry or git module: its interface is not in this repository
        target = modules.get((module.path / source).resolve())
        where = f"{module.path}: module {call!r}"
        if target is None:
            errors.append(f"{where}: source {source!r} is not a module directory here")
            continue
        passed = {k for k in attrs if k not in MODULE_META_ARGS and k != "__is_block__"}
        for arg in sorted(passed - target.variables.keys()):
            errors.append(f"{where} passes {arg!r}, which {source} does not declare")
        required = {n for n, a in target.variables.items() if "default" not in a}
        for arg in sorted(required - passed):
            errors.append(f"{where} does not pass required variable {arg!r}")

    for call, output in sorted(refs(MODULE_REF, module.body)):
        attrs = module.calls.get(call)
        if attrs is None:
            errors.append(f"{module.path}: module.{call}.{output} refers to an undeclared module")
            continue
        source = unquote(str(attrs.get("source", "")))
        target = modules.get((module.path / source).resolve())
        if target is not None and output not in target.outputs:
            errors.append(f"{module.path}: module.{call}.{output}: {source} has no such output")


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else "infrastructure/terraform")
    if not root.is_dir():
        print(f"check_terraform: {root} is not a directory", file=sys.stderr)
        return 2

    errors: list[str] = []
    tf_files = [tf for tf in root.rglob("*.tf") if ".terraform" not in tf.parts]
    dirs = sorted({tf.parent.resolve() for tf in tf_files})
    modules = {d: load_module(d, errors) for d in dirs}
    for module in modules.values():
        check_variables(module, errors)
        check_outputs(module, errors)
        check_calls(module, modules, errors)

    cwd = Path.cwd().resolve()
    for message in errors:
        print(message.replace(f"{cwd}/", ""))
    n_vars = sum(len(m.variables) for m in modules.values())
    summary = f"{len(modules)} module(s), {n_vars} variable(s)"
    if errors:
        print(f"check_terraform: FAIL: {len(errors)} problem(s) in {summary}")
        return 1
    print(f"check_terraform: OK: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
