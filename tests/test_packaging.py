"""What a fresh install must provide: the console script, the namespace layout, light imports."""
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
    code = ("import sys, exp_compat.cli, exp_compat.grid, exp_compat.overrides; "
            "print(sorted(m for m in ('skopt', 'sklearn', 'hydra') if m in sys.modules))")
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
    code = ("import sys, hydra_plugins.exp_sweeper._gopt, hydra_plugins.exp_sweeper._grid; "
            "print(sorted(m for m in ('skopt', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
