"""The one place that writes sweep results: an append-only CSV, flushed row by row.

A sweep killed at any moment keeps every finished row; ``resume`` reads them
back. A half-written last row (killed mid-write) is dropped on resume, and
its job runs again.
"""

from __future__ import annotations

import csv
import fcntl
import json
import logging
import os
import socket
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, TextIO, Tuple

from exp_compat.files.columns import CURVES, ERROR, JOB_NUM, RESULT, STATUS, STEP, VALUE, Status, read_table
from exp_compat.files.durable import atomic_writer, json_lines

FINISHED = tuple(Status)
# Free-form columns (a job's return value, an error message) hold at most this many characters: a job that
# returns 200 MB must not make a 200 MB CSV. The job's own record and log keep what it said.
LONG_CELL = 10_000
FREE_FORM = (RESULT, ERROR)
log = logging.getLogger("hydra_plugins.exp_sweeper")


def cell(value: Any) -> str:
    """One CSV cell: numbers in Python's round-trip form, containers as JSON, None empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def read_results(path: Path, columns: Sequence[str]) -> Tuple[List[str], List[Dict[str, str]]]:
    """Header and rows of finished jobs of a results CSV, in this layout (``columns``: those of the sweep that
    reads it: an earlier release's file has the sweep's own under their bare names)."""
    header, rows = read_table(path, [*columns, STATUS])
    return header, [row for row in rows if row.get(STATUS) in FINISHED]


def bounded(text: str) -> str:
    """A free-form cell cut to ``LONG_CELL`` characters, saying how long it was."""
    if len(text) <= LONG_CELL:
        return text
    return f"{text[:LONG_CELL]}... [{len(text):,} characters, cut at {LONG_CELL:,}]"


class ResultsStore:
    """Appends one row per finished job to ``path`` and flushes it at once."""

    def __init__(self, path: Path, columns: Sequence[str], resume: bool):
        self.path = path
        self.columns = list(columns)
        self.rows: List[Dict[str, str]] = []
        header: List[str] = []
        if resume and path.exists():
            header, self.rows = read_results(path, self.columns)
            if not header:  # empty, or killed while its header was written: the job records rebuild it
                log.warning("%s has no complete header: rebuilding it from the job records", path)
        if header:
            if header != self.columns:
                raise ValueError(
                    f"{path} has the columns {header}, but this sweep writes {self.columns}: "
                    "it was made by a different sweep; use another hydra.sweep.dir"
                )
            self._rewrite(self.rows)  # drops a torn last line, if any
        else:  # a new sweep never gets here where an earlier one left its results (SweepCore.set_aside_earlier_sweep)
            self._rewrite([])
        self._handle = open(path, "a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._handle, fieldnames=self.columns)

    def _rewrite(self, rows: Iterable[Dict[str, str]]) -> None:
        with atomic_writer(self.path, newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns)
            writer.writeheader()
            writer.writerows(rows)

    def append(self, row: Dict[str, Any]) -> None:
        cells = {column: cell(row.get(column)) for column in self.columns}
        for column in FREE_FORM:
            if column in cells:
                cells[column] = bounded(cells[column])
        self._writer.writerow(cells)
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


class CurvesStore:
    """``<name>_curves.csv``: one row per report of a running job, appended and flushed as it arrives.

    Columns are ``exp.job_num``, ``exp.step``, ``exp.value``, then each metric a job reported, by its name (the
    rule: ``exp_compat.files.columns``); a metric seen for the first time adds its column (the file is rewritten once,
    with the new header; rare: jobs report the same metrics at every step).
    """

    FIXED = CURVES
    MAX_METRICS = 1_000  # columns for metrics: a job inventing a new name at every step must not make the file quadratic

    def __init__(self, path: Path, resume: bool):
        self.path = path
        self.columns = list(self.FIXED)
        rows: List[Dict[str, str]] = []
        if resume and path.exists():
            header, rows = read_table(path, self.FIXED)
            if header[: len(self.FIXED)] == self.FIXED:
                self.columns = header
            else:
                rows = []
        elif path.exists():
            set_aside(path)
        self.last_steps = {row[JOB_NUM]: float(row[STEP]) for row in rows}  # read by a resume, then dropped
        self._crowded = False
        self._handle: Optional[TextIO] = None
        if rows or resume and path.exists():
            self._rewrite(rows)
        # else the file is written at the first report: a sweep whose jobs never report has none

    def _rewrite(self, rows: Iterable[Dict[str, str]]) -> TextIO:
        with atomic_writer(self.path, newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns)
            writer.writeheader()
            writer.writerows(rows)
        self._handle = opened = open(self.path, "a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(opened, fieldnames=self.columns)
        return opened

    def append(self, job_num: int, step: float, value: float, metrics: Dict[str, Any]) -> None:
        handle = self._handle or self._rewrite([])
        new = [name for name in metrics if name not in self.columns]
        room = max(self.MAX_METRICS - (len(self.columns) - len(self.FIXED)), 0)
        if len(new) > room:
            self._warn_dropped(new[room:])
            new = new[:room]
        if new:
            handle.close()
            self.columns += new
            handle = self._rewrite(read_table(self.path, self.FIXED)[1])
        row = {JOB_NUM: job_num, STEP: step, VALUE: value, **metrics}
        self._writer.writerow({column: cell(row.get(column)) for column in self.columns})
        handle.flush()

    def _warn_dropped(self, dropped: Sequence[str]) -> None:
        """Once per sweep: the cap, and the first names it dropped (later ones are dropped without a word: a job
        inventing a name at every step must not flood the log)."""
        if self._crowded:
            return
        self._crowded = True
        more = f" and {len(dropped) - 5:,} more" if len(dropped) > 5 else ""
        log.warning(
            "%s keeps at most %s metric columns: %d metric names of this report have none, their values are not kept: %s%s "
            "(metric names that come later are not kept either, without another warning)",
            self.path,
            f"{self.MAX_METRICS:,}",
            len(dropped),
            ", ".join(dropped[:5]),
            more,
        )

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


class LaunchJournal:
    """``.exp_jobs/launched.jsonl``: each job's number and parameters, written before it is launched.

    With the jobs' own records beside it, a resumed sweep can tell which
    launched jobs finished (kept) from those that did not (run again).
    """

    def __init__(self, directory: Path, resume: bool):
        # A sweep of another name in the same directory (EXP's habit) sets the earlier one's journal aside; its
        # job numbers stay taken, so that job directories nested by hydra.sweep.subdir are never reused.
        self.earlier: List[int] = []
        if not resume and directory.exists():
            earlier = directory / "launched.jsonl"
            self.earlier = [entry["job_num"] for entry in json_lines(earlier)] if earlier.exists() else []
            set_aside(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "launched.jsonl"
        self._handle = open(self.path, "a", encoding="utf-8")

    def entries(self) -> List[Dict[str, Any]]:
        return json_lines(self.path)  # a line torn by a kill: that job was never launched

    def append(self, entries: Iterable[Dict[str, Any]]) -> None:
        self._handle.write("".join(json.dumps(e, allow_nan=True) + "\n" for e in entries))
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


class SweepLock:
    """One sweep at a time in a sweep directory: a POSIX lock on ``<dir>/.exp_lock``.

    The kernel releases it when the owning process ends, however it ends, so a
    killed sweep never leaves it stuck; it is per process (not inherited by
    children that a job forks) and works on NFS.
    """

    def __init__(self, directory: Path):
        self.path = directory / ".exp_lock"
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = os.read(self._fd, 200).decode("utf-8", "replace").strip() or "another process"
            os.close(self._fd)
            raise ValueError(
                f"another sweep ({owner}) is running in {directory}: wait for it to end, or use another hydra.sweep.dir"
            ) from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"pid {os.getpid()} on {socket.gethostname()}".encode())

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def write_summary(path: Path, summary: Dict[str, Any]) -> None:
    """A YAML summary (``optimization_results.yaml``), replaced whole so a reader never sees half of it."""
    import yaml

    with atomic_writer(path) as handle:
        yaml.safe_dump(summary, handle, sort_keys=False, allow_unicode=True)


def set_aside(path: Path) -> Path:
    """Rename an earlier sweep's file to the first free ``<stem>.<n><suffix>``."""
    n = 1
    while (kept := path.with_name(f"{path.stem}.{n}{path.suffix}")).exists():
        n += 1
    path.rename(kept)
    return kept


