"""The exp-compat console script, run as a user runs it, and its output handed to real Hydra."""

from __future__ import annotations

import shlex
import sys
from collections import Counter
from pathlib import Path
from typing import Optional

import pytest
import yaml
from conftest import APPS, received_configs, run, typed
from hydra.core.override_parser.overrides_parser import OverridesParser
from test_space import BAD_INPUTS, GOOD

from exp_compat import Space

GRID = """
[x]
type = "range"
bounds = [-1, 1]

[n]
type = "range"
bounds = [0, 4]
step = 2
dtype = "int"

[model.lr]
type = "random"
bounds = [1e-4, 1e-1]
prior = "log-uniform"
n = 2

[model.opt]
type = "list"
value = ["adam", "sgd"]

[flag]
type = "list"
value = [true, false]

[tag]
type = "value"
value = "run 1, final"
"""


def listing(path: Path):
    return sorted((p.relative_to(path), p.stat().st_mtime_ns) for p in path.rglob("*"))


def test_validate_summarises_a_good_space(tmp_path, exp_compat):
    (tmp_path / "space.conf").write_text(GOOD, encoding="utf-8")
    done = exp_compat("validate", "space.conf")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "4 parameters" in out and "model.lr" in out and "log-uniform" in out
    assert "grid (EXP runner rules): 40 configurations" in out
    assert "3 dimensions (x Real, model.lr Real, model.opt Categorical), 1 fixed" in out


@pytest.mark.parametrize("case", [k for k, v in BAD_INPUTS.items() if v[1] is not None])
def test_bad_input_exits_2_with_one_clear_line_and_writes_nothing(tmp_path, exp_compat, case):
    text, expected = BAD_INPUTS[case]
    (tmp_path / "space.conf").write_text(text, encoding="utf-8")
    before = listing(tmp_path)
    for command in (["validate", "space.conf"], ["convert", "space.conf"], ["convert", "space.conf", "--to", "optuna"]):
        done = exp_compat(*command)
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr and done.stdout == ""
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("exp-compat: error: space.conf"), done.stderr
        assert all(words in lines[0] for words in expected)
    assert listing(tmp_path) == before


@pytest.mark.parametrize(
    "args,words",
    [
        (["validate", "missing.conf"], "no such file"),
        (["validate", "."], "is a directory"),
        (["convert", "empty.conf"], "defines no parameters"),
        (["convert", "ok.conf", "--to", "optuna", "--runs", "2"], "--runs applies to grids"),
        (["convert", "ok.conf", "--runs", "0"], "runs must be"),
    ],
)
def test_usage_errors(tmp_path, exp_compat, args, words):
    (tmp_path / "empty.conf").write_text("", encoding="utf-8")
    (tmp_path / "ok.conf").write_text(GOOD, encoding="utf-8")
    done = exp_compat(*args)
    assert done.returncode == 2 and words in done.stderr and "Traceback" not in done.stderr


def test_bad_flags_exit_2(exp_compat):
    done = exp_compat("convert", "x.conf", "--to", "nevergrad")
    assert done.returncode == 2 and "invalid choice" in done.stderr
    done = exp_compat("convert", "x.conf", "--seed", "abc")
    assert done.returncode == 2 and "whole number" in done.stderr


def test_help_everywhere(exp_compat):
    for args in (["--help"], ["validate", "--help"], ["convert", "--help"]):
        done = exp_compat(*args)
        assert done.returncode == 0 and "usage: exp-compat" in done.stdout
    assert "--to" in exp_compat("convert", "--help").stdout


def expected_grid(tmp_path: Path, seed: int, runs: Optional[int]):
    """The EXP grid as jobs receive it: no id (Hydra's basic sweeper cannot number configurations), run only with --runs."""
    grid = Space.from_file(tmp_path / "grid.conf").grid(runs=runs or 1, seed=seed)
    configs = []
    for row in grid:
        row.pop("id")
        if runs is None:
            row.pop("run")
        nested = {}
        for key, value in row.items():
            *parents, leaf = key.split(".")
            node = nested
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        configs.append(nested)
    return Counter(repr(typed(c)) for c in configs)


