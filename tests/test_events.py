"""The write core's shape: services import each other as a tree (no cycle, counting
imports inside functions), side effects are subscribed only by rxcrm.hooks.wire(), and a
service that publishes before the wiring fails loudly instead of silently skipping the
rules, the notifications and the audit."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from rxcrm import hooks
from rxcrm.services import events

SERVICES = Path(__file__).resolve().parents[1] / "rxcrm" / "services"


def _imports(path: Path) -> set[str]:
    """Services a module imports anywhere in it (top level or inside a function)."""
    names = {p.stem for p in SERVICES.glob("*.py")}
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level == 1 and not mod:  # from . import a, b
                found |= {a.name for a in node.names if a.name in names}
            elif node.level == 1:  # from .a import x
                found.add(mod.split(".")[0])
            elif mod.startswith("rxcrm.services."):
                found.add(mod.split(".")[2])
            elif mod == "rxcrm.services":
                found |= {a.name for a in node.names if a.name in names}
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("rxcrm.services."):
                    found.add(a.name.split(".")[2])
    return found - {path.stem}


def test_services_import_each_other_as_a_tree():
    graph = {p.stem: _imports(p) for p in SERVICES.glob("*.py") if p.stem != "__init__"}
    state: dict[str, int] = {}  # 1 = on the path, 2 = done
    path: list[str] = []

    def visit(mod: str) -> None:
        state[mod] = 1
        path.append(mod)
        for dep in sorted(graph.get(mod, ())):
            if state.get(dep) == 1:
                cycle = path[path.index(dep):] + [dep]
                pytest.fail("import cycle among services: " + " → ".join(cycle))
            if dep not in state:
                visit(dep)
        path.pop()
        state[mod] = 2

    for mod in sorted(graph):
        if mod not in state:
            visit(mod)


def test_the_leaf_modules_import_no_other_service():
    for leaf in ("entities", "events", "context", "errors"):
        assert _imports(SERVICES / f"{leaf}.py") <= set(), leaf
    assert _imports(SERVICES / "records.py") <= {"context", "entities", "errors"}


def test_importing_the_services_subscribes_nothing():
    """Listeners are wired by rxcrm.hooks.wire() only — never as a side effect of an import."""
    code = ("import importlib, pkgutil, rxcrm.services as pkg\n"
            "from rxcrm.services import events\n"
            "for m in pkgutil.iter_modules(pkg.__path__): importlib.import_module('rxcrm.services.' + m.name)\n"
            "print(sum(len(events.subscribers(n)) for n in events.EVENTS))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"


def test_publishing_before_the_wiring_fails_loudly():
    code = ("from rxcrm.services import events\n"
            "try:\n    events.publish(None, events.STAGE_CHANGED)\nexcept events.NotWired:\n    print('refused')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "refused"


def test_wire_subscribes_exactly_the_hooks():
    hooks.wire()
    hooks.wire()  # idempotent
    for name in events.EVENTS:
        assert events.subscribers(name) == hooks.HOOKS[name], name


def test_services_import_each_other_at_the_top_only():
    """An import inside a function hides a dependency (and used to hide a cycle)."""
    hidden = []
    for path in SERVICES.glob("*.py"):
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(fn):
                    if isinstance(node, ast.ImportFrom) and (node.level == 1 or
                                                             (node.module or "").startswith("rxcrm.services")):
                        hidden.append(f"{path.name}:{node.lineno}")
    assert hidden == [], hidden
