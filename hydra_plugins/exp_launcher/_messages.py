"""What exp_local's driver and its workers say to each other over a worker's socket, and how it travels.

A worker starts with ``Hello`` once its imports are done; the driver answers with the sweep's ``sys.path`` and
app script, then its payload (:func:`send_setup`); the worker says ``Ready``. From then on the driver sends
``RunJob``, ``TakeBack`` (a job handed ahead, if it has not started) and ``Stop``; the worker sends ``Started``
and ``Done`` for each job it runs, and ``TakenBack`` for a job it gives back.

On the wire each message is a tuple, its kind first (``("job", idx, overrides)``), pickled; a ``Done`` with
cloudpickle, as its JobReturn may hold any object the job made (a class its script defines). Only :func:`encode`
and :func:`decode` know this, as only this module knows how the answer to Hello travels.
"""

from __future__ import annotations

import dataclasses
import pickle
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any, ClassVar, Dict, List, Optional, Tuple, Type, Union

if TYPE_CHECKING:
    from hydra_plugins.exp_launcher._main import MainScript


@dataclasses.dataclass(frozen=True)
class Hello:
    """The worker's imports are done: it waits for the sweep's payload (the driver never waits for imports)."""

    kind: ClassVar[str] = "hello"


@dataclasses.dataclass(frozen=True)
class Ready:
    """The worker has the payload and takes jobs."""

    kind: ClassVar[str] = "ready"


@dataclasses.dataclass(frozen=True)
class RunJob:
    """Run this job: now if the worker is idle, else as its current job ends (handed ahead)."""

    idx: int
    overrides: List[str]
    kind: ClassVar[str] = "job"


@dataclasses.dataclass(frozen=True)
class TakeBack:
    """Give back the job handed ahead, unless it has started (then its ``Started`` is the answer)."""

    idx: int
    kind: ClassVar[str] = "take_back"


@dataclasses.dataclass(frozen=True)
class TakenBack:
    """The job handed ahead had not started: it is the driver's again."""

    idx: int
    kind: ClassVar[str] = "taken_back"


@dataclasses.dataclass(frozen=True)
class Started:
    """The job started; ``where`` says where its output goes (a failed return needs it if the worker dies)."""

    idx: int
    where: Optional[Dict[str, str]]
    kind: ClassVar[str] = "started"


@dataclasses.dataclass(frozen=True)
class Done:
    """The job ended: its JobReturn."""

    idx: int
    job_return: Any
    kind: ClassVar[str] = "done"


@dataclasses.dataclass(frozen=True)
class Stop:
    """An idle worker ends on its own (the exit handlers of job code run)."""

    kind: ClassVar[str] = "stop"


ToWorker = Union[RunJob, TakeBack, Stop]
FromWorker = Union[Hello, Ready, Started, TakenBack, Done]
Message = Union[ToWorker, FromWorker]
KINDS: Dict[str, Type[Message]] = {kind.kind: kind for kind in (Hello, Ready, RunJob, TakeBack, TakenBack, Started, Done, Stop)}


def encode(message: Message) -> bytes:
    """The message as it travels; raises what pickling raises (a job's result that cannot be sent)."""
    fields = (message.kind, *(getattr(message, field.name) for field in dataclasses.fields(message)))
    if isinstance(message, Done):
        import cloudpickle

        return cloudpickle.dumps(fields)
    return pickle.dumps(fields)


def decode(payload: bytes) -> Message:
    kind, *fields = pickle.loads(payload)
    return KINDS[kind](*fields)


def send(conn: Connection, message: Message) -> None:
    conn.send_bytes(encode(message))


def receive(conn: Connection) -> Message:
    return decode(conn.recv_bytes())


def send_setup(conn: Connection, path: List[str], main: Optional[MainScript], payload: bytes) -> None:
    """The answer to Hello: ``sys.path`` and the app script first, as the worker must run the script before it
    reads the payload (made by ``_main.dumps``), whose classes and functions from the script refer to it."""
    conn.send_bytes(pickle.dumps((path, main)))
    conn.send_bytes(payload)


def receive_setup(conn: Connection) -> Tuple[List[str], Optional[MainScript]]:
    path, main = pickle.loads(conn.recv_bytes())
    return path, main


def receive_payload(conn: Connection) -> Any:
    import cloudpickle

    return cloudpickle.loads(conn.recv_bytes())
