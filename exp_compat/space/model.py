"""The typed model of an EXP parameter space: a :class:`Space`, read from an EXP TOML file or built in code.

EXP users keep their spaces in TOML files; everything else in hydra-exp (the
grid runner, the optimizer, the Hydra override rendering, the CLI) reads this
one model instead of the raw TOML, so every rule and every check lives once,
in :mod:`exp_compat.space.parameters`. The views over it are in
:mod:`exp_compat.space.grid`, :mod:`exp_compat.space.search` and
:mod:`exp_compat.overrides`; they read the parameters, not this module, so the
space can offer them as methods without a circle of imports.

TOML shape: every table with a ``type`` key is a parameter; a table without
one is a namespace, so ``[model.lr]`` is the parameter ``model.lr``.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple, Union

from exp_compat.errors import SpaceError
from exp_compat.files.durable import write_atomic
from exp_compat.space.grid import Grid
from exp_compat.space.parameters import Param, ValueParam, param_from_table
from exp_compat.space.search import SearchSpace, search_space

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


def _walk_tables(mapping: Mapping[str, Any], prefix: str) -> Iterator[Param]:
    for key, item in mapping.items():
        name = f"{prefix}{key}"
        if not isinstance(item, dict):
            raise SpaceError(
                f"expected a table, got {item!r}: each parameter is a TOML table with a 'type', e.g. [{name}] type = \"value\" value = ...",
                param=name,
            )
        if "type" in item:
            yield param_from_table(name, item)
        elif not item:
            raise SpaceError("this table has no 'type' and no parameters inside it", param=name)
        else:
            yield from _walk_tables(item, f"{name}.")


def _describe_decode_error(data: bytes, error: UnicodeDecodeError) -> str:
    before = data[: error.start]
    line = before.count(b"\n") + 1
    column = error.start - (before.rfind(b"\n") + 1) + 1
    return f"not UTF-8 text: byte 0x{data[error.start]:02x} at line {line}, column {column}"


def read_toml(path: Union[str, os.PathLike]) -> Dict[str, Any]:
    """Read a TOML file, turning every way it can fail into a :class:`SpaceError`."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise SpaceError("no such file").located(source) from None
    except IsADirectoryError:
        raise SpaceError("is a directory, not a TOML file").located(source) from None
    except OSError as error:
        raise SpaceError(f"cannot read the file: {error.strerror}").located(source) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SpaceError(_describe_decode_error(data, error)).located(source) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SpaceError(f"invalid TOML: {error}").located(source) from None


class Space:
    """An ordered collection of parameters: the one model every view reads.

    Order is the file order; it defines the grid's Cartesian product order and
    therefore the configuration ids.
    """

    def __init__(self, params: Iterable[Param] = (), source: Optional[str] = None):
        self.source = source
        self._params: Dict[str, Param] = {}
        for param in params:
            if param.name in self._params:
                raise SpaceError("defined twice", param=param.name, source=source)
            self._params[param.name] = param
        self._check_prefixes()

    def _check_prefixes(self) -> None:
        names = set(self._params)
        for name in names:
            parts = name.split(".")
            for end in range(1, len(parts)):
                parent = ".".join(parts[:end])
                if parent in names:
                    raise SpaceError(
                        f"clashes with parameter '{parent}': a key cannot be both a value and a namespace",
                        param=name,
                        source=self.source,
                    )

    @classmethod
    def from_file(cls, path: Union[str, os.PathLike]) -> "Space":
        """Load an EXP TOML space; every user mistake is a :class:`SpaceError` naming the file."""
        source = os.fspath(path)
        return cls.from_mapping(read_toml(source), source=source)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], source: Optional[str] = None) -> "Space":
        """Build a space from parsed TOML (nested tables are namespaces)."""
        try:
            return cls(_walk_tables(mapping, ""), source=source)
        except SpaceError as error:
            raise error.located(source) from None

    @property
    def params(self) -> Tuple[Param, ...]:
        return tuple(self._params.values())

    @property
    def names(self) -> List[str]:
        return list(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __iter__(self) -> Iterator[Param]:
        return iter(self._params.values())

    def __contains__(self, name: object) -> bool:
        return name in self._params

    def __getitem__(self, name: str) -> Param:
        try:
            return self._params[name]
        except KeyError:
            raise KeyError(f"parameter {name!r} not in the space (has: {', '.join(self._params)})") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Space) and self.params == other.params

    def __repr__(self) -> str:
        return f"Space({list(self._params.values())!r})"

    def replace(self, param: Param) -> "Space":
        """A new space with ``param`` replacing the one of the same name, or appended."""
        params = dict(self._params)
        params[param.name] = param
        return Space(params.values(), source=self.source)

    def without(self, name: str) -> "Space":
        return Space((p for p in self._params.values() if p.name != name), source=self.source)

    def require_params(self) -> "Space":
        """Return self, or fail clearly when there is nothing to sweep over."""
        if not self._params:
            raise SpaceError("the space defines no parameters", source=self.source)
        return self

    def to_mapping(self) -> Dict[str, Any]:
        """The TOML document for this space, dotted names as nested tables."""
        document: Dict[str, Any] = {}
        for param in self._params.values():
            *parents, leaf = param.name.split(".")
            table = document
            for part in parents:
                table = table.setdefault(part, {})
            table[leaf] = param.to_toml()
        return document

    def to_toml(self) -> str:
        import tomli_w

        for param in self._params.values():
            if isinstance(param, ValueParam) and param.value is None:
                raise SpaceError("TOML has no null: a value of None cannot be written", param=param.name)
        return tomli_w.dumps(self.to_mapping())

    def write(self, path: Union[str, os.PathLike]) -> None:
        """Write the space as TOML; the file is replaced only once the text is complete."""
        write_atomic(path, self.to_toml())

    def grid(self, runs: int = 1, seed: Optional[int] = None) -> Grid:
        """The grid view (EXP runner rules); see :class:`exp_compat.space.grid.Grid`."""
        return Grid(self, runs=runs, seed=seed)

    def search(self) -> SearchSpace:
        """The optimization view (EXP gopt rules); see :mod:`exp_compat.space.search`."""
        return search_space(self)
