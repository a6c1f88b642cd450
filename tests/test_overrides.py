"""Rendering values as Hydra overrides: every job receives exactly the value and type written.

The property tests parse each rendered override with Hydra's real override
parser, apply it the way Hydra composes a job's config, and resolve it with
OmegaConf; the end-to-end test passes the overrides on a real app's command line.
"""

from __future__ import annotations

import json
import math
import sys

import pytest
from conftest import APPS, run, typed
from hypothesis import given, settings
from hypothesis import strategies as st

from exp_compat import SpaceError
from exp_compat.overrides import render_override, render_value
from exp_compat.space.convert import job_value

TRICKY = [
    "",
    " ",
    "a b",
    "a,b",
    "it's",
    'say "hi"',
    "back\\slash",
    "ends with \\",
    "\\'",
    "\\\\'",
    "=",
    "a=b",
    "${x}",
    "\\${x}",
    "\\\\${x}",
    "${oc.env:HOME}",
    "$",
    "${",
    "[1, 2]",
    "{a: 1}",
    "(x)",
    "choice(1,2)",
    "1",
    "-1",
    "1.5",
    "1e3",
    "true",
    "False",
    "null",
    "None",
    "nan",
    "inf",
    "-inf",
    "??",
    "????",
    "adam",
    "db/mysql",
    "file1.yaml",
    "a.e5",
    "Infinity",
    "true_x",
    "NULL",
    "NaN",
    "e5",
    "x-1",
    "_",
    "héllo wörld",
    "日本語",
    "emoji 🎉",
    "tab\there",
    "new\nline",
    "\\",
    "'",
    '"',
    "'\"'",
    "~x",
    "+x",
    "@x",
]
IDENT = st.from_regex(r"[A-Za-z_][A-Za-z0-9_\-]{0,8}", fullmatch=True)
WORDS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_\-]{0,6}([./][A-Za-z_0-9][A-Za-z0-9_\-]{0,4}){0,2}", fullmatch=True)
strings = st.text().filter(lambda s: "\x00" not in s and s != "???") | st.sampled_from(TRICKY) | WORDS
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([1e-300, 5e-324, 1.7976931348623157e308, -0.0, 1e16, 123456789.123456789])
    | strings
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(IDENT, inner, max_size=4), max_leaves=12)


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@settings(max_examples=400, deadline=None)
@given(value=values)
def test_every_value_round_trips_through_real_hydra_parsing(value):
    received = job_value(render_override("x", value))
    assert same(received, value), (value, render_value(value), received)


@settings(max_examples=100, deadline=None)
@given(value=values, key=st.lists(IDENT, min_size=1, max_size=3).map(".".join))
def test_dotted_keys_reach_nested_config(value, key):
    if key.split(".")[0] in ("hydra",):
        return
    assert same(job_value(render_override(key, value)), value)


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_strings_stay_strings(text):
    assert same(job_value(render_override("s", text)), text)


def test_unrenderable_input_is_refused_before_hydra_sees_it():
    with pytest.raises(SpaceError, match="identifiers"):
        render_override("learning rate", 1)
    with pytest.raises(SpaceError, match="missing value"):
        render_override("x", "???")
    with pytest.raises(SpaceError, match="NUL"):
        render_override("x", "a\x00b")


def test_a_real_app_receives_the_values_from_its_command_line(tmp_path):
    cases = {f"v{i}": text for i, text in enumerate(TRICKY) if "\n" not in text}
    cases.update({"big": 2**70, "tiny": 5e-324, "neg": -3, "flag": False, "nested": [["a b", 1], {"k": "${x}"}], "none": None})
    overrides = [render_override(f"given.{key}", value) for key, value in cases.items()]
    done = run([sys.executable, str(APPS / "dump_app.py"), f"hydra.run.dir={tmp_path}", *overrides], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    received = json.loads((tmp_path / "received.json").read_text(encoding="utf-8"))["given"]
    assert typed(received) == typed(cases)


@pytest.mark.parametrize("value, expected", [("float64", 0.1), ("int64", 3), ("bool_", True), ("str_", "a b")])
def test_numpy_scalars_reach_the_job_as_python_values(value, expected):
    import numpy as np

    received = job_value(f"++x={render_value(getattr(np, value)(expected))}")
    assert typed(received) == typed(expected)
