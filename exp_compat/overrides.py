"""The Hydra view: every value as an override that a job receives exactly.

This is the one place that renders overrides. Strings are quoted unless they
are plain words (``adam``, ``db/mysql``, ``file1.yaml``) that Hydra's grammar
reads back as the same string, so ``"1"``, ``"true"`` and ``"null"`` stay strings; quotes and backslashes are
escaped the way Hydra's override grammar un-escapes them; ``${`` is escaped the
way OmegaConf un-escapes it, so a literal ``${x}`` is not resolved; floats use
Python's shortest round-trip form. Keys get ``++`` so that parameters missing
from the app's config are added and existing ones replaced.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable, List, Mapping, Tuple

from exp_compat.space.parameters import check_key, check_value, plain

_OMEGACONF_INTERPOLATION = re.compile(r"(\\*)\$\{")
_QUOTE = re.compile(r"(\\*)'")
_TRAILING_BACKSLASHES = re.compile(r"(\\+)\Z")
# Identifiers joined by "." or "/": Hydra lexes these as one unquoted string...
_PLAIN_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*(?:[./][A-Za-z_][A-Za-z0-9_\-]*)*\Z")
# ...unless the whole word is one of its keywords.
_KEYWORDS = ("true", "false", "null", "nan", "inf")


def quote_string(text: str) -> str:
    """A single-quoted Hydra string whose value, once OmegaConf resolves it, is ``text``."""
    # OmegaConf: backslashes right before "${" escape each other, and "\${" is a literal "${".
    text = _OMEGACONF_INTERPOLATION.sub(lambda m: m.group(1) * 2 + "\\${", text)
    # Hydra: backslashes right before a quote, or before the closing quote, escape each other.
    text = _QUOTE.sub(lambda m: m.group(1) * 2 + "\\'", text)
    text = _TRAILING_BACKSLASHES.sub(lambda m: m.group(1) * 2, text)
    return f"'{text}'"


def render_value(value: Any) -> str:
    """The right-hand side of an override that gives a job exactly ``value`` (same type too)."""
    value = plain(value)  # numpy's float64 is a float whose repr() is "np.float64(...)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        if _PLAIN_WORD.match(value) and value.lower() not in _KEYWORDS:
            return value
        return quote_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(render_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{key}:{render_value(item)}" for key, item in value.items()) + "}"
    raise TypeError(f"cannot render {value!r} of type {type(value).__name__} as a Hydra value")


def render_override(name: str, value: Any, prefix: str = "++") -> str:
    """``++name=value``, checked first so that nothing unrenderable reaches Hydra."""
    check_key(name)
    check_value(value, name)
    return f"{prefix}{name}={render_value(value)}"


# A job's place in an EXP sweep, passed through Hydra's ``hydra.job.env_set`` rather than the app's config
# (which a sweep must not change beyond the swept parameters): run_job exports these variables while the
# job runs, and ``@runnable`` reads them back as EXP's ``id`` and ``run`` keyword arguments.
JOB_ENV = {"id": "EXP_CONFIG_ID", "run": "EXP_RUN"}


def job_env_overrides(identity: Mapping[str, Any]) -> List[str]:
    """Hydra overrides that set a job's ``EXP_CONFIG_ID``/``EXP_RUN`` from its ``{"id": .., "run": ..}``."""
    return env_set_overrides({JOB_ENV[key]: int(value) for key, value in identity.items() if key in JOB_ENV})


def env_set_overrides(variables: Mapping[str, Any]) -> List[str]:
    """Hydra overrides that export ``variables`` to a job while it runs (``hydra.job.env_set``)."""
    return [f"{ENV_SET}{name}={render_value(value)}" for name, value in variables.items()]


ENV_SET = "++hydra.job.env_set."
# The sweep's own variables (EXP_CONFIG_ID, EXP_RUN, EXP_REPORT, ...) as env_set_overrides renders them: a word,
# or a single-quoted string (quote_string).
_SWEEP_ENV_SET = re.compile(r" ?" + re.escape(ENV_SET) + r"EXP_[A-Z_]+=(?:'(?:[^'\\]|\\.)*'|\S+)")


def without_sweep_env_set(text: str) -> str:
    """``text`` (a launcher's line listing a job's overrides) without the variables the sweep exports to the job:
    the user sees the job's parameters. They must be overrides (Hydra's config has no other way in for a job), and
    Hydra's launchers hide only overrides written ``hydra.``..., which a new key of ``env_set`` cannot be."""
    return _SWEEP_ENV_SET.sub("", text) if ENV_SET in text else text


def render_overrides(config: Mapping[str, Any] | Iterable[Tuple[str, Any]], prefix: str = "++") -> List[str]:
    """One override per key (dotted names), in the given order."""
    items = config.items() if isinstance(config, Mapping) else config
    return [render_override(name, value, prefix) for name, value in items]
