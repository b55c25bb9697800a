"""The house's rules, checked: layers (``.importlinter``), no import cycles, no reaching into
another module's ``_private`` names, and the engine imports without streamlit.

``make test`` runs ``lint-imports`` before pytest; the test here proves that contract can fail.
"""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")
# torch keeps a module's hooks in private dicts and has no public way to list them; the
# probes read them only to prove that they removed every hook they added.
TORCH_PRIVATES = {"_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks"}


def sources() -> list[Path]:
    return [*ROOT.glob("resnet_viz/**/*.py"), *ROOT.glob("pages/*.py"), ROOT / "app.py"]


def test_no_import_cycles():
    graph = grimp.build_graph("resnet_viz")
    modules = sorted(graph.modules)
    edges = {m: graph.find_modules_directly_imported_by(m) & set(modules) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(m: str) -> None:               # Tarjan's strongly connected components
        index[m] = low[m] = len(index)
        stack.append(m)
        for n in edges[m]:
            if n not in index:
                visit(n)
                low[m] = min(low[m], low[n])
            elif n in stack:
                low[m] = min(low[m], index[n])
        if low[m] == index[m]:
            comp = []
            while True:
                n = stack.pop()
                comp.append(n)
                if n == m:
                    break
            # a package's __init__ importing its own child is not a cycle of two modules
            if len(comp) > 1:
                cycles.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for m in modules:
        if m not in index:
            visit(m)
    assert cycles == [], f"import cycles: {cycles}"


def defined_privates(tree: ast.AST) -> set[str]:
    """Private names a file defines itself: functions, classes, attributes it assigns."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return {n for n in names if n.startswith("_")}


def private_reaches(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    own = defined_privates(tree) | TORCH_PRIVATES
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            found += [f"{path.name}:{node.lineno} from {node.module} import {a.name}"
                      for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
        elif (isinstance(node, ast.Attribute) and node.attr.startswith("_")
              and not node.attr.startswith("__") and node.attr not in own):
            found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    return found


def test_no_module_reaches_into_another_modules_private_names():
    found = [hit for path in sources() for hit in private_reaches(path)]
    assert found == []


def test_the_private_name_check_can_fail(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from resnet_viz.serve.store import _secret\nimport x\nx.queue._lock\n")
    assert private_reaches(bad) == ["bad.py:1 from resnet_viz.serve.store import _secret",
                                    "bad.py:3 x.queue._lock"]


def test_the_layer_contract_fails_when_nets_imports_streamlit(tmp_path):
    """The contract really bites: a copy of the package with ``import streamlit`` in nets/."""
    shutil.copytree(ROOT / "resnet_viz", tmp_path / "resnet_viz",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    run = lambda: subprocess.run([str(LINT), "--no-cache"], cwd=tmp_path, env=env,  # noqa: E731
                                 capture_output=True, text=True, timeout=600)
    clean = run()
    assert clean.returncode == 0, clean.stdout + clean.stderr
    blocks = tmp_path / "resnet_viz" / "nets" / "blocks.py"
    blocks.write_text("import streamlit  # a wrong-way import\n" + blocks.read_text())
    broken = run()
    assert broken.returncode != 0
    assert "resnet_viz.nets.blocks -> streamlit" in broken.stdout


@pytest.mark.parametrize("package", ["spec", "validation", "jsonsafe", "labels", "nets", "data", "train",
                                     "analysis", "figures", "lessons", "serve", "export", "cli"])
def test_the_engine_imports_with_streamlit_blocked(package):
    code = ("import importlib, pkgutil, sys; sys.modules['streamlit'] = None\n"
            f"import resnet_viz.{package} as p\n"
            "for m in pkgutil.walk_packages(getattr(p, '__path__', []), p.__name__ + '.'):\n"
            "    importlib.import_module(m.name)\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=300)
