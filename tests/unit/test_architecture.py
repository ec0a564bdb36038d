"""The shape the code keeps: no import cycles, packages importing one way, no private names
borrowed across modules, and money booked by one function only."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "stacklo"


@cache
def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if "node_modules" in path.parts:
            continue
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


@cache
def imports() -> dict[str, set[tuple[str, str]]]:
    """module -> {(imported module, name)}, every import counted (type-checking and local
    ones too: a cycle hidden behind TYPE_CHECKING is still a cycle in the design)."""
    graph: dict[str, set[tuple[str, str]]] = {}
    for module, path in modules().items():
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        edges: set[tuple[str, str]] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                for alias in node.names:
                    edges.add((base, alias.name))
            elif isinstance(node, ast.Import):
                edges.update((alias.name, "") for alias in node.names)
        graph[module] = edges
    return graph


def internal_edges() -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = {}
    for module, edges in imports().items():
        targets = set()
        for base, name in edges:
            if f"{base}.{name}" in known:
                targets.add(f"{base}.{name}")
            elif base in known:
                targets.add(base)
        graph[module] = targets - {module}
    return graph


def test_no_module_imports_itself_back() -> None:
    graph = internal_edges()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in graph[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    assert cycles == []


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


# Which packages may import which (the rest of each row's package is its own business).
MAY_NOT_IMPORT = {
    "stacklo.domain": (
        "stacklo.data",
        "stacklo.schema",
        "stacklo.resolvers",
        "stacklo.api",
        "stacklo.web",
        "stacklo.auth",
        "stacklo.integrations",
        "stacklo.realtime",
        "stacklo.app",
    ),
    "stacklo.schema": ("stacklo.resolvers", "stacklo.api", "stacklo.web", "stacklo.app"),
    "stacklo.resolvers": ("stacklo.api", "stacklo.web", "stacklo.app", "stacklo.data"),
    "stacklo.data": ("stacklo.schema", "stacklo.resolvers", "stacklo.api", "stacklo.web"),
}
DOMAIN_MAY_NOT_USE = (
    "sqlalchemy",
    "strawberry",
    "starlette",
    "asyncpg",
    "httpx",
    "redis",
    "casbin",
)


def test_packages_import_one_way_and_the_domain_touches_no_framework() -> None:
    wrong = []
    for module, edges in imports().items():
        package = _package(module)
        for base, _ in edges:
            if base.startswith(MAY_NOT_IMPORT.get(package, ())):
                wrong.append(f"{module} imports {base}")
            if package == "stacklo.domain" and base.split(".")[0] in DOMAIN_MAY_NOT_USE:
                wrong.append(f"{module} imports {base}")
    assert wrong == []


def test_only_the_api_module_imports_resolvers() -> None:
    importers = {
        module
        for module, edges in imports().items()
        if any(base.startswith("stacklo.resolvers") for base, _ in edges)
        and not module.startswith("stacklo.resolvers")
    }
    assert importers == {"stacklo.api"}


def test_no_private_name_is_imported_from_another_module() -> None:
    borrowed = [
        f"{module} imports {name} from {base}"
        for module, edges in imports().items()
        for base, name in edges
        if base.startswith("stacklo") and name.startswith("_") and not name.startswith("__")
    ]
    assert borrowed == []


# What books money: only the movement path calls these (see stacklo/domain/movements.py);
# ``apply_postings`` is the rule the booking statement follows, and no use case applies it.
BOOKING = ("apply_postings", "hold", "release")


def test_money_is_booked_by_the_one_movement_path() -> None:
    callers = set()
    for module, path in modules().items():
        if not module.startswith("stacklo.domain") or module == "stacklo.domain.ledger":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in BOOKING:
                    callers.add(module)
                if name == "book" and isinstance(func, ast.Attribute):
                    owner = func.value
                    if isinstance(owner, ast.Attribute) and owner.attr == "ledger":
                        callers.add(module)
    assert callers == {"stacklo.domain.movements"}
