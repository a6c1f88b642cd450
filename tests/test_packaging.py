"""What a fresh install must provide: the console script, the namespace layout, light imports."""

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_console_script_is_registered():
    scripts = {ep.name: ep.value for ep in metadata.entry_points(group="console_scripts")}
    assert scripts.get("exp-compat") == "exp_compat.cli:main"


def test_hydra_plugins_stays_a_namespace_package():
    # Every Hydra plugin shares hydra_plugins/: an __init__.py there would hide all the others.
    assert not (ROOT / "hydra_plugins" / "__init__.py").exists()


def test_the_model_and_cli_do_not_import_skopt_or_hydra():
    # Plugin discovery and `exp-compat validate` must not pay for scikit-optimize's import (seconds).
    code = (
        "import sys, exp_compat.cli, exp_compat.space.grid, exp_compat.overrides; "
        "print(sorted(m for m in ('skopt', 'sklearn', 'hydra') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_hydra_discovers_both_sweepers(tmp_path):
    app = ROOT / "tests" / "apps" / "task_app.py"
    out = subprocess.run([sys.executable, str(app), "--info", "plugins"], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert "ExpGridSweeper" in out and "ExpGoptSweeper" in out


def test_plugin_discovery_imports_no_heavy_module():
    # Hydra imports every public module under hydra_plugins in every app; keep those light.
    code = (
        "import sys\n"
        "import hydra_plugins.exp_sweeper.config, hydra_plugins.exp_sweeper.exp_grid, hydra_plugins.exp_sweeper.exp_gopt\n"
        "print(sorted(m for m in ('skopt', 'sklearn', 'numpy', 'matplotlib', 'exp_compat') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_sweep_modules_leave_scikit_optimize_until_the_workers_are_started():
    # exp_gopt starts the launcher's workers first, then imports scikit-optimize (seconds, in parallel).
    code = (
        "import sys, hydra_plugins.exp_sweeper._gopt, hydra_plugins.exp_sweeper._grid; "
        "print(sorted(m for m in ('skopt', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _declared_requirements():
    """setup.py's install_requires and extras_require, read from its source (the installed metadata may be older)."""
    import ast

    call = next(
        node
        for node in ast.walk(ast.parse((ROOT / "setup.py").read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup"
    )
    kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg in ("install_requires", "extras_require")}

    def names(requirements):
        return {re.split(r"[<>=;!~ \[]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}

    return names(kwargs["install_requires"]), {extra: names(r) for extra, r in kwargs["extras_require"].items()}


OPTIONAL = {"nvidia-ml-py": "gpu", "submitit": "slurm"}  # imported only where those features are used, and guarded


def test_every_module_the_package_imports_is_declared():
    import ast

    known = {module: dists[0] for module, dists in metadata.packages_distributions().items()}
    known.update(pynvml="nvidia-ml-py", tomli="tomli")  # not installed here (the gpu extra; Python < 3.11)
    required, extras = _declared_requirements()
    missing = set()
    for root in ("exp_compat", "hydra_plugins"):
        for path in (ROOT / root).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                for module in {m.split(".")[0] for m in modules} - set(sys.stdlib_module_names) - {root, "exp_compat"}:
                    dist = known[module].lower().replace("_", "-")
                    if not (dist in required or dist in extras.get(OPTIONAL.get(dist, ""), ())):
                        missing.add(f"{module} ({dist}, {path.relative_to(ROOT)})")
    assert not missing, f"imported but not declared in setup.py: {sorted(missing)}"


def test_private_upstream_code_is_bounded_and_checked_in_ci():
    # _hydra_internals and _skopt_internals mirror private code of these releases: an upper bound keeps users on
    # what was checked, and .ci/run checks the marked tests again against the newest releases the bounds allow.
    text = (ROOT / "setup.py").read_text(encoding="utf-8")
    for bounded in ('"hydra-core>=1.3.2,<1.4"', '"scikit-optimize>=0.10.2,<0.11"', '"scikit-learn>=1.6,<2"', '"numpy>=1.24,<3"'):
        assert bounded in text
    [selection] = re.findall(r'pytest -m "(upstream[^"]*)"', (ROOT / ".ci" / "run").read_text(encoding="utf-8"))
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", selection, "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout
    collected = {line.split("::")[0] for line in out.splitlines() if "::" in line}
    # never "no tests collected" (pytest's exit 5): the composer, the proposer and a real run of each sweeper
    assert {"tests/test_compose.py", "tests/test_proposer.py", "tests/test_exp_gopt.py", "tests/test_exp_grid.py"} <= collected
