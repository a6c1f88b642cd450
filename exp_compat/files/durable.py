"""Writing files so that a failure leaves nothing half-written, and reading back what a kill may have cut."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import tempfile
from typing import IO, Any, Dict, Iterator, List, Tuple, Union

TEMPORARY_PREFIX = ".tmp-"  # atomic_writer's temporary files, beside the file they become

# A sweep's name starts the names of the files it writes: one plain file-name part, not hidden, not an option.
_PLAIN_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")


def is_plain_file_name(text: str) -> bool:
    return _PLAIN_FILE_NAME.match(text) is not None


def umask() -> int:
    """The process's umask, read without changing it (Linux's /proc), else by setting and restoring it."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_writer(path: Union[str, os.PathLike], newline: str | None = None, durable: bool = True) -> Iterator[IO[str]]:
    """Open a temporary file beside ``path``; it replaces ``path`` only if the block succeeds.

    A crash or an error half-way through (a value that cannot be written, a
    full disk) leaves the old file, or no file, never a truncated one.
    ``durable=False`` skips the fsync: the file is still replaced whole, but a
    crash of the machine may lose it, for files that are cheap to lose and
    written often (a job's record, once per job).
    """
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    handle = tempfile.NamedTemporaryFile("w", encoding="utf-8", newline=newline, dir=directory, prefix=TEMPORARY_PREFIX, delete=False)
    try:
        # The temporary file is created 0600; the file it becomes gets what open() would give it,
        # so a teammate or a dashboard can read results as the umask allows.
        os.chmod(handle.fileno(), 0o666 & ~umask())
        with handle:
            yield handle
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(handle.name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(handle.name)
        raise


def remove_temporaries(directory: Union[str, os.PathLike]) -> None:
    """Remove the temporary files that ``atomic_writer`` left in ``directory`` when a SIGKILL cut it short (no
    handler runs then). Only for a directory that no one else writes to now: the caller holds the sweep's lock."""
    with contextlib.suppress(OSError), os.scandir(str(directory)) as entries:
        for entry in entries:
            if entry.name.startswith(TEMPORARY_PREFIX) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def write_atomic(path: Union[str, os.PathLike], text: str, durable: bool = True) -> None:
    with atomic_writer(path, durable=durable) as handle:
        handle.write(text)


def json_lines(path: Union[str, os.PathLike]) -> List[Any]:
    """The values of an append-only file of one JSON value per line; a line torn by a kill is left out."""
    found = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
    return found


def read_csv(path: Union[str, os.PathLike]) -> Tuple[List[str], List[Dict[str, str]]]:
    """Header and complete rows of a CSV that a kill may have cut: a torn last line is left out. A byte-order
    mark (a spreadsheet's "CSV UTF-8") is not part of the first column's name."""
    with open(path, encoding="utf-8-sig") as handle:
        text = handle.read()
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    reader = csv.DictReader(text.splitlines(keepends=True))
    rows = [row for row in reader if None not in row]
    return list(reader.fieldnames or []), rows
