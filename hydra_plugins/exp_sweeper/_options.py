"""What the options' types cannot say, stated once per option and checked by one helper.

Hydra checks each option's type as it composes the config (a word where a number goes); the ranges are
here, so that a wrong value of any option (negative, zero, huge, inf or nan, an overlong name) is one line
naming the option and the value, before the sweep writes anything or starts a job, never an error from the
library the value would reach (numpy's for a seed, the file system's for a name). The checks that relate
options to each other or to the space (min_resource < max_resource, config_ids in the grid) stay with the
code that knows both.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Dict

from exp_compat.files.durable import is_plain_file_name

# The longest sweep name: it starts every file the sweep writes (<name>_configurations.csv, ...), and a file
# name has at most 255 bytes on the usual file systems.
LONGEST_NAME = 100
# The largest seed: the optimizer seeds numpy's RandomState, which takes 32 bits.
LARGEST_SEED = 2**32 - 1
# Jobs asked for at once (n_jobs trials proposed together, max_batch_size jobs per Launcher.launch): the
# sweep holds them, and their JobReturns, all at once.
MOST_AT_ONCE = 10_000


@dataclasses.dataclass(frozen=True)
class Allowed:
    """The values an option may take: ``text`` says which, ``test`` tells one (null always passes: where an
    option may be null, its type says so)."""

    text: str
    test: Callable[[Any], bool]


def _number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) or math.isfinite(value)  # an int has no inf, and may be too large for a float


def between(what: str, low: float, high: float = math.inf, above: bool = False) -> Allowed:
    """A finite number (``what``: "a whole number", "a step") from ``low`` (excluded with ``above``) to ``high``."""
    whole = what == "a whole number"

    def test(value: Any) -> bool:
        fits = _number(value) and (value > low if above else value >= low) and value <= high
        return fits and (not whole or float(value).is_integer())

    bound = f"> {low}" if above else f">= {low}"
    return Allowed(f"{what} {bound}" if high == math.inf else f"{what} from {low} to {high}", test)


NAME = Allowed(
    f"a plain file name (letters, digits, '_', '-', '.') of at most {LONGEST_NAME} characters, which starts the names of the sweep's files",
    lambda value: isinstance(value, str) and len(value) <= LONGEST_NAME and is_plain_file_name(value),
)

# Every option of both sweepers with a range; the others are choices (Enums), booleans, paths and keys that
# Hydra or the code that reads them checks.
ALLOWED: Dict[str, Allowed] = {
    "name": NAME,
    "seed": between("a whole number", 0, LARGEST_SEED),
    "max_failure_rate": between("a fraction", 0, 1),
    "min_resource": between("a step", 0, above=True),
    "max_resource": between("a step", 0, above=True),
    "reduction_factor": between("a whole number", 2),
    "n_startup_trials": between("a whole number", 0),
    "n_warmup_steps": between("a step", 0),
    "runs": between("a whole number", 1),
    "max_batch_size": between("a whole number", 1, MOST_AT_ONCE),
    "n_trials": between("a whole number", 1),
    "n_initial_points": between("a whole number", 1),
    "n_jobs": between("a whole number", 1, MOST_AT_ONCE),
    "kappa": between("a number", 0),
    "xi": between("a number", 0),
}


def check_ranges(options: Any, prefix: str = "hydra.sweeper") -> None:
    """ValueError naming the first option (of the dataclass ``options``) whose value is out of its range."""
    for field in dataclasses.fields(options):
        allowed = ALLOWED.get(field.name)
        value = getattr(options, field.name)
        if allowed is not None and value is not None and not allowed.test(value):
            raise ValueError(f"{prefix}.{field.name} must be {allowed.text}, got {value!r}")