def multirun(tmp_path: Path, *args: str):
    sweep_dir = tmp_path / "multirun"
    done = run([sys.executable, str(APPS / "dump_app.py"), "-m", *args, f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return received_configs(sweep_dir)


def test_basic_yaml_gives_exactly_the_exp_grid_in_a_real_multirun(tmp_path, exp_compat):
    (tmp_path / "grid.conf").write_text(GRID, encoding="utf-8")
    done = exp_compat("convert", "grid.conf", "--seed", "5", "--runs", "2")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    (tmp_path / "sweep.yaml").write_text(done.stdout, encoding="utf-8")
    received = multirun(
        tmp_path, "--config-dir", str(tmp_path), "--config-name", "sweep", "hydra/launcher=exp_local", "hydra.launcher.workers=2"
    )  # the sweep is the basic sweeper's
    assert len(received) == 2 * 2 * 2 * 2 * 2 * 2
    assert Counter(repr(typed(c)) for c in received) == expected_grid(tmp_path, seed=5, runs=2)


def test_basic_overrides_line_gives_exactly_the_exp_grid(tmp_path, exp_compat):
    (tmp_path / "grid.conf").write_text(GRID.replace("n = 2", "n = 1"), encoding="utf-8")
    done = exp_compat("convert", "grid.conf", "--seed", "9", "--format", "overrides")
    assert done.returncode == 0 and len(done.stdout.strip().splitlines()) == 1
    sweep_dir = tmp_path / "multirun"
    command = f'exec "{sys.executable}" "{APPS / "dump_app.py"}" -m hydra.sweep.dir="{sweep_dir}" {done.stdout.strip()}'
    shell = run(["bash", "-c", command], cwd=tmp_path, timeout=300)
    assert shell.returncode == 0, shell.stderr[-3000:]
    received = received_configs(sweep_dir)
    assert Counter(repr(typed(c)) for c in received) == expected_grid(tmp_path, seed=9, runs=None)


def test_values_the_basic_sweeper_would_change_are_reported_and_really_change(tmp_path, exp_compat):
    (tmp_path / "s.conf").write_text('[s]\ntype = "list"\nvalue = ["1", "true", "plain", "a b"]\n', encoding="utf-8")
    done = exp_compat("convert", "s.conf")
    assert done.returncode == 0
    warnings = [line for line in done.stderr.splitlines() if line.startswith("exp-compat: warning:")]
    assert warnings == [
        "exp-compat: warning: s: value '1' (str) would reach the job as 1 (int)",
        "exp-compat: warning: s: value 'true' (str) would reach the job as True (bool)",
    ]
    assert "exp_grid" in done.stderr
    (tmp_path / "sweep.yaml").write_text(done.stdout, encoding="utf-8")
    received = [c["s"] for c in multirun(tmp_path, "--config-dir", str(tmp_path), "--config-name", "sweep")]
    assert sorted(map(repr, received)) == sorted(map(repr, [1, True, "plain", "a b"]))


def test_optuna_definition_has_inclusive_typed_dimensions(tmp_path, exp_compat):
    (tmp_path / "grid.conf").write_text(GRID, encoding="utf-8")
    done = exp_compat("convert", "grid.conf", "--to", "optuna")
    assert done.returncode == 0, done.stderr
    document = yaml.safe_load(done.stdout)
    assert document["defaults"][0] == {"override /hydra/sweeper": "optuna"}
    params = document["hydra"]["sweeper"]["params"]
    parsed = {o.key_or_group: o for o in OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])}
    x, n, lr = parsed["x"].value(), parsed["n"].value(), parsed["model.lr"].value()
    assert (x.start, x.end, type(x.start)) == (-1.0, 1.0, float)
    assert (n.start, n.end, type(n.start)) == (0, 4, int)  # the high end is included in optimization
    assert lr.tags == {"log"} and (lr.start, lr.end) == (1e-4, 1e-1)
    assert parsed["model.opt"].value().list == ["adam", "sgd"]
    assert parsed["tag"].value() == "run 1, final" and not parsed["tag"].is_sweep_override()


def test_optuna_definition_runs_in_a_real_optuna_sweep(tmp_path, exp_compat):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    (tmp_path / "grid.conf").write_text(GRID, encoding="utf-8")
    (tmp_path / "opt.yaml").write_text(exp_compat("convert", "grid.conf", "--to", "optuna").stdout, encoding="utf-8")
    received = multirun(tmp_path, "--config-dir", str(tmp_path), "--config-name", "opt", "hydra.sweeper.n_trials=6")
    assert len(received) == 6
    for config in received:
        assert type(config["x"]) is float and -1.0 <= config["x"] <= 1.0
        assert type(config["n"]) is int and 0 <= config["n"] <= 4
        assert 1e-4 <= config["model"]["lr"] <= 1e-1
        assert config["model"]["opt"] in ("adam", "sgd") and type(config["flag"]) is bool
        assert config["tag"] == "run 1, final"


SWEEP = [
    "x=range(0,10,2)",
    "model.opt=choice(adam,sgd)",
    "model.lr=tag(log,interval(1e-4,1e-1))",
    "z=interval(0.0,1.0)",
    "tag='quick start'",
    "n=5",
]


