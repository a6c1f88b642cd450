"""Writing files so that a failure leaves nothing half-written."""
from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO, Iterator, Union


@contextlib.contextmanager
def atomic_writer(path: Union[str, os.PathLike], newline: str | None = None) -> Iterator[IO[str]]:
    """Open a temporary file beside ``path``; it replaces ``path`` only if the block succeeds.

    A crash or an error half-way through (a value that cannot be written, a
    full disk) leaves the old file, or no file, never a truncated one.
    """
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    handle = tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", newline=newline, dir=directory, prefix=".tmp-", delete=False
    )
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(handle.name)
        raise


def write_atomic(path: Union[str, os.PathLike], text: str) -> None:
    with atomic_writer(path) as handle:
        handle.write(text)
