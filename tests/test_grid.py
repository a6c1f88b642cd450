"""The grid view: EXP runner rules, laziness, ids and runs."""

from __future__ import annotations

import itertools
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exp_compat import ListParam, RandomParam, RangeParam, Space, SpaceError, ValueParam
from exp_compat.space.grid import ArangeAxis, Grid

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(low=finite, width=st.floats(min_value=1e-3, max_value=1e4), step=st.floats(min_value=1e-3, max_value=1e3))
def test_float_range_is_bit_identical_to_numpy_arange(low, width, step):
    high = low + width
    if not low < high or (high - low) / step > 20_000:
        return
    expected = np.arange(low, high, step)
    axis = ArangeAxis(RangeParam("x", low, high, step))
    assert len(axis) == len(expected)
    assert [axis[i] for i in range(len(axis))] == expected.tolist()
    assert all(type(axis[i]) is float for i in range(len(axis)))


@given(low=st.integers(-1000, 1000), width=st.integers(1, 500), step=st.integers(1, 50))
def test_int_range_equals_numpy_arange_and_gives_ints(low, width, step):
    axis = ArangeAxis(RangeParam("n", low, low + width, step, "int"))
    values = [axis[i] for i in range(len(axis))]
    assert values == np.arange(low, low + width, step).tolist()
    assert all(type(v) is int for v in values)


def test_range_excludes_the_high_end():
    grid = Space([RangeParam("x", -10, 10)]).grid()
    values = [row["x"] for row in grid]
    assert values == [float(v) for v in range(-10, 10)]


def test_product_order_ids_and_runs_follow_exp():
    space = Space([ValueParam("a", True), ListParam("b", ("A", "B")), RangeParam("c", 0, 3, dtype="int")])
    grid = space.grid(runs=2)
    rows = list(grid)
    assert grid.size == 6 and len(grid) == 12
    expected = []
    for config_id, (b, c) in enumerate(itertools.product(["A", "B"], [0, 1, 2])):
        for run in (1, 2):
            expected.append({"a": True, "b": b, "c": c, "id": config_id, "run": run})
    assert rows == expected
    assert [grid[i] for i in range(len(grid))] == expected


def test_list_keeps_duplicates_in_the_grid():
    assert [row["x"] for row in Space([ListParam("x", (1, 1, 2))]).grid()] == [1, 1, 2]


def test_random_draws_are_seeded_within_bounds_and_typed():
    space = Space(
        [
            RandomParam("u", 2.0, 4.0, n=50),
            RandomParam("i", -3, 3, dtype="int", n=50),
            RandomParam("l", 1e-4, 1e-1, prior="log-uniform", n=50),
        ]
    )
    first, again, other = (Grid(space, seed=s).axes for s in (1, 1, 2))
    assert first == again and first != other
    u, i, log = first
    assert all(type(v) is float and 2.0 <= v < 4.0 for v in u)
    assert all(type(v) is int and -3 <= v < 3 for v in i) and len(set(i)) > 1
    assert all(1e-4 <= v < 1e-1 for v in log)
    # log-uniform: about as many draws below the geometric middle (1e-2.5) as above it
    below = sum(v < 10**-2.5 for v in log)
    assert 10 < below < 40


def test_int_log_uniform_cannot_be_drawn_for_a_grid():
    with pytest.raises(SpaceError, match="log-uniform.*cannot be drawn for a grid"):
        Space([RandomParam("n", 1, 100, prior="log-uniform", dtype="int")]).grid()


def test_id_and_run_keys_are_configurable():
    grid = Grid(Space([ListParam("x", (1, 2))]), runs=2, id_key="exp_id", run_key="exp_run")
    assert grid[3] == {"x": 2, "exp_id": 1, "exp_run": 2}


def test_select_runs_only_the_given_configurations():
    grid = Space([RangeParam("x", 0, 10, dtype="int")]).grid(runs=2)
    assert [(r["id"], r["run"], r["x"]) for r in grid.select([3, 7])] == [(3, 1, 3), (3, 2, 3), (7, 1, 7), (7, 2, 7)]
    with pytest.raises(IndexError, match="outside 0..9"):
        list(grid.select([10]))


def test_runs_must_be_positive():
    with pytest.raises(SpaceError, match="runs must be"):
        Space([ValueParam("x", 1)]).grid(runs=0)


def test_jobs_get_their_own_copies_of_container_values():
    grid = Space([ValueParam("x", [1, 2])]).grid(runs=2)
    first, second = list(grid)
    first["x"].append(3)
    assert second["x"] == [1, 2] and grid[0]["x"] == [1, 2]


def test_a_million_configurations_are_sized_and_streamed_without_building_them():
    space = Space([RangeParam(f"p{i}", 0, 10, dtype="int") for i in range(6)])
    tracemalloc.start()
    grid = space.grid(runs=3)
    assert grid.size == 10**6 and len(grid) == 3 * 10**6
    assert grid[len(grid) - 1] == {**{f"p{i}": 9 for i in range(6)}, "id": 999_999, "run": 3}
    rows = iter(grid)
    for _ in range(200_000):
        next(rows)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1_000_000, f"grid iteration held {peak} bytes"
    assert grid[200_000] == next(iter(grid.select([66_666]))) | {"run": 3}


def test_empty_space_has_no_configurations():
    assert Space().grid().size == 0 and list(Space().grid()) == []