def test_export_writes_the_sweep_as_an_exp_space(tmp_path, exp_compat):
    done = exp_compat("export", *SWEEP, "-o", "space.conf")
    assert done.returncode == 0, done.stderr
    space = Space.from_file(tmp_path / "space.conf")
    assert space.names == ["x", "model.opt", "model.lr", "z", "tag", "n"]
    grid = space.grid(seed=0)  # ranges and choices mean what Hydra's basic sweeper expands them to
    assert sorted({row["x"] for row in grid}) == [0, 2, 4, 6, 8] and {row["model.opt"] for row in grid} == {"adam", "sgd"}
    search = {d.name: d for d in space.search().dimensions}
    assert (search["model.lr"].low, search["model.lr"].high, search["model.lr"].prior) == (1e-4, 1e-1, "log-uniform")
    assert (search["z"].low, search["z"].high, search["z"].prior) == (0.0, 1.0, "uniform")
    assert space.search().fixed == {"tag": "quick start", "n": 5}


def test_export_round_trips_with_convert(tmp_path, exp_compat):
    """EXP space -> Hydra sweep (convert) -> EXP space (export): the same space, both ways of writing it."""
    exp_compat("export", *[s for s in SWEEP if not s.startswith("x=")], "-o", "a.conf")
    for fmt in ("overrides", "yaml"):
        done = exp_compat("convert", "a.conf", "--to", "optuna", "--format", fmt)
        assert done.returncode == 0, done.stderr
        if fmt == "yaml":
            (tmp_path / "sweep.yaml").write_text(done.stdout)
            again = exp_compat("export", "--yaml", "sweep.yaml", "-o", "b.conf")
        else:
            words = [w for w in shlex.split(done.stdout) if not w.startswith("hydra/sweeper=")]
            again = exp_compat("export", *words, "-o", "b.conf")
        assert again.returncode == 0, again.stderr
        assert Space.from_file(tmp_path / "b.conf").to_mapping() == Space.from_file(tmp_path / "a.conf").to_mapping()


@pytest.mark.parametrize(
    "args,message",
    [
        ([], "nothing to export"),
        (["db@x=1"], "cannot export 'db@x=1'"),
        (["~x"], "cannot export '~x'"),
        (["--yaml", "missing.yaml"], "cannot read it"),
        (["x=choice(1,2"], "invalid override"),
    ],
)
def test_export_errors_are_one_line_and_write_nothing(tmp_path, exp_compat, args, message):
    done = exp_compat("export", *args, "-o", "out.conf")
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out.conf").exists()


def test_a_float_range_is_written_as_range_where_hydra_expands_it_alike_else_value_by_value(tmp_path, exp_compat):
    """Hydra's range() adds its step in Decimal arithmetic, EXP's (numpy's) multiplies it: a float range is written
    range(...) only where Hydra's own parser expands it to exactly EXP's values."""
    space = '[q]\ntype = "range"\nbounds = [0.0, 1.0]\nstep = 0.25\n\n[t]\ntype = "range"\nbounds = [0.0, 1.0]\nstep = 0.1\n'
    (tmp_path / "grid.conf").write_text(space, encoding="utf-8")
    done = exp_compat("convert", "grid.conf")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "++q: range(0.0,1.0,0.25)" in done.stdout and "++t: choice(0.0,0.1,0.2,0.30000000000000004," in done.stdout
    (tmp_path / "sweep.yaml").write_text(done.stdout, encoding="utf-8")
    received = multirun(tmp_path, "--config-dir", str(tmp_path), "--config-name", "sweep")
    assert Counter(repr(typed(c)) for c in received) == expected_grid(tmp_path, seed=0, runs=None)


@pytest.mark.parametrize(
    "table, words",
    [
        ('type = "range"\nbounds = [0.0, 10000000.0]\nstep = 1.0', "10,000,000 values"),
        ('type = "range"\nbounds = [0.0, 1000.0]\nstep = 0.01', "100,000 values"),
        ('type = "random"\nn = 5000', "5,000 values"),
    ],
    ids=["huge-float-range", "fractional-step", "many-draws"],
)
def test_convert_refuses_a_parameter_of_too_many_values_at_once_naming_its_size(tmp_path, exp_compat, table, words):
    (tmp_path / "big.conf").write_text(f"[x]\n{table}\n", encoding="utf-8")
    done = exp_compat("convert", "big.conf")  # within run()'s time limit: 10^7 values took 120 s and 5.7 GB
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr, done.stderr
    assert "x" in done.stderr and words in done.stderr and "exp_grid" in done.stderr, done.stderr
