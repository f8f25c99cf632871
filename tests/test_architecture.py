"""The shape of the house, checked so nobody has to remember it:

- core imports neither bot nor prep; bot and prep never import each other;
- no import cycles between modules (lazy imports inside functions count too: a cycle is a cycle);
- bot and prep use core through its front door (`core`) or the submodules it documents.

Imports under `if TYPE_CHECKING:` are left out: they never run.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]
PACKAGES = ("core", "bot", "prep")
FORBIDDEN = {"core": {"bot", "prep"}, "bot": {"prep"}, "prep": {"bot"}}
# What bot and prep may import from core: the front door, the entry points' plumbing, and the runtime
# layer (the ONNX folder's writer, `prep export-onnx`, sits beside its reader).
CORE_PUBLIC = {"core", "core.cli", "core.encoders"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for package in PACKAGES for p in (REPO / package).rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, known: set[str]) -> set[str]:
    """The project modules `path` imports (`from a.b import c` counts as a.b.c when that is a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = {
        id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and _is_type_checking(node) for n in ast.walk(node)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name in known}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(path, known) - {name} for name, path in modules.items()}


def test_layers_point_one_way(graph: dict[str, set[str]]) -> None:
    wrong = [
        f"{module} imports {target}"
        for module, targets in graph.items()
        for target in targets
        if target.split(".")[0] in FORBIDDEN[module.split(".")[0]]
    ]
    assert not wrong, wrong


def test_bot_and_prep_use_cores_public_api(graph: dict[str, set[str]]) -> None:
    wrong = [
        f"{module} imports {target}"
        for module, targets in graph.items()
        if module.split(".")[0] in ("bot", "prep")
        for target in targets
        if target.startswith("core") and target not in CORE_PUBLIC
    ]
    assert not wrong, wrong


def _names_imported_from(module: str, packages: tuple[str, ...]) -> set[str]:
    names: set[str] = set()
    for package in packages:
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module == module and node.level == 0:
                    names |= {alias.name for alias in node.names}
    return names


def test_the_front_door_exports_what_bot_and_prep_use_and_nothing_else() -> None:
    import core

    unused = set(core.__all__) - _names_imported_from("core", ("bot", "prep"))
    assert not unused, f"exported by core but used by neither bot nor prep: {sorted(unused)}"


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path of modules, or None (iterative DFS with colours)."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    for root in sorted(graph):
        if root in state:
            continue
        stack = [(root, iter(sorted(graph[root])))]
        path = [root]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                return path[path.index(child) :] + [child]
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(sorted(graph[child]))))
                path.append(child)
    return None


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    assert _cycle(graph) is None, " → ".join(_cycle(graph) or [])


def test_the_checker_finds_what_it_must() -> None:
    """The rules above cannot pass vacuously."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
    modules = _modules()
    assert {"core", "core.service", "bot.app", "prep.clean"} <= set(modules)
    assert "core.service" in _imports(modules["core"], set(modules))


def test_every_third_party_package_the_code_imports_is_declared() -> None:
    """Issue #35: prep/wikimedia.py imported httpx, which only came through python-telegram-bot."""
    import sys
    import tomllib
    from importlib.metadata import packages_distributions

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = {
        re.split(r"[\[<>=!~ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        for requirement in project["dependencies"]
        + [r for extra in ("prep", "scale") for r in project["optional-dependencies"][extra]]
    }
    providers = packages_distributions()
    undeclared = {}
    for path in _modules().values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for top in {name.split(".")[0] for name in names} - set(PACKAGES) - set(sys.stdlib_module_names):
                distributions = {d.lower().replace("_", "-") for d in providers.get(top, [top])}
                if not distributions & declared:
                    undeclared.setdefault(top, path.relative_to(REPO).as_posix())
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"
