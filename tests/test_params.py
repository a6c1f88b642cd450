"""EXP's ParamSpace API: EXP's own test cases, in our words, plus the behaviour they rely on."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tomllib

from exp_compat.params import DTypes, ParamSpace, Types


def small_space() -> ParamSpace:
    ps = ParamSpace()
    ps.add_value("p1", True)
    ps.add_list("p2", ["A", "B"])
    ps.add_random("p3", low=0, high=4, prior="uniform", n=3)
    return ps


def test_size_of_the_readme_example_is_20():
    ps = ParamSpace()
    ps.add_value("p1", 1)
    ps.add_list("p2", [True, False])
    ps.add_range("p3", low=0, high=10, dtype=int)
    assert ps.size == 20
    assert len(list(ps.param_grid())) == 20


def test_grid_size_counts_random_draws():
    ps = small_space()
    grid = list(ps.param_grid())
    assert len(grid) == ps.size == 1 * 2 * 3
    assert all(0 <= row["p3"] < 4 for row in grid)


def test_runs_repeat_each_configuration_with_id_and_run():
    ps = ParamSpace()
    ps.add_value("p1", True)
    ps.add_list("p2", ["A", "B"])
    grid = list(ps.param_grid(runs=5))
    assert len(grid) == 1 * 2 * 5
    assert [(row["id"], row["run"]) for row in grid] == [(i, r) for i in range(2) for r in range(1, 6)]
    with pytest.raises(Exception, match="runs must be"):
        list(ps.param_grid(runs=0))


def test_write_and_load_back(tmp_path):
    ps = small_space()
    ps.write(tmp_path / "test.conf")
    loaded = ParamSpace(tmp_path / "test.conf")
    assert loaded.params == ps.params and loaded.size == ps.size


def test_write_configs_has_one_row_per_configuration(tmp_path):
    ps = small_space()
    ps.write_configs(tmp_path / "params.csv")
    with open(tmp_path / "params.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == ps.size
    assert list(rows[0]) == ["id", "run", "p1", "p2", "p3"]
    assert [row["id"] for row in rows] == [str(i) for i in range(6)]


def test_random_values_are_drawn_again_unless_persisted():
    ps = ParamSpace()
    ps.add_random("r", low=2, high=4, n=10, prior="uniform")
    assert next(ps.param_grid())["r"] != next(ps.param_grid())["r"]
    ps.add_random("p", low=2, high=4, n=10, persist=True)
    assert ps.params["p"]["type"] == "list"
    assert [row["p"] for row in ps.param_grid()][:10] == [row["p"] for row in ps.param_grid()][:10]


def test_numpy_seed_makes_draws_reproducible():
    ps = ParamSpace()
    ps.add_random("r", n=5)
    np.random.seed(3)
    first = ps.get_random("r")
    np.random.seed(3)
    assert ps.get_random("r").tolist() == first.tolist()


def test_range_survives_a_file_round_trip(tmp_path):
    ps = ParamSpace()
    ps.add_range("range_param", 0, 10, 1, dtype=int)
    ps.write(tmp_path / "test.cfg")
    loaded = ParamSpace(tmp_path / "test.cfg")
    assert loaded.get_range("range_param").tolist() == list(range(10))
    assert loaded.get_range("range_param").dtype.kind == "i"


def test_get_range_equals_numpy_arange():
    ps = ParamSpace()
    ps.add_range("x", 0.1, 1.0, 0.1)
    assert ps.get_range("x").tolist() == np.arange(0.1, 1.0, 0.1).tolist()


def test_domain_describes_each_type():
    ps = ParamSpace()
    ps.add_value("value", True)
    assert ps.domain("value") == {"domain": [True], "dtype": DTypes.CATEGORICAL.value}
    ps.add_list("bool", [True, False, True])
    assert ps.domain("bool") == {"domain": [True, False], "dtype": "categorical"}
    ps.add_range("bounds", 0, 10, dtype=float)
    assert ps.domain("bounds") == {"domain": [0, 10], "dtype": "float", "prior": "uniform"}
    ps.add_random("random", 1, 10, prior="log-uniform", dtype=float)
    assert ps.domain("random") == {"domain": [1, 10], "dtype": "float", "prior": "log-uniform"}


def test_write_config_files_one_toml_per_configuration(tmp_path):
    ps = small_space()
    ps.write_config_files(tmp_path, "params")
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [f"params_{i}.conf" for i in range(6)]
    with open(tmp_path / "params_1.conf", "rb") as handle:
        config = tomllib.load(handle)
    assert config["p1"] is True and config["p2"] == "A" and config["id"] == 1 and config["run"] == 1


def test_sample_space_gives_one_value_per_parameter():
    ps = small_space()
    ps.add_range("x", 0, 5, dtype=int)
    for _ in range(20):
        sample = ps.sample_space()
        assert sample["p1"] is True and sample["p2"] in ("A", "B")
        assert 0 <= sample["p3"] < 4 and sample["x"] in range(5)


def test_get_param_checks_the_type():
    ps = small_space()
    assert ps.get_param("p2") == ["A", "B"]
    assert ps.get_param("p1", Types.VALUE) is True
    with pytest.raises(TypeError, match="is a list, not a range"):
        ps.get_param("p2", Types.RANGE)
    with pytest.raises(KeyError, match="not found"):
        ps.get_param("nope")


def test_bad_arguments_are_rejected_like_exp():
    ps = ParamSpace()
    with pytest.raises(TypeError, match="unknown dtype"):
        ps.add_range("x", 0, 1, dtype=str)
    with pytest.raises(ValueError, match="unknown prior"):
        ps.add_random("x", prior="normal")
    assert ps.size == 0 and list(ps.param_grid()) == []
