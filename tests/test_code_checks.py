"""The linters and the type checker, run with the suite so that CI (and every developer's pytest) runs them.

Their settings are in pyproject.toml; their versions are pinned in setup.py's test extra, so that a new
release's new rules never fail a build that changed nothing.
"""

import subprocess
import sys
from pathlib import Path

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
