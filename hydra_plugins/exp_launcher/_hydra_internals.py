"""Hydra's private sweep-config loading, and the private names of ``hydra.main`` the launchers use.

The private names of Hydra that ``exp_compat`` and the sweeper need too are in ``exp_compat/_hydra_internals.py``
(which says why there are two such modules); this one holds those of the launcher alone.

Mirrors hydra-core 1.3 (read from 1.3.8, the newest 1.3 release; ``setup.py`` keeps hydra-core below
1.4): how ``ConfigLoaderImpl._load_configuration_impl`` composes the defaults tree, and the steps it
and ``load_sweep_config`` take after that. ``_compose.py`` decides when the tree can be reused and
falls back to Hydra's own ``load_sweep_config`` whenever anything here fails.

Hydra's main branch (1.4 in development) has changed this code: ``get_overrides_dirname`` moved out
of ``config_loader_impl``, and ``load_sweep_config`` gained ``_ensure_sweep_config_controller_unchanged``
(a job's overrides may no longer change ``hydra/launcher``, ``hydra/sweeper`` or their nodes). No 1.3
release has that check, so it is not mirrored: the composed config must equal what the installed
Hydra's own ``load_sweep_config`` returns, and tests/test_compose.py compares the two key for key, a
job that changes the launcher included (it fails there as soon as Hydra's own path refuses it).
Lifting the bound to 1.4 means re-reading those functions against this module.

It also holds the one private name of ``hydra.main`` the launchers use: ``_run_hydra``, which a
``@hydra.main`` function calls to run its app; a worker that runs the app script again (``_main.py``)
replaces it for that while, so that a script without a ``__main__`` guard does not start a second sweep.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import importlib
import os
import sys
from typing import Any, Dict, Iterator, List, Sequence, Tuple

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra._internal.defaults_list import create_defaults_list
from hydra.conf import ConfigSourceInfo
from hydra.core.override_parser.types import Override
from hydra.core.utils import JobRuntime
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

# the Hydra release that both modules of its private code mirror, named once
from exp_compat._hydra_internals import MIRRORED as MIRRORED
from exp_compat._hydra_internals import apply_overrides


class AppStarted(BaseException):
    """A ``@hydra.main`` function was called while ``apps_stopped`` held: the app did not run."""


def can_stop_apps() -> bool:
    """Whether this Hydra has the private function ``apps_stopped`` replaces."""
    return hasattr(sys.modules.get("hydra.main") or importlib.import_module("hydra.main"), "_run_hydra")


@contextlib.contextmanager
def apps_stopped() -> Iterator[None]:
    """While this lasts, calling a ``@hydra.main`` function raises :class:`AppStarted` instead of running it."""
    hydra_main = importlib.import_module("hydra.main")
    run_hydra = hydra_main._run_hydra  # type: ignore[attr-defined]

    def stop(**_: Any) -> None:
        raise AppStarted

    hydra_main._run_hydra = stop  # type: ignore[attr-defined]
    try:
        yield
    finally:
        hydra_main._run_hydra = run_hydra  # type: ignore[attr-defined]


def mirrors(config_loader: Any) -> bool:
    """Whether ``config_loader`` is the Hydra class whose steps this module mirrors."""
    return isinstance(config_loader, ConfigLoaderImpl)


@dataclasses.dataclass
class Tree:
    """A composed config before any value override, with what composing it found out."""

    config: DictConfig
    choices: Dict[str, Any]
    sources: List[ConfigSourceInfo]


def compose_tree(loader: ConfigLoaderImpl, config_name: str, lines: List[str]) -> Tuple[Tree, Tuple[int, ...]]:
    """The defaults tree for ``lines`` composed, and the positions in ``lines`` of the value overrides
    (those Hydra applies to the composed config rather than to the tree)."""
    loader.ensure_main_config_source_available()
    parsed, repo = loader._parse_overrides_and_create_caching_repo(config_name, lines)
    defaults = create_defaults_list(repo=repo, config_name=config_name, overrides_list=parsed, prepend_hydra=True, skip_missing=False)
    config = loader._compose_config_from_defaults_list(defaults=defaults.defaults, repo=repo)
    applied = {id(o) for o in defaults.config_overrides}
    values = tuple(i for i, o in enumerate(parsed) if id(o) in applied)
    sources = [ConfigSourceInfo(path=s.path, schema=s.scheme(), provider=s.provider) for s in repo.get_sources()]
    return Tree(config, dict(defaults.overrides.known_choices), sources), values


def finish(
    loader: ConfigLoaderImpl, master: DictConfig, config_name: str, tree: Tree, values: Sequence[Override], parsed: Sequence[Override]
) -> DictConfig:
    """What Hydra does after composing the tree, for one job's overrides (``parsed``, of which
    ``values`` are the value overrides), on a copy of ``tree``."""
    from hydra import __version__, version

    loader.validate_sweep_overrides_legal(overrides=list(parsed), run_mode=RunMode.RUN, from_shell=True)
    cfg = copy.deepcopy(tree.config)
    OmegaConf.set_struct(cfg, True)
    OmegaConf.set_readonly(cfg.hydra, False)
    apply_overrides(list(values), cfg)
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
        overrides=app_overrides, kv_sep=dirname.kv_sep, item_sep=dirname.item_sep, exclude_keys=dirname.exclude_keys
    )
    cfg.hydra.job.config_name = config_name
    OmegaConf.copy_cache(from_config=master, to_config=cfg)
    return cfg
