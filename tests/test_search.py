"""The optimization view: EXP gopt rules as real scikit-optimize dimensions."""

from __future__ import annotations

import json

import pytest
from skopt import Optimizer
from skopt.space import Categorical, Integer, Real

from exp_compat import ListParam, RandomParam, RangeParam, Space, SpaceError, ValueParam


def test_dimensions_follow_gopt_rules():
    space = Space(
        [
            RangeParam("x", -10, 10),
            RangeParam("depth", 1, 8, step=2, dtype="int"),
            RandomParam("lr", 1e-4, 1e-1, prior="log-uniform"),
            RandomParam("units", 16, 512, prior="log-uniform", dtype="int"),
            ListParam("opt", ("adam", "sgd", "adam")),
            ListParam("one", ("only", "only")),
            ValueParam("seed", 7),
        ]
    )
    view = space.search()
    x, depth, lr, units, opt = view.dimensions
    assert isinstance(x, Real) and (x.low, x.high, x.prior) == (-10.0, 10.0, "uniform")
    assert isinstance(depth, Integer) and (depth.low, depth.high) == (1, 8)  # both ends included
    assert isinstance(lr, Real) and lr.prior == "log-uniform"
    assert isinstance(units, Integer) and units.prior == "log-uniform"
    assert isinstance(opt, Categorical) and opt.categories == ("adam", "sgd")
    assert view.names == ["x", "depth", "lr", "units", "opt"]
    assert view.fixed == {"one": "only", "seed": 7}


def test_points_from_ask_become_plain_python_configs_in_file_order():
    space = Space([ValueParam("seed", 7), RangeParam("n", 0, 3, dtype="int"), ListParam("flag", (True, False)), RangeParam("x", 0, 1)])
    view = space.search()
    optimizer = Optimizer(view.dimensions, random_state=0, n_initial_points=3)
    for point in optimizer.ask(n_points=5):
        config = view.to_config(point)
        assert list(config) == ["seed", "n", "flag", "x"]
        assert [type(v) for v in config.values()] == [int, int, bool, float]
        json.dumps(config)  # numpy scalars would fail here
        assert view.to_point(config) == [config["n"], config["flag"], config["x"]]


def test_mixed_numeric_categories_come_back_as_written():
    view = Space([ListParam("lr", (1, 0.5, 2))]).search()
    assert [view.to_config([v])["lr"] for v in (1.0, 0.5, 2.0)] == [1, 0.5, 2]
    assert type(view.to_config([1.0])["lr"]) is int


def test_non_scalar_categories_are_a_clear_error():
    with pytest.raises(SpaceError, match="parameter 'layers'.*booleans, numbers or strings"):
        Space([ListParam("layers", ([64], [64, 64]))]).search()
