"""The thin plugin class both sweepers share: options in, the work imported when a sweep starts."""

from __future__ import annotations

import abc
import importlib
from typing import Any, List

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class LazySweeper(Sweeper):
    """Keeps plugin discovery light: the implementation (``module:Class``) is imported in ``setup``.

    Abstract (``implementation``), so Hydra's plugin scan does not list this base class itself.
    """

    @property
    @abc.abstractmethod
    def implementation(self) -> str:
        """``module:Class`` of the sweep implementation."""

    def __init__(self, **options: Any):
        self.options = options

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        module, name = self.implementation.split(":")
        implementation = getattr(importlib.import_module(module), name)
        self.impl = implementation(self.options, hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> Any:
        return self.impl.run_sweep(arguments)
