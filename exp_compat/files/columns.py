"""The one rule that keeps a sweep's own columns apart from yours in the CSV files it writes.

A results file (``<name>_results.csv``, ``<name>_configurations.csv``) and a curves file (``<name>_curves.csv``)
hold two kinds of column. Yours keep the names you chose: the parameters, the objective keys and constraint
metrics a task returns, the metrics passed to ``report()``. The sweep's own (a job's number, status, duration,
error, ...) are named ``exp.<name>``. No parameter can start with ``exp.`` (a reserved root of the space), and a
metric or objective that does is refused with one line, so the two never clash: ``error`` or ``status`` is a
metric like any other, and a script that reads ``exp.status`` reads the sweep's column in every file.

Files written by releases before this rule have the sweep's columns under their bare names (``status``) and
no ``exp.`` column; :func:`read_table` reads both layouts, so resume, warm start and ``exp-compat rungs`` take
either.
"""

from __future__ import annotations

import enum
import os
from typing import Dict, Iterable, List, Tuple, Union

from exp_compat.files.durable import read_csv

PREFIX = "exp."


def own(name: str) -> str:
    """The column of the sweep's own field ``name``."""
    return PREFIX + name


JOB_NUM, STATUS, DURATION_S, ERROR = own("job_num"), own("status"), own("duration_s"), own("error")
ID, RUN, RESULT, STEPS = own("id"), own("run"), own("result"), own("steps")
EVALUATION, FEASIBLE = own("evaluation"), own("feasible")
STEP, VALUE = own("step"), own("value")
CURVES = [JOB_NUM, STEP, VALUE]  # the curves file's first columns; each reported metric follows, by its own name


class Status(str, enum.Enum):
    """How a trial ended: the values of the ``exp.status`` column and of a job's record. A ``str``, so that it
    is written to CSV and JSON as the word itself and equals the word read back from them."""

    COMPLETED = "completed"
    PRUNED = "pruned"  # stopped at a rung; its value is its last report
    FAILED = "failed"

    def __str__(self) -> str:  # the word in messages and files, not ``Status.FAILED``
        return self.value


def check_name(name: str, what: str) -> None:
    """ValueError when a name you chose would read as one of the sweep's columns."""
    if name.startswith(PREFIX):
        raise ValueError(
            f"{what} {name!r} starts with {PREFIX!r}, which marks the sweep's own columns in its CSV files: "
            "rename it (any other name works)"
        )


def read_table(path: Union[str, os.PathLike], columns: Iterable[str]) -> Tuple[List[str], List[Dict[str, str]]]:
    """Header and complete rows of a sweep's CSV, in this layout. A file without any ``exp.`` column was written
    before this rule (or by hand): of the ``columns`` that a reader wants, the sweep's own (``exp.status``) that
    it holds under their bare names are renamed. Only those, and not one that the reader also wants under its
    bare name (an objective named ``error``, which the earlier releases refused): such a file may hold a metric
    named ``value``, and a hand-made one an objective named ``error``."""
    header, rows = read_csv(path)
    if any(column.startswith(PREFIX) for column in header):
        return header, rows
    wanted = set(columns)
    bare = {column[len(PREFIX) :]: column for column in wanted if column.startswith(PREFIX)}
    renamed = {name: column for name, column in bare.items() if name in header and name not in wanted}
    if not renamed:
        return header, rows
    return [renamed.get(c, c) for c in header], [{renamed.get(k, k): v for k, v in row.items()} for row in rows]
