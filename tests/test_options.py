"""Every option's wrong values, and what a sweep tells its user: real Hydra multiruns in subprocesses, as typed."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest
from test_apps import ROOT, readme_block

BIG = "1180591620717411303424"  # 2**70: more than any seed or count a sweep can use

BAD_VALUES = [  # (sweeper, option as typed, what the one line names)
    ("exp_gopt", "hydra.sweeper.seed=-1", "hydra.sweeper.seed must be a whole number from 0 to 4294967295, got -1"),
    ("exp_gopt", f"hydra.sweeper.seed={BIG}", f"hydra.sweeper.seed must be a whole number from 0 to 4294967295, got {BIG}"),
    ("exp_grid", "hydra.sweeper.seed=-1", "hydra.sweeper.seed must be a whole number from 0 to 4294967295, got -1"),
    ("exp_grid", "hydra.sweeper.name=" + "n" * 300, "hydra.sweeper.name must be a plain file name"),
    ("exp_gopt", "hydra.sweeper.name=" + "n" * 300, "of at most 100 characters"),
    ("exp_grid", "hydra.sweeper.max_failure_rate=nan", "hydra.sweeper.max_failure_rate must be a fraction from 0 to 1, got nan"),
    ("exp_grid", "hydra.sweeper.runs=0", "hydra.sweeper.runs must be a whole number >= 1, got 0"),
    ("exp_grid", "hydra.sweeper.max_batch_size=1000000", "hydra.sweeper.max_batch_size must be a whole number from 1 to 10000"),
    ("exp_gopt", "hydra.sweeper.n_jobs=1000000", "hydra.sweeper.n_jobs must be a whole number from 1 to 10000, got 1000000"),
    ("exp_gopt", "hydra.sweeper.n_initial_points=0", "hydra.sweeper.n_initial_points must be a whole number >= 1, got 0"),
    ("exp_gopt", "hydra.sweeper.kappa=inf", "hydra.sweeper.kappa must be a number >= 0, got inf"),
    ("exp_gopt", "hydra.sweeper.xi=-1", "hydra.sweeper.xi must be a number >= 0, got -1.0"),
    ("exp_gopt", "hydra.sweeper.min_resource=nan", "hydra.sweeper.min_resource must be a step > 0, got nan"),
    ("exp_grid", "hydra.sweeper.n_warmup_steps=inf", "hydra.sweeper.n_warmup_steps must be a step >= 0, got inf"),
    ("exp_gopt", "hydra.sweeper.objective=", "hydra.sweeper.objective='': a key is empty"),
]


@pytest.mark.parametrize("sweeper, option, words", BAD_VALUES, ids=[f"{s}-{o.split('=')[0][14:]}" for s, o, _ in BAD_VALUES])
def test_a_wrong_value_of_any_option_is_one_line_naming_it_before_any_job(tmp_path, hydra_app, sweeper, option, words):
    space = "+x=range(0,2)" if sweeper == "exp_grid" else "+x=interval(0,1)"
    done = hydra_app(f"hydra/sweeper={sweeper}", space, "hydra.sweeper.n_trials=2" if sweeper == "exp_gopt" else "+y=1", option)
    assert done.returncode == 1 and words in done.stderr and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / "sweep").exists()


@pytest.mark.parametrize("sweeper", ["exp_grid", "exp_gopt"])
def test_hyperband_to_an_infinite_step_is_refused(tmp_path, hydra_app, sweeper):
    space = "+x=range(0,2)" if sweeper == "exp_grid" else "+x=interval(0,1)"
    done = hydra_app(f"hydra/sweeper={sweeper}", space, "hydra.sweeper.pruner=hyperband", "hydra.sweeper.max_resource=inf")
    assert done.returncode == 1 and "hydra.sweeper.max_resource must be a step > 0, got inf" in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and not (tmp_path / "sweep").exists()


@pytest.mark.parametrize(
    "change, words",
    [
        ([], "hydra.sweeper.pruner was asha, now null"),
        (["hydra.sweeper.pruner=median"], "hydra.sweeper.pruner was asha, now median"),
        (["hydra.sweeper.pruner=asha", "hydra.sweeper.min_resource=2"], "hydra.sweeper.min_resource was 1.0, now 2.0"),
    ],
    ids=["dropped", "changed", "min_resource"],
)
def test_resume_with_another_pruner_names_the_option_and_both_values(tmp_path, hydra_app, change, words):
    space = ("hydra/sweeper=exp_grid", "+x=range(0,2)", "hydra.sweeper.max_resource=9")
    assert hydra_app(*space, "hydra.sweeper.pruner=asha").returncode == 0
    done = hydra_app(*space, *change, "hydra.sweeper.resume=true")
    assert done.returncode == 1 and f"cannot resume: {words} (changed since" in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr


def test_a_sweep_with_pruned_and_failed_jobs_counts_each_kind_and_never_says_every_job_failed(tmp_path, hydra_app):
    done = hydra_app("hydra/sweeper=exp_grid", "+x=range(0,8)", "+behave.prune=true", "+behave.fail_if=0")
    assert "8 jobs finished: 0 completed, 7 pruned, 1 failed" in done.stdout + done.stderr, done.stdout[-2000:]
    assert done.returncode == 1 and "no job completed" in done.stderr and "every job failed" not in done.stderr
    assert "Traceback" not in done.stderr


def test_the_quick_start_says_what_runs_shows_the_parameters_only_and_where_the_best_is(tmp_path):
    """The README's first command, as a new user runs it (fewer trials): the first line says how the trials run and
    how to run them in parallel, each launch line holds the trial's parameters and what the user typed only, the last names both files."""
    command = readme_block("## Two commands")[0].split(" && ")[-1]
    argv = [sys.executable, *shlex.split(command)[1:], "hydra.sweeper.n_trials=3", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    first = next(line for line in lines if "exp_gopt" in line)
    assert "one trial at a time" in first and "hydra/launcher=exp_local" in first and "asynchronous interface" not in first, first
    launched = [line.split(" : ", 1)[1] for line in lines if re.search(r"#\d+ : ", line)]
    typed = r"\+\+x=\S+ \+exp\.params=examples/basic\.conf"  # the trial's parameter, then what the user typed
    assert len(launched) == 3 and all(re.fullmatch(typed, overrides) for overrides in launched), launched
    assert "opt_configurations.csv" in lines[-1] and "optimization_results.yaml" in lines[-1], lines[-1]
