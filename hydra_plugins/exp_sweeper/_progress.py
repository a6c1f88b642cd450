"""Progress of a sweep: a log line per finished job, and a live bar on a terminal."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Dict, Optional

from exp_compat.overrides import without_sweep_env_set
from hydra_plugins.exp_sweeper.config import ProgressMode

log = logging.getLogger("hydra_plugins.exp_sweeper")

_BAR_WIDTH = 24


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _values(params: Dict[str, Any], limit: int = 100) -> str:
    text = ", ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in params.items())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Progress:
    """Counts finished jobs and reports each one; ``total`` may be None (open-ended)."""

    def __init__(
        self, sweeper: str, total: Optional[int], mode: ProgressMode = ProgressMode.auto, done: int = 0, failed: int = 0, pruned: int = 0
    ):
        self.sweeper = sweeper
        self.total = total
        self.done = self.resumed = done
        self.failed = failed
        self.pruned = pruned
        self.best: Optional[float] = None
        self.started = time.monotonic()
        self.bar = mode is ProgressMode.bar or (mode is ProgressMode.auto and sys.stderr.isatty())
        self._bar_shown = False

    def status(self) -> str:
        elapsed = time.monotonic() - self.started
        parts = [f"{self.done}/{self.total}" if self.total else f"{self.done}"]
        if self.pruned:
            parts.append(f"{self.pruned} pruned")
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.best is not None:
            parts.append(f"best {self.best:.6g}")
        parts.append(f"elapsed {_clock(elapsed)}")
        new = self.done - self.resumed
        if self.total and new and self.done < self.total:
            parts.append(f"ETA {_clock(elapsed / new * (self.total - self.done))}")
        return ", ".join(parts)

    def finished(self, job_num: int, params: Dict[str, Any], outcome: Any, best: Optional[float] = None) -> None:
        self.done += 1
        self.failed += outcome.failed
        self.pruned += outcome.pruned
        self.best = best if best is not None else self.best
        duration = f" in {outcome.duration_s:.2f}s" if outcome.duration_s is not None else ""
        what = (
            f"failed: {outcome.error}"
            if outcome.failed
            else f"pruned at step {outcome.steps}{duration}"
            if outcome.pruned
            else f"done{duration}"
        )
        if not outcome.failed and isinstance(outcome.value, (int, float)) and not isinstance(outcome.value, bool):
            what += f" -> {outcome.value:.6g}"
        elif not outcome.failed and hasattr(outcome.value, "progress_text"):  # several objectives, constraints
            what += f" -> {outcome.value.progress_text()}"
        self._clear_bar()
        log.info("%s [%s] #%d %s (%s)", self.sweeper, self.status(), job_num, what, _values(params))
        self._draw_bar()

    def _clear_bar(self) -> None:
        if self._bar_shown:
            sys.stderr.write("\r\033[K")
            self._bar_shown = False

    def _draw_bar(self) -> None:
        if not self.bar or not self.total:
            return
        filled = int(_BAR_WIDTH * self.done / self.total)
        sys.stderr.write(f"\r{self.sweeper} [{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {self.status()}")
        sys.stderr.flush()
        self._bar_shown = True

    def close(self) -> None:
        self._clear_bar()


class ParametersOnly(logging.Filter):
    """A launcher's line per job ("#3 : lr=0.1 ...") without the variables the sweep exports to the job."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        shown = without_sweep_env_set(message)
        if shown != message:
            record.msg, record.args = shown, ()
        return True


def show_parameters_only(launcher: object) -> None:
    """Filter the loggers of the launcher's package (Hydra's launchers log each job's overrides from the module
    of their class, or one beside it): records are filtered by the logger that made them, whatever handlers
    the jobs' logging configuration installs meanwhile."""
    package = type(launcher).__module__.rsplit(".", 1)[0]
    names = [name for name in list(sys.modules) if name == package or name.startswith(package + ".")]
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, ParametersOnly) for f in logger.filters):
            logger.addFilter(ParametersOnly())
