"""The typed model: loading EXP TOML, namespaces, and one clear error per bad input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from exp_compat import ListParam, RandomParam, RangeParam, Space, SpaceError, ValueParam

GOOD = """
[x]
type = "range"
bounds = [-10, 10]

[model.lr]
type = "random"
bounds = [1e-4, 1e-1]
prior = "log-uniform"

[model.opt]
type = "list"
value = ["adam", "sgd"]

[seed]
type = "value"
value = 7
"""


def write(tmp_path: Path, text: str, name: str = "space.conf") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_loads_every_type_with_defaults_and_namespaces(tmp_path):
    space = Space.from_file(write(tmp_path, GOOD))
    assert space.names == ["x", "model.lr", "model.opt", "seed"]
    assert space["x"] == RangeParam("x", -10, 10, 1, "float")
    assert space["model.lr"] == RandomParam("model.lr", 1e-4, 1e-1, "log-uniform", "float", 1)
    assert space["model.opt"] == ListParam("model.opt", ("adam", "sgd"))
    assert space["seed"] == ValueParam("seed", 7)


def test_random_defaults_to_unit_interval(tmp_path):
    space = Space.from_file(write(tmp_path, '[p]\ntype = "random"\n'))
    assert space["p"] == RandomParam("p", 0.0, 1.0, "uniform", "float", 1)


def test_write_then_load_gives_the_same_space(tmp_path):
    space = Space.from_file(write(tmp_path, GOOD))
    space.write(tmp_path / "again.conf")
    assert Space.from_file(tmp_path / "again.conf") == space


def test_int_range_keeps_integers(tmp_path):
    space = Space.from_file(write(tmp_path, '[n]\ntype = "range"\nbounds = [0.0, 4.0]\nstep = 2.0\ndtype = "int"\n'))
    param = space["n"]
    assert (param.low, param.high, param.step) == (0, 4, 2)
    assert all(type(v) is int for v in (param.low, param.high, param.step))


# (TOML text, words the message must contain) for each class of bad input.
BAD_INPUTS = {
    "unknown type": ('[x]\ntype = "grid"\n', ["'x'", "unknown type 'grid'", "value, list, range, random"]),
    "missing type value": ('[x]\ntype = "value"\n', ["'x'", "missing 'value'"]),
    "missing bounds": ('[x]\ntype = "range"\n', ["'x'", "missing 'bounds"]),
    "three bounds": ('[x]\ntype = "range"\nbounds = [2, 1, 3]\n', ["'x'", "two numbers", "[2, 1, 3]"]),
    "non-numeric bounds": ('[x]\ntype = "range"\nbounds = ["a", 3]\n', ["'x'", "finite number", "'a'"]),
    "boolean bound": ('[x]\ntype = "random"\nbounds = [true, 3]\n', ["'x'", "finite number", "True"]),
    "infinite bound": ('[x]\ntype = "range"\nbounds = [0, inf]\n', ["'x'", "finite number"]),
    "low == high": ('[x]\ntype = "range"\nbounds = [3, 3]\n', ["'x'", "low < high", "[3, 3]"]),
    "low > high": ('[x]\ntype = "random"\nbounds = [5, 1]\n', ["'x'", "low < high"]),
    "zero step": ('[x]\ntype = "range"\nbounds = [0, 1]\nstep = 0\n', ["'x'", "step must be > 0"]),
    "negative step": ('[x]\ntype = "range"\nbounds = [0, 1]\nstep = -0.5\n', ["'x'", "step must be > 0"]),
    "step giving an empty grid": (
        '[x]\ntype = "range"\nbounds = [0, 5e-324]\nstep = 1e308\n',
        ["'x'", "empty grid"],
    ),
    "fractional step for int": ('[x]\ntype = "range"\nbounds = [0, 4]\nstep = 0.5\ndtype = "int"\n', ["whole number"]),
    "mixed list": ('[x]\ntype = "list"\nvalue = [1, "A"]\n', ["'x'", "one kind", "number and string"]),
    "bool and number list": ('[x]\ntype = "list"\nvalue = [1, true]\n', ["'x'", "boolean and number"]),
    "empty list": ('[x]\ntype = "list"\nvalue = []\n', ["'x'", "must not be empty"]),
    "list that is not an array": ('[x]\ntype = "list"\nvalue = 3\n', ["'x'", "must be an array"]),
    "unknown dtype": ('[x]\ntype = "range"\nbounds = [0, 1]\ndtype = "double"\n', ["'x'", "unknown dtype 'double'", "'float', 'int'"]),
    "unknown prior": ('[x]\ntype = "random"\nprior = "normal"\n', ["'x'", "unknown prior 'normal'", "'log-uniform'"]),
    "log prior with zero bound": ('[x]\ntype = "random"\nbounds = [0, 1]\nprior = "log-uniform"\n', ["'x'", "bounds > 0"]),
    "log prior with negative bound": ('[x]\ntype = "random"\nbounds = [-1, 1]\nprior = "log-uniform"\n', ["bounds > 0"]),
    "n < 1": ('[x]\ntype = "random"\nn = 0\n', ["'x'", "n must be a whole number >= 1", "0"]),
    "fractional n": ('[x]\ntype = "random"\nn = 1.5\n', ["'x'", "n must be"]),
    "reserved id": ('[id]\ntype = "value"\nvalue = 1\n', ["'id'", "reserved"]),
    "reserved run": ('[run]\ntype = "list"\nvalue = [1, 2]\n', ["'run'", "reserved"]),
    "hydra's own config": ('[hydra]\ntype = "value"\nvalue = 1\n', ["'hydra'", "Hydra's own config"]),
    "under hydra": ('[hydra.job.name]\ntype = "list"\nvalue = ["a"]\n', ["'hydra.job.name'", "Hydra's own config"]),
    "a string too long for an override": (
        '[x]\ntype = "list"\nvalue = ["' + "a" * 100_001 + '"]\n',
        ["'x'", "100,001 characters (at most 100,000)", "pass its path"],
    ),
    "the sweep's exp key": ('[exp.params]\ntype = "value"\nvalue = 1\n', ["'exp.params'", "sweep's own settings"]),
    "unknown key": ('[x]\ntype = "range"\nbound = [0, 1]\n', ["'x'", "unknown key 'bound'", "bounds, step, dtype"]),
    "name Hydra cannot address": ('["learning rate"]\ntype = "value"\nvalue = 1\n', ["'learning rate'", "identifiers"]),
    "not a table": ("x = 3\n", ["'x'", "expected a table"]),
    "empty namespace": ("[model]\n", ["'model'", "no 'type'"]),
    "value and namespace clash": (
        '[model]\ntype = "value"\nvalue = 1\n[other]\ntype = "value"\nvalue = 2\n',
        None,
    ),
    "date value": ('[x]\ntype = "value"\nvalue = 2024-01-01\n', ["'x'", "dates and times"]),
    "missing marker": ('[x]\ntype = "value"\nvalue = "???"\n', ["'x'", "missing value"]),
    "inline table with odd key": ('[x]\ntype = "value"\nvalue = {"a b" = 1}\n', ["'x'", "'a b'"]),
    "invalid TOML": ('[x]\ntype = "range"\nbounds = [0, 1\nstep = 2\n', ["invalid TOML", "line 4", "column"]),
}


@pytest.mark.parametrize("case", [k for k, v in BAD_INPUTS.items() if v[1] is not None])
def test_bad_input_gives_a_clear_error_naming_file_and_parameter(tmp_path, case):
    text, expected = BAD_INPUTS[case]
    path = write(tmp_path, text)
    with pytest.raises(SpaceError) as caught:
        Space.from_file(path)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    for words in expected:
        assert words in message, (words, message)


def test_value_and_namespace_clash_is_an_error():
    with pytest.raises(SpaceError, match="both a value and a namespace"):
        Space([ValueParam("model", 1), ValueParam("model.lr", 0.1)])


def test_duplicate_names_are_an_error():
    with pytest.raises(SpaceError, match="defined twice"):
        Space([ValueParam("x", 1), ValueParam("x", 2)])


def test_missing_file(tmp_path):
    with pytest.raises(SpaceError, match="no such file"):
        Space.from_file(tmp_path / "nope.conf")


def test_directory(tmp_path):
    with pytest.raises(SpaceError, match="is a directory"):
        Space.from_file(tmp_path)


def test_unreadable_file():
    # Opening works but reading fails (EIO), even for root: a real unreadable file.
    with pytest.raises(SpaceError, match="cannot read the file"):
        Space.from_file("/proc/self/mem")


def test_non_utf8_file_names_line_and_column(tmp_path):
    path = tmp_path / "latin1.conf"
    path.write_bytes(b'[x]\ntype = "value"\nvalue = "caf\xe9"\n')
    with pytest.raises(SpaceError, match=r"not UTF-8 .*0xe9 at line 3, column 13"):
        Space.from_file(path)


def test_mixed_int_and_float_lists_are_numbers(tmp_path):
    space = Space.from_file(write(tmp_path, '[lr]\ntype = "list"\nvalue = [1, 0.1, 0.01]\n'))
    assert [type(v) for v in space["lr"].values] == [int, float, float]


def test_unique_values_keep_first_seen_order_and_types():
    param = ListParam("x", (3, 1, 3, 1.0, 2))
    assert param.unique_values == (3, 1, 1.0, 2)
    assert [type(v) for v in param.unique_values] == [int, int, float, int]


def test_writing_a_space_that_toml_cannot_hold_leaves_the_old_file(tmp_path):
    target = write(tmp_path, GOOD, "keep.conf")
    with pytest.raises(SpaceError, match="TOML has no null"):
        Space([ValueParam("x", None)]).write(target)
    assert target.read_text(encoding="utf-8") == GOOD
    assert sorted(os.listdir(tmp_path)) == ["keep.conf"]
