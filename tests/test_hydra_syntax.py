"""Hydra sweep syntax -> the space model."""

import pytest

from exp_compat import ListParam, RandomParam, RangeParam, SpaceError
from exp_compat.space.hydra_syntax import merge, parse_overrides, parse_params_mapping


def test_sweeps_become_parameters_and_the_rest_passes_through_in_order():
    parsed = parse_overrides(
        [
            "db=mysql",
            "x=choice('1','a b')",
            "+y=range(0,10,2)",
            "lr=tag(log,interval(1e-4,1e-1))",
            "n=int(interval(1,9))",
            "w=a,b",
            "++m.k=1",
        ]
    )
    by_name = {p.name: p for p in parsed.params}
    assert by_name["x"] == ListParam("x", ("1", "a b"))
    assert by_name["y"] == ListParam("y", (0, 2, 4, 6, 8))  # optimization: a choice between its values
    assert by_name["lr"] == RandomParam("lr", 1e-4, 1e-1, prior="log-uniform")
    assert by_name["n"] == RandomParam("n", 1, 9, dtype="int")
    assert by_name["w"] == ListParam("w", ("a", "b"))
    assert parsed.keys["y"] == "+y" and parsed.keys["x"] == "x"
    assert parsed.order == [
        ("raw", "db=mysql"),
        ("param", "x"),
        ("param", "y"),
        ("param", "lr"),
        ("param", "n"),
        ("param", "w"),
        ("raw", "++m.k=1"),
    ]


def test_range_keeps_hydras_end_exclusive_meaning_for_optimization():
    (x,), (y,) = parse_overrides(["x=range(0,6)"]).params, parse_overrides(["y=range(0,1,0.25)"]).params
    assert x == RangeParam("x", 0, 5, 1, "int")  # optimized as Integer(0, 5)
    assert y == ListParam("y", (0.0, 0.25, 0.5, 0.75))
    assert parse_overrides(["x=range(0,6)"], enumerable=True).params == [RangeParam("x", 0, 6, 1, "int")]


def test_interval_has_no_grid():
    with pytest.raises(SpaceError, match="an interval has no grid"):
        parse_overrides(["x=interval(0,1)"], enumerable=True)


@pytest.mark.parametrize(
    "override,words",
    [
        ("x=glob(*)", "unsupported sweep"),
        ("x=shuffle(a,b)", "shuffle"),
        ("x=choice(", "invalid override"),
    ],
)
def test_unsupported_sweeps_are_clear_errors(override, words):
    with pytest.raises(SpaceError, match=words):
        parse_overrides([override])


def test_params_mapping_and_merge_precedence():
    config = parse_params_mapping({"x": "choice(1,2)", "z": "range(0,3)"})
    cli = parse_overrides(["x=choice(5)"])
    merged = merge(config.params, cli.params)
    assert [p.name for p in merged] == ["x", "z"] and merged[0] == ListParam("x", (5,))
