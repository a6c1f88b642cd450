"""The linters and the type checker, run with the suite so that CI (and every developer's pytest) runs them.

Their settings are in pyproject.toml; their versions are pinned in setup.py's test extra, so that a new
release's new rules never fail a build that changed nothing.
"""

import ast
import graphlib
import subprocess
import sys
from pathlib import Path
from typing import Dict, Set

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["-p", "exp_compat", "-p", "hydra_plugins.exp_sweeper", "-p", "hydra_plugins.exp_launcher"]


@pytest.mark.parametrize(
    "command",
    [["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy", *PACKAGES]],
    ids=["ruff-lint", "ruff-format", "mypy"],
)
def test_the_code_passes(command):
    done = subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]


def _exp_compat_imports() -> Dict[str, Set[str]]:
    """Every ``exp_compat`` module and the modules it imports, wherever the import stands: one inside a
    function or under ``TYPE_CHECKING`` still makes the two modules depend on each other."""
    paths = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): path
        for path in (ROOT / "exp_compat").rglob("*.py")
    }
    imports: Dict[str, Set[str]] = {}
    for module, path in paths.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        found = imports[module] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = package.rsplit(".", node.level - 1)[0] if node.level else ""
                source = ".".join(part for part in (base, node.module) if part)
                # ``from package import module`` imports the module, ``from module import name`` the module.
                found.update(f"{source}.{alias.name}" if f"{source}.{alias.name}" in paths else source for alias in node.names)
    return imports


def test_exp_compat_has_no_circle_of_imports():
    imports = _exp_compat_imports()
    graph = {module: {m for m in found if m in imports and m != module} for module, found in imports.items()}
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as error:
        pytest.fail(f"a circle of imports: {' -> '.join(reversed(error.args[1]))}")


def test_exp_compat_never_imports_the_plugins():
    upward = {f"{module} imports {m}" for module, found in _exp_compat_imports().items() for m in found if m.startswith("hydra_plugins")}
    assert not upward, sorted(upward)
