"""EXP's ``exp.args``: typed defaults with option checks for a runnable's keyword arguments.

A runnable declares ``ParamDict({"lr": (float, 0.1), "opt": (str, "adam", ["adam", "sgd"])})``
and assigns what it receives; values are converted with the declared type
(``bool`` and ``int`` accept their usual string and float spellings) and
checked against the options.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, NamedTuple, Optional

_TRUE = ("yes", "true", "t", "y", "1")
_FALSE = ("no", "false", "f", "n", "0")


def as_bool(value: Any) -> bool:
    """``"yes"/"true"/"t"/"y"/"1"`` (any case) are True, their opposites False; numbers > 0 are True."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise TypeError(f"expected a boolean ({'/'.join(_TRUE)} or {'/'.join(_FALSE)}), got {value!r}")
    if isinstance(value, (int, float)):
        return value > 0
    raise TypeError(f"expected a boolean, got {value!r}")


def as_int(value: Any) -> int:
    """``int`` that also accepts ``"2.0"`` and ``2.7`` (truncated), as EXP did."""
    return int(float(value))


def convert_type(type_class: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The conversion function for a declared type: lenient for bool and int, the type itself otherwise."""
    if type_class is bool:
        return as_bool
    if type_class is int:
        return as_int
    return type_class


def _checked(name: str, value: Any, options: Optional[frozenset]) -> Any:
    if options is not None and value not in options:
        raise ValueError(f"invalid value {value!r} for {name}: allowed {sorted(options, key=repr)}")
    return value


class Param(NamedTuple("Param", [("typefn", Callable[[Any], Any]), ("value", Any), ("options", Optional[frozenset])])):
    """A declared argument: conversion function, default value, allowed options (or None)."""

    def __new__(cls, typefn: Callable[[Any], Any], value: Any = None, options: Optional[Iterable[Any]] = None) -> "Param":
        convert = convert_type(typefn)
        allowed = frozenset(options) if options is not None else None
        if value is not None:
            value = _checked("the default", convert(value), allowed)
        return super().__new__(cls, convert, value, allowed)


class Namespace:
    """Attribute access to a dict's items: ``ns.lr`` for ``d["lr"]``."""

    def __init__(self, values: Dict[str, Any]):
        if not isinstance(values, dict):
            raise TypeError(f"Namespace requires a dict, got {values!r}")
        self.__dict__.update(values)

    def __repr__(self) -> str:
        return "Namespace(" + ",".join(f"{k}={v}" for k, v in self.__dict__.items()) + ")"

    __str__ = __repr__


class ParamDict(dict):
    """A dict of arguments with declared defaults: assigning converts and checks declared keys."""

    def __init__(self, defaults: Dict[str, Any]):
        super().__init__()
        self.defaults: Dict[str, Param] = {}
        self.add_params(defaults)
        for name, param in self.defaults.items():
            dict.__setitem__(self, name, param.value)

    def add_params(self, declarations: Dict[str, Any]) -> None:
        """Declare (or re-declare) arguments from ``name -> (type, default[, options])``."""
        for name, declaration in declarations.items():
            self.defaults[name] = Param(*declaration)

    def __setitem__(self, key: str, value: Any) -> None:
        param = self.defaults.get(key)
        if param is not None:
            value = param.value if value is None else _checked(key, param.typefn(value), param.options)
        dict.__setitem__(self, key, value)

    def from_dict(self, values: Dict[str, Any]) -> None:
        for key, value in values.items():
            self[key] = value

    def to_namespace(self) -> Namespace:
        return Namespace(dict(self))
