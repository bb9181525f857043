"""The package's shape: no module reaches into another's private names; no import cycles.

Both are read from the source (AST), so a new module is checked the day it is added.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "atdarchive"
# Private names of the standard library or third-party packages, used on purpose.
ALLOWED_PRIVATE = {"_exit", "_getframe", "_asdict", "_replace", "_fields"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(module: str, tree: ast.Module, path: Path) -> set[str]:
    """Every atdarchive module this one imports, anywhere (top, functions, TYPE_CHECKING)."""
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("atdarchive")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            if base.startswith("atdarchive"):
                found.add(base)
                found |= {f"{base}.{a.name}" for a in node.names}
    return found


def test_no_module_uses_another_modules_private_names():
    offences = []
    for path in _modules().values():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("atdarchive"):
                offences += [f"{path.name}:{node.lineno} imports {node.module}.{a.name}"
                             for a in node.names
                             if a.name.startswith("_") and not a.name.startswith("__")]
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                    and not node.attr.startswith("__") and node.attr not in ALLOWED_PRIVATE):
                owner = node.value
                if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                    continue
                offences.append(f"{path.relative_to(PACKAGE)}:{node.lineno} uses "
                                f"{ast.unparse(owner)}.{node.attr}")
    assert offences == []


def test_no_import_cycles():
    modules = _modules()
    graph = {}
    for module, path in modules.items():
        deps = _imports(module, ast.parse(path.read_text()), path)
        graph[module] = {d for d in deps if d in modules and d != module
                         and not module.startswith(d + ".")}  # a package's own __init__
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append(" -> ".join([*stack[stack.index(dep):], dep]))
            elif dep not in state:
                visit(dep, [*stack, dep])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_checks_see_what_they_check():
    """The walkers are not vacuous: they read every module and find imports."""
    modules = _modules()
    assert "atdarchive.context" in modules and "atdarchive.cli" in modules
    context = modules["atdarchive.context"]
    assert "atdarchive.store" in _imports("atdarchive.context", ast.parse(context.read_text()),
                                          context)
