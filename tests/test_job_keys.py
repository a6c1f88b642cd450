"""What exp_grid passes to a job besides its parameters: nothing in the app's config unless asked for.

An app with its own ``id`` and ``run`` keys (tests/apps/keys_app.py) is swept as
users type it; each job records its config and its EXP_CONFIG_ID/EXP_RUN.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import APPS, received_configs, run


def sweep(tmp_path: Path, *overrides: str):
    sweep_dir = tmp_path / "sweep"
    done = run(
        [sys.executable, str(APPS / "keys_app.py"), "-m", "hydra/sweeper=exp_grid", "x=1,2", f"hydra.sweep.dir={sweep_dir}", *overrides],
        cwd=tmp_path,
    )
    return done, sweep_dir


def test_an_apps_own_id_and_run_keys_reach_it_untouched_and_the_ids_travel_in_the_environment(tmp_path):
    done, sweep_dir = sweep(tmp_path, "hydra.sweeper.runs=2")
    assert done.returncode == 0, done.stderr
    received = received_configs(sweep_dir)
    assert len(received) == 4
    for record in received:
        assert {k: v for k, v in record["config"].items() if k != "x"} == {"id": 7, "run": {"name": "baseline", "seed": 3}}
    ids = sorted((r["config"]["x"], r["env"]["EXP_CONFIG_ID"], r["env"]["EXP_RUN"]) for r in received)
    assert ids == [(1, "0", "1"), (1, "0", "2"), (2, "1", "1"), (2, "1", "2")]
    # one line tells the user that repeats get identical configs
    assert "receive identical configs" in done.stdout


def test_keys_asked_for_are_passed_in_the_config(tmp_path):
    done, sweep_dir = sweep(tmp_path, "hydra.sweeper.id_key=exp_id", "hydra.sweeper.run_key=exp.run_number")
    assert done.returncode == 1 and "hydra.sweeper.run_key='exp.run_number'" in done.stderr  # exp is the sweep's
    done, sweep_dir = sweep(tmp_path, "hydra.sweeper.id_key=exp_id", "hydra.sweeper.run_key=meta.run_number")
    assert done.returncode == 0, done.stderr
    got = sorted((r["config"]["x"], r["config"]["exp_id"], r["config"]["meta"]["run_number"]) for r in received_configs(sweep_dir))
    assert got == [(1, 0, 1), (2, 1, 1)]


@pytest.mark.parametrize(
    "options, words",
    [
        (["hydra.sweeper.id_key=id"], ["hydra.sweeper.id_key='id'", "already has 'id'", "null"]),
        (["hydra.sweeper.run_key=run.seed"], ["hydra.sweeper.run_key='run.seed'", "already has 'run.seed'"]),
        (["hydra.sweeper.id_key=x"], ["hydra.sweeper.id_key='x'", "swept parameter 'x'"]),
        (["hydra.sweeper.id_key=k", "hydra.sweeper.run_key=k"], ["id_key and run_key are both 'k'"]),
        (["hydra.sweeper.id_key=hydra.job.id"], ["hydra.sweeper.id_key='hydra.job.id'", "outside hydra and exp"]),
        (["hydra.sweeper.id_key='a b'"], ["hydra.sweeper.id_key='a b'", "dotted name"]),
        (["hydra.sweeper.config_ids=[]"], ["config_ids is empty"]),
    ],
)
def test_keys_that_would_overwrite_something_are_refused_before_anything_is_written(tmp_path, options, words):
    done, sweep_dir = sweep(tmp_path, *options)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and all(w in done.stderr for w in words), done.stderr
    assert not sweep_dir.exists() or not any(sweep_dir.iterdir())
