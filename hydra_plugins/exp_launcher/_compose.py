"""Composing each job's config in a worker, with the part the jobs share done once.

Hydra's ``load_sweep_config`` rebuilds the defaults tree and reloads every config
file for every job: about 0.1 s, most of a trivial job's cost. Only config-group
choices (and the search path) shape that tree; value overrides (``lr=0.1``,
``+x=1``, ``++y=2``, ``~z``) are applied to the composed config afterwards. So the
tree is composed once per distinct set of group choices, and each job applies its
value overrides to a copy. Which overrides are group choices is decided as Hydra
decides it (a key naming a config group, with a value that is not a dict), once
per shape of override list.

The steps after composition, and the composing itself, are Hydra's private code:
they live in ``_hydra_internals`` (which names the Hydra version it mirrors). The
tests compare the result with Hydra's own, key for key, on apps with defaults
lists, group and value overrides. Anything unusual (a search-path override) and
any error go through Hydra's own code, so errors read exactly as Hydra's. If the
fast path fails where Hydra's own succeeds (a Hydra release that moved what is
mirrored), the composer says so once per process and uses Hydra's own from then on.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple, cast

from hydra import __version__ as hydra_version
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.exp_launcher import _hydra_internals as internals

Shape = Tuple[Tuple[str, Any, Any, bool], ...]
log = logging.getLogger("hydra_plugins.exp_launcher")
_reported: Set[str] = set()  # what this process has already said about the fast path


def _report_once(key: str, level: int, message: str, *args: Any) -> None:
    if key not in _reported:
        _reported.add(key)
        log.log(level, message, *args)


# Composed trees a worker keeps: a grid over many config-group choices must not grow a worker with every
# combination it has run; a grid in order reuses the latest few.
TREES = 32


class Composer:
    """Job configs for one sweep, as ``config_loader.load_sweep_config(master_config, overrides)`` makes them."""

    def __init__(self, config_loader: Any, master_config: DictConfig):
        self.loader = config_loader
        self.master = master_config
        # hydra.overrides.hydra is a ListConfig of strings
        self.hydra_overrides = list(cast(List[str], OmegaConf.to_container(master_config.hydra.overrides.hydra)))
        self.config_name = master_config.hydra.job.config_name
        self.parser = OverridesParser.create()
        self.shapes: Dict[Shape, Tuple[int, ...]] = {}  # positions of the value overrides in lists of this shape
        # by the group choices (and other non-value overrides), the most recently used last; at most TREES of them
        self.trees: "OrderedDict[Tuple[Optional[str], ...], internals.Tree]" = OrderedDict()
        self.fast = internals.mirrors(config_loader)
        if not self.fast:
            _report_once(
                "loader",
                logging.DEBUG,
                "exp launcher: the config loader is a %s, not Hydra's own: each job's config is composed by it in full",
                type(config_loader).__name__,
            )

    def compose(self, overrides: Sequence[str]) -> DictConfig:
        if not self.fast:
            return self._hydra(overrides)
        try:
            return self._cached(overrides)
        except Exception as error:
            # Hydra's own path, for its own error message; if it builds the config, the fast path is what failed
            config = self._hydra(overrides)
            self.fast = False
            _report_once(
                "fallback",
                logging.WARNING,
                "exp launcher: composing job configs from a cached defaults tree failed where Hydra's own "
                "composition succeeded (%s: %s); each job's config is now composed in full, about 0.1 s "
                "more per job (the fast path mirrors %s; installed: hydra-core %s)",
                type(error).__name__,
                " ".join(str(error).split()),
                internals.MIRRORED,
                hydra_version,
            )
            return config

    def _hydra(self, overrides: Sequence[str]) -> DictConfig:
        return self.loader.load_sweep_config(self.master, list(overrides))

    def _cached(self, overrides: Sequence[str]) -> DictConfig:
        lines = self.hydra_overrides + list(overrides)
        parsed = self.parser.parse_overrides(overrides=lines)
        if any(o.key_or_group.startswith("hydra.searchpath") for o in parsed):
            return self._hydra(overrides)
        shape: Shape = tuple((o.key_or_group, o.package, o.type, isinstance(o.value(), dict)) for o in parsed)

        def choices(values: Tuple[int, ...]) -> Tuple[Optional[str], ...]:
            return tuple(o.input_line for i, o in enumerate(parsed) if i not in values)

        values = self.shapes.get(shape)
        tree = self.trees.get(choices(values)) if values is not None else None
        if values is None or tree is None:
            tree, values = internals.compose_tree(self.loader, self.config_name, lines)
            self.shapes[shape] = values
            self.trees[choices(values)] = tree
            if len(self.trees) > TREES:
                self.trees.popitem(last=False)
        else:
            self.trees.move_to_end(choices(values))
        return internals.finish(self.loader, self.master, self.config_name, tree, [parsed[i] for i in values], parsed)
