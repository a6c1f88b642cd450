"""An earlier sweep of the same name in the directory where a new one starts: set aside whole, into one folder.

A new sweep there would overwrite the earlier one's plan, settings and summaries, and, where ``hydra.sweep.subdir``
nests them (``exp/${hydra.job.num}``) or names them otherwise than by a bare number (``run_${hydra.job.num}``), its
job directories: the earlier sweep's files and every job directory it made move to ``<dir>/<name>.<n>/``, under the
same relative paths, and the new sweep starts as in an empty directory (Hydra's own tests run a multirun twice in
one directory and expect the second one's job 0 in job 0's directory). The job directories are found from the
earlier sweep's ``hydra.sweep.subdir`` (in its ``multirun.yaml``) and job numbers (its journal, its job records,
its results); a subdir that depends on more than the job number (``${hydra.job.override_dirname}``) cannot be
resolved here, and then the sweep is refused (ValueError), nothing moved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Sequence, Set, cast

from exp_compat.files.columns import JOB_NUM, read_table
from exp_compat.files.durable import json_lines

JOB_NUM_INTERPOLATION = "${hydra.job.num}"
# The files a sweep named <name> writes, besides its results CSV: <name><suffix>.
NAMED = ("_results.csv", "_configurations.csv", "_params.csv", "_sweep.json", "_curves.csv", "_convergence.png", "_objective.png")
NAMED_PLOTS = ("_curves.png", "_pareto.png")


def job_nums(sweep_dir: Path, jobs_dir: str, results: Path) -> Set[int]:
    """Every job number the earlier sweep used: journaled, recorded by a job, or in its results."""
    nums: Set[int] = set()
    journal = sweep_dir / jobs_dir / "launched.jsonl"
    if journal.exists():
        nums.update(int(entry["job_num"]) for entry in json_lines(journal))
    if (sweep_dir / jobs_dir).is_dir():
        nums.update(int(p.stem) for p in (sweep_dir / jobs_dir).glob("*.json") if p.stem.isdigit())
    if results.exists():
        nums.update(int(row[JOB_NUM]) for row in read_table(results, [JOB_NUM])[1] if row.get(JOB_NUM, "").isdigit())
    return nums


def job_dirs(sweep_dir: Path, jobs_dir: str, results: Path) -> List[Path]:
    """The earlier sweep's job directories that exist, relative to ``sweep_dir``; ValueError where they cannot be told."""
    from omegaconf import OmegaConf

    nums = job_nums(sweep_dir, jobs_dir, results)
    if not nums:
        return []
    multirun = sweep_dir / "multirun.yaml"
    if not multirun.exists():
        raise ValueError("its multirun.yaml, which says where its jobs wrote, is missing")
    sweep = cast(Dict[str, Any], OmegaConf.to_container(OmegaConf.load(multirun).hydra.sweep, resolve=False))
    subdir = str(sweep["subdir"])
    if "${" in subdir.replace(JOB_NUM_INTERPOLATION, ""):
        raise ValueError(f"its job directories (hydra.sweep.subdir={subdir}) depend on more than the job number")
    relative = [Path(subdir.replace(JOB_NUM_INTERPOLATION, str(n))) for n in sorted(nums)]
    return [path for path in relative if (sweep_dir / path).exists()]


def set_aside_sweep(sweep_dir: Path, name: str, jobs_dir: str, results: str, shared: Sequence[str]) -> Path:
    """Move the earlier sweep named ``name`` (its files, ``shared`` files such as multirun.yaml, its job directories)
    into the first free ``<name>.<n>/``; ValueError, with nothing moved, where its job directories cannot be told."""
    dirs = job_dirs(sweep_dir, jobs_dir, sweep_dir / results)
    n = 1
    while (aside := sweep_dir / f"{name}.{n}").exists():
        n += 1
    files = [results, *(name + suffix for suffix in (*NAMED, *NAMED_PLOTS)), jobs_dir, "multirun.yaml", *shared]
    for relative in [*dirs, *map(Path, dict.fromkeys(files))]:
        source = sweep_dir / relative
        if source.exists():
            (aside / relative).parent.mkdir(parents=True, exist_ok=True)
            source.rename(aside / relative)
    return aside
