"""The layout is the architecture (DESIGN.md §3): which package may import which, checked over the source.

A wrong import fails here, in `make test`, before review. Imports under `if TYPE_CHECKING:` count too: a
dependency a type needs is a dependency.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "skycart"

# What each part of skycart may import, besides itself. The kernel (settings, errors, money) is below all.
KERNEL = {"config", "errors", "money"}
ALLOWED: dict[str, set[str]] = {
    "config": set(),
    "money": set(),
    "errors": {"config"},
    "platform": KERNEL,
    # The request engine knows no domain: the airline is handed to it.
    "metering": KERNEL | {"platform"},
    # Domains depend one way: airlines <- catalog <- flights <- orders.
    "airlines": KERNEL | {"platform"},
    # Any domain may record an event (the outbox row is written in the caller's transaction).
    "events": KERNEL | {"platform", "airlines"},
    "catalog": KERNEL | {"platform", "airlines"},
    "flights": KERNEL | {"platform", "airlines", "catalog"},
    "orders": KERNEL | {"platform", "airlines", "catalog", "flights", "events"},
    # Billing reads usage (metering's tables) and orders, never writes them; limits read billing's plan terms.
    "billing": KERNEL | {"platform", "airlines", "metering", "orders", "events"},
    "limits": KERNEL | {"platform", "airlines", "metering", "billing", "events"},
    # The console and storefront, through services.
    "web": KERNEL | {"platform", "airlines", "catalog", "flights", "orders", "billing", "limits", "events"},
}
# Composition roots: they put the parts together, so they may import any of them.
ROOTS = {"app", "asgi", "cli", "demo", "lifecycle", "models"}
# Modules of the web package that may reach its own storage: the console's sessions.
WEB_STORAGE = {"skycart.web.sessions", "skycart.web.repository"}


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        if "migrations" in parts:  # Alembic revisions are frozen history, not code that imports the app
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found.append((name, path))
    return found


def _imports(name: str, path: Path) -> set[str]:
    """Every module `name` imports, absolute, whether at the top, in a function or under TYPE_CHECKING."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            # `from skycart.billing import service` imports the module skycart.billing.service
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _part(module: str) -> str | None:
    """The top-level part of skycart a module belongs to (`skycart.billing.plans` -> `billing`)."""
    parts = module.split(".")
    if parts[0] != "skycart" or len(parts) < 2:
        return None
    return parts[1]


def _is_module(name: str) -> bool:
    return (SRC / Path(*name.split("."))).with_suffix(".py").exists() or (SRC / Path(*name.split("."))).is_dir()


def violations() -> list[str]:
    wrong = []
    for name, path in _modules():
        own = _part(name)
        if own is None:
            continue
        for imported in sorted(_imports(name, path)):
            if imported.split(".")[0] == "skycart_deploy":
                wrong.append(f"{name} imports {imported}: nothing in skycart imports skycart_deploy")
                continue
            target = _part(imported)
            if target is None or target == own or not _is_module(imported):
                continue
            if own in ROOTS:
                continue
            if target in ROOTS:
                wrong.append(f"{name} imports {imported}: only the entry points import a composition root")
            elif target not in ALLOWED.get(own, set()):
                wrong.append(f"{name} imports {imported}: {own} may import only {sorted(ALLOWED.get(own, set()))}")
        if own == "web" and name not in WEB_STORAGE:
            for imported in _imports(name, path):
                leaf = imported.rsplit(".", 1)[-1]
                if leaf in ("repository", "endpoints") and _part(imported) and _is_module(imported):
                    wrong.append(f"{name} imports {imported}: the web package calls services only")
    return wrong


def test_every_import_follows_the_dependency_directions() -> None:
    assert violations() == []


def test_the_rules_catch_a_wrong_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check is not vacuous: a platform module importing a domain, and a page importing a repository,
    are both reported."""
    fake = tmp_path / "skycart"
    for part in ("platform", "flights", "web"):
        (fake / part).mkdir(parents=True)
        (fake / part / "__init__.py").write_text("")
    (fake / "__init__.py").write_text("")
    (fake / "flights" / "repository.py").write_text("")
    (fake / "platform" / "runtime.py").write_text("from skycart.flights import repository\n")
    (fake / "web" / "console.py").write_text("from skycart.flights import repository as flights\n")
    monkeypatch.setattr(inspect.getmodule(test_the_rules_catch_a_wrong_import), "SRC", tmp_path)
    monkeypatch.setattr(inspect.getmodule(test_the_rules_catch_a_wrong_import), "PACKAGE", fake)
    found = violations()
    assert any(line.startswith("skycart.platform.runtime imports skycart.flights") for line in found), found
    assert any("web package calls services only" in line for line in found), found
