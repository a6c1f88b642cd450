"""Hydra's private names that more than the launcher needs: the one module of ``exp_compat`` that uses any.

Mirrors hydra-core 1.3 (read from 1.3.8, the newest 1.3 release; ``setup.py`` keeps hydra-core below
1.4), as does the launcher's ``hydra_plugins/exp_launcher/_hydra_internals.py``, which holds the
private steps of composing a sweep's config that the launcher alone uses. Hydra's private code is in
two modules because imports point down: ``exp_compat`` imports no plugin, and the sweeper and the
launcher import nothing of each other, so what ``exp_compat``, the sweeper and the launcher all need
is here, below them. Each private name is named in one of the two (tests/test_code_checks.py), and
tests/test_compose.py checks both against the newest Hydra 1.3 in CI (.ci/run, ``-m upstream``).

* ``ConfigLoaderImpl._apply_overrides_to_config``: how Hydra sets a value override in a composed
  config (``+``, ``++``, ``~``, merging a dict value), for ``exp-compat convert``'s check of what a job
  receives and for the launcher's composition;
* ``JobReturn._return_value``: a failed job's exception, which the public ``return_value`` raises
  (writing a line to stderr) instead of returning. A failed return is built with the public setter.
"""

from __future__ import annotations

from typing import Any, List, Optional

from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.override_parser.types import Override
from hydra.core.utils import JobStatus
from omegaconf import DictConfig

MIRRORED = "hydra-core 1.3.8"


def apply_overrides(overrides: List[Override], config: DictConfig) -> None:
    """Set the value overrides ``overrides`` in ``config``, as Hydra does after composing it."""
    ConfigLoaderImpl._apply_overrides_to_config(overrides, config)


def job_error(job_return: Any) -> Optional[BaseException]:
    """The exception a failed job raised (None for a job that did not fail)."""
    return job_return._return_value if getattr(job_return, "status", None) == JobStatus.FAILED else None
