"""The markdown table that the quality benchmarks print: one row per method, one column per problem, the time."""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, Optional, Sequence

from threadpoolctl import threadpool_limits


def print_methods_table(
    methods: Dict[str, Any], only: Optional[Sequence[str]], columns: Sequence[str], cell: Callable[[Any, int], str]
) -> None:
    """Run each method (``only`` these, if given) on each column's problem (``cell(method, index)`` runs it
    and formats the result) with one BLAS thread, printing each row as it is done."""
    print("| method | " + " | ".join(columns) + " | time (s) |")
    print("|---|" + "---|" * (len(columns) + 1))
    with threadpool_limits(limits=1):
        for name, method in methods.items():
            if only and name not in only:
                continue
            started = time.perf_counter()
            cells = [cell(method, index) for index in range(len(columns))]
            print(f"| {name} | " + " | ".join(cells) + f" | {time.perf_counter() - started:.0f} |", flush=True)