def next_job_num(sweep_dir: Path, rows: Sequence[Dict[str, str]]) -> int:
    """The first job number whose output directory cannot belong to an earlier run of this sweep."""
    used = [int(row[JOB_NUM]) for row in rows if row.get(JOB_NUM, "").isdigit()]
    if sweep_dir.is_dir():
        used += [int(p.name) for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()]
    return max(used) + 1 if used else 0


class SweepState:
    """What a resume must match: the sweeper, its space and its seed (``<name>_sweep.json``)."""

    def __init__(self, path: Path, record: Dict[str, Any]):
        self.path = path
        self.record = record

    @classmethod
    def load(cls, path: Path, record: Dict[str, Any], resume: bool) -> "SweepState":
        """The saved state when resuming (checked against ``record``), else ``record``; writes nothing."""
        if resume and path.exists():
            saved = json.loads(path.read_text(encoding="utf-8"))
            changed = _changes(saved, _jsonable(record))
            if changed:
                raise ValueError(
                    f"cannot resume: {'; '.join(changed)} (changed since the sweep in {path.parent} started, "
                    f"see {path}); use the same settings or another hydra.sweep.dir"
                )
            return cls(path, saved)
        return cls(path, _jsonable(record))

    def save(self) -> None:
        with atomic_writer(self.path) as handle:
            json.dump(self.record, handle, indent=2, allow_nan=True)


def _changes(saved: Dict[str, Any], record: Dict[str, Any]) -> List[str]:
    """What differs between a saved sweep and this one, option by option with both values ("hydra.sweeper.pruner
    was asha, now null"). A key on one side only is a change too: the pruner's settings, the constraints and
    ``pruned_value`` are recorded only where they apply."""
    changes = []
    for key in dict.fromkeys([*record, *saved]):
        old, new = saved.get(key), record.get(key)
        if key == "seed" or old == new:
            continue
        if key == "space":
            changes.append("space changed")
        elif key == "sweeper":
            changes.append(f"hydra/sweeper was {old}, now {new}")
        elif key == "pruning" and old is not None and new is not None:
            changes += [_change(k, old.get(k), new.get(k)) for k in dict.fromkeys([*new, *old]) if old.get(k) != new.get(k)]
        elif key == "pruning":
            changes.append(_change("pruner", (old or {}).get("pruner"), (new or {}).get("pruner")))
        else:
            changes.append(_change(key, old, new))
    return changes


def _change(option: str, old: Any, new: Any) -> str:
    def shown(value: Any) -> str:
        return json.dumps(value, allow_nan=True) if not isinstance(value, str) else value

    return f"hydra.sweeper.{option} was {shown(old)}, now {shown(new)}"


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, allow_nan=True))
