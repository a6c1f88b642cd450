"""Composing each job's config in a worker, with the part the jobs share done once.

Hydra's ``load_sweep_config`` rebuilds the defaults tree and reloads every config
file for every job: about 0.1 s, most of a trivial job's cost. Only config-group
choices (and the search path) shape that tree; value overrides (``lr=0.1``,
``+x=1``, ``++y=2``, ``~z``) are applied to the composed config afterwards. So the
tree is composed once per distinct set of group choices, and each job applies its
value overrides to a copy. Which overrides are group choices is decided as Hydra
decides it (a key naming a config group, with a value that is not a dict), once
per shape of override list.

The steps after composition are those of hydra-core 1.3's
``ConfigLoaderImpl._load_configuration_impl`` and ``load_sweep_config``; the
tests compare the result with Hydra's own, key for key, on apps with defaults
lists, group and value overrides. Anything unusual (a search-path override) and
any error go through Hydra's own code, so errors read exactly as Hydra's.
"""
from __future__ import annotations

import copy
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, cast

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra._internal.defaults_list import create_defaults_list
from hydra.conf import ConfigSourceInfo
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.core.utils import JobRuntime
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

Shape = Tuple[Tuple[str, Any, Any, bool], ...]


class _Tree:
    """A composed config before any value override, with what composing it found out."""

    def __init__(self, config: DictConfig, choices: Dict[str, Any], sources: List[ConfigSourceInfo]):
        self.config = config
        self.choices = choices
        self.sources = sources


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
        self.trees: Dict[Tuple[Optional[str], ...], _Tree] = {}  # by the group choices (and other non-value overrides)

    def compose(self, overrides: Sequence[str]) -> DictConfig:
        if not isinstance(self.loader, ConfigLoaderImpl):
            return self._hydra(overrides)
        try:
            return self._cached(overrides)
        except Exception:
            return self._hydra(overrides)  # Hydra's own path, for its own error message (or a config it can build)

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
            tree, values = self._compose_tree(lines)
            self.shapes[shape] = values
            self.trees[choices(values)] = tree
        return self._finish(tree, [parsed[i] for i in values], parsed)

    def _compose_tree(self, lines: List[str]) -> Tuple[_Tree, Tuple[int, ...]]:
        loader = self.loader
        loader.ensure_main_config_source_available()
        parsed_again, repo = loader._parse_overrides_and_create_caching_repo(self.config_name, lines)
        defaults = create_defaults_list(repo=repo, config_name=self.config_name, overrides_list=parsed_again,
                                        prepend_hydra=True, skip_missing=False)
        config = loader._compose_config_from_defaults_list(defaults=defaults.defaults, repo=repo)
        applied = {id(o) for o in defaults.config_overrides}
        values = tuple(i for i, o in enumerate(parsed_again) if id(o) in applied)
        sources = [ConfigSourceInfo(path=s.path, schema=s.scheme(), provider=s.provider) for s in repo.get_sources()]
        return _Tree(config, dict(defaults.overrides.known_choices), sources), values

    def _finish(self, tree: _Tree, values: List[Override], parsed: List[Override]) -> DictConfig:
        """What Hydra does after composing the tree, for this job's overrides."""
        from hydra import __version__, version

        self.loader.validate_sweep_overrides_legal(overrides=parsed, run_mode=RunMode.RUN, from_shell=True)
        cfg = copy.deepcopy(tree.config)
        OmegaConf.set_struct(cfg, True)
        OmegaConf.set_readonly(cfg.hydra, False)
        ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
        app_overrides = []
        for override in parsed:
            if override.is_hydra_override():
                cfg.hydra.overrides.hydra.append(override.input_line)
            else:
                cfg.hydra.overrides.task.append(override.input_line)
                app_overrides.append(override)
        with open_dict(cfg.hydra):
            cfg.hydra.runtime.choices.update(tree.choices)
            for key in cfg.hydra.job.env_copy:
                cfg.hydra.job.env_set[key] = os.environ[key]
        cfg.hydra.runtime.version = __version__
        cfg.hydra.runtime.version_base = version.getbase()
        cfg.hydra.runtime.cwd = os.getcwd()
        cfg.hydra.runtime.config_sources = list(tree.sources)
        if "name" not in cfg.hydra.job:
            cfg.hydra.job.name = JobRuntime().get("name")
        dirname = cfg.hydra.job.config.override_dirname
        cfg.hydra.job.override_dirname = get_overrides_dirname(
            overrides=app_overrides, kv_sep=dirname.kv_sep, item_sep=dirname.item_sep, exclude_keys=dirname.exclude_keys)
        cfg.hydra.job.config_name = self.config_name
        OmegaConf.copy_cache(from_config=self.master, to_config=cfg)
        return cfg
