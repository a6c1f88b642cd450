"""EXP's args helpers: typed defaults, lenient conversion, options."""

import pytest

from exp_compat.args import Namespace, Param, ParamDict, as_bool, as_int


@pytest.mark.parametrize("text,expected", [("yes", True), ("T", True), ("1", True), ("no", False), ("F", False), ("0", False)])
def test_as_bool_reads_common_spellings(text, expected):
    assert as_bool(text) is expected


def test_as_bool_numbers_and_errors():
    assert as_bool(2) is True and as_bool(0) is False and as_bool(None) is False
    with pytest.raises(TypeError, match="expected a boolean"):
        as_bool("maybe")


def test_as_int_accepts_float_spellings():
    assert as_int("2.7") == 2 and as_int(3.0) == 3


def test_param_converts_and_checks_default():
    assert Param(int, "3").value == 3
    with pytest.raises(ValueError, match="invalid value 'c'"):
        Param(str, "c", ["a", "b"])


def test_param_dict_converts_checks_and_keeps_defaults():
    args = ParamDict({"lr": (float, 0.1), "epochs": (int, 10), "opt": (str, "adam", ["adam", "sgd"]), "gpu": (bool, False)})
    args.from_dict({"lr": "0.5", "epochs": "3.0", "gpu": "yes", "extra": 1, "opt": None})
    assert dict(args) == {"lr": 0.5, "epochs": 3, "opt": "adam", "gpu": True, "extra": 1}
    with pytest.raises(ValueError, match="invalid value 'rmsprop' for opt"):
        args["opt"] = "rmsprop"
    ns = args.to_namespace()
    assert isinstance(ns, Namespace) and ns.lr == 0.5 and ns.extra == 1


def test_namespace_needs_a_dict():
    with pytest.raises(TypeError, match="requires a dict"):
        Namespace([1, 2])
