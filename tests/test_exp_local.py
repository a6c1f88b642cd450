"""exp_local: device slots, faults and clean-up, with real processes (devices from a stand-in NVML, whatever the machine has)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from conftest import APPS, csv_rows

from hydra_plugins.exp_launcher._devices import Device, LauncherError, device_slots


def records(path: Path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def marked_processes(mark: str):
    """Processes whose environment carries this test's mark (our workers and everything they started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if mark.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def alive(pid: int) -> bool:
    """Running (a zombie, killed but not yet reaped by whoever inherited it, is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return False


def overlaps(jobs):
    return [(a["num"], b["num"]) for a, b in itertools.combinations(jobs, 2) if a["started"] < b["ended"] and b["started"] < a["ended"]]


@pytest.fixture
def mark():
    return f"exp-test-{uuid.uuid4().hex}"


FAKE_NVML = '''"""A stand-in for nvidia-ml-py, written by tests/test_exp_local.py: the devices below, or no NVML at all."""
import types

DEVICES = {devices!r}


class NVMLError(Exception):
    pass


def nvmlInit():
    if DEVICES is None:
        raise NVMLError("NVML Shared Library Not Found")


def nvmlShutdown():
    pass


def nvmlDeviceGetCount():
    return len(DEVICES)


def nvmlDeviceGetHandleByIndex(index):
    return index


def nvmlDeviceGetUUID(handle):
    return DEVICES[handle][0]


def nvmlDeviceGetMemoryInfo(handle):
    return types.SimpleNamespace(used=DEVICES[handle][1], total=1.0)


def nvmlDeviceGetUtilizationRates(handle):
    return types.SimpleNamespace(gpu=100 * DEVICES[handle][2])
'''


@pytest.fixture
def fake_nvml(tmp_path, monkeypatch):
    """Make the apps these tests run see exactly these devices, whatever this machine has (None: no NVML).

    A ``pynvml`` module first on PYTHONPATH answers the launcher's NVML queries; the parent's
    CUDA_VISIBLE_DEVICES is cleared, so only the devices given here count.
    """

    def install(*uuids):
        """Each device a UUID (idle), or (UUID, memory in use, utilization) as fractions."""
        folder = tmp_path / "fake_nvml"
        folder.mkdir(exist_ok=True)
        devices = None if uuids == (None,) else [uuid if isinstance(uuid, tuple) else (uuid, 0.0, 0.0) for uuid in uuids]
        (folder / "pynvml.py").write_text(FAKE_NVML.format(devices=devices), encoding="utf-8")
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(folder), *filter(None, [os.environ.get("PYTHONPATH")])]))
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)

    return install


def test_each_job_sees_exactly_its_slots_device_and_no_two_share_one(tmp_path, hydra_app, mark, fake_nvml):
    fake_nvml("GPU-1a2b", "GPU-8f2c")
    log = tmp_path / "jobs.jsonl"
    done = hydra_app(
        "hydra/launcher=exp_local",
        "hydra.launcher.gpus=[0,GPU-8f2c]",
        "+x=range(0,6)",
        "+behave.sleep=0.3",
        f"+behave.record={log}",
        f"+hydra.launcher.env.EXP_TEST_MARK={mark}",
        "+hydra.launcher.env.EXP_TEST_EXTRA=hello",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "NVML is not available" not in done.stderr + done.stdout  # checked against the devices found
    jobs = records(log)
    assert len(jobs) == 6
    for job in jobs:
        assert job["env"]["CUDA_VISIBLE_DEVICES"] in ("0", "GPU-8f2c")
        assert job["env"]["EXP_DEVICES"] == job["env"]["CUDA_VISIBLE_DEVICES"]
        assert job["env"]["EXP_WORKER_ID"] in ("0", "1") and job["env"]["EXP_TEST_EXTRA"] == "hello"
    for device in ("0", "GPU-8f2c"):
        on_device = [j for j in jobs if j["env"]["CUDA_VISIBLE_DEVICES"] == device]
        assert on_device and not overlaps(on_device)
    assert overlaps(jobs)  # the two slots did run at the same time
    assert len({j["pid"] for j in jobs}) == 2  # persistent workers: two processes ran all six jobs
    assert not marked_processes(mark)


def test_without_nvml_an_explicit_device_list_is_used_as_given_with_a_warning(tmp_path, hydra_app, fake_nvml):
    fake_nvml(None)
    log = tmp_path / "jobs.jsonl"
    done = hydra_app("hydra/launcher=exp_local", "hydra.launcher.gpus=[0,GPU-8f2c]", "+x=range(0,2)", f"+behave.record={log}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "NVML is not available" in done.stderr + done.stdout
    assert {j["env"]["CUDA_VISIBLE_DEVICES"] for j in records(log)} <= {"0", "GPU-8f2c"}


def test_jobs_per_gpu_packs_jobs_and_gpus_per_job_groups_devices(tmp_path, hydra_app, fake_nvml):
    fake_nvml("GPU-a", "GPU-b", "GPU-c", "GPU-d")
    log = tmp_path / "jobs.jsonl"
    done = hydra_app(
        "hydra/launcher=exp_local",
        "hydra.launcher.gpus=[0,1,2,3]",
        "hydra.launcher.gpus_per_job=2",
        "hydra.launcher.jobs_per_gpu=2",
        "+x=range(0,8)",
        "+behave.sleep=1.5",
        f"+behave.record={log}",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = records(log)
    assert {j["env"]["CUDA_VISIBLE_DEVICES"] for j in jobs} == {"0,1", "2,3"}
    for group in ("0,1", "2,3"):
        on_group = [j for j in jobs if j["env"]["CUDA_VISIBLE_DEVICES"] == group]
        assert overlaps(on_group)  # two jobs did share the group at once
        # and at most two: no three jobs pairwise overlapping
        assert not any(
            all(a["started"] < b["ended"] and b["started"] < a["ended"] for a, b in itertools.combinations(trio, 2))
            for trio in itertools.combinations(on_group, 3)
        )


def test_real_nvml_devices_are_found_and_shared_out(tmp_path, hydra_app):
    """The one test of the real NVML path: it runs where nvidia-ml-py and a GPU are present."""
    from hydra_plugins.exp_launcher._devices import nvml_devices, parent_visible

    devices = nvml_devices()
    if not devices:
        pytest.skip("no NVML (pip install nvidia-ml-py) or no NVIDIA GPU here")
    allowed = set(parent_visible() or [d.index for d in devices])
    log = tmp_path / "jobs.jsonl"
    done = hydra_app(
        "hydra/launcher=exp_local", "hydra.launcher.gpus=auto", "hydra.launcher.skip_busy=null", "+x=range(0,4)", f"+behave.record={log}"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = {j["env"]["CUDA_VISIBLE_DEVICES"] for j in records(log)}
    assert seen and seen <= allowed and "NVML is not available" not in done.stderr + done.stdout


def test_auto_leaves_out_busy_devices_unless_skip_busy_is_null(tmp_path, hydra_app, fake_nvml):
    fake_nvml("GPU-idle", ("GPU-full", 0.9, 0.0), ("GPU-busy", 0.0, 0.5))
    log = tmp_path / "jobs.jsonl"
    done = hydra_app("hydra/launcher=exp_local", "hydra.launcher.gpus=auto", "+x=range(0,3)", f"+behave.record={log}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "skipping busy GPU 1" in done.stdout and "skipping busy GPU 2" in done.stdout
    assert {j["env"]["CUDA_VISIBLE_DEVICES"] for j in records(log)} == {"0"}
    log.unlink()
    done = hydra_app(
        "hydra/launcher=exp_local",
        "hydra.launcher.gpus=auto",
        "hydra.launcher.skip_busy=null",
        "+x=range(0,6)",
        "+behave.sleep=0.3",
        f"+behave.record={log}",
        "hydra.sweep.dir=all",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert {j["env"]["CUDA_VISIBLE_DEVICES"] for j in records(log)} == {"0", "1", "2"}


def test_parent_cuda_visible_devices_is_inherited_only_through_slots(tmp_path, hydra_app, fake_nvml):
    fake_nvml(*(f"GPU-{i}" for i in range(6)))
    log = tmp_path / "jobs.jsonl"
    env_done = subprocess.run(
        [
            sys.executable,
            str(APPS / "task_app.py"),
            "-m",
            "hydra/launcher=exp_local",
            "hydra.launcher.gpus=[3]",
            "+x=range(0,2)",
            f"+behave.record={log}",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        ],
        cwd=tmp_path,
        env=dict(os.environ, CUDA_VISIBLE_DEVICES="3,5"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert env_done.returncode == 0, env_done.stderr[-2000:]
    assert {j["env"]["CUDA_VISIBLE_DEVICES"] for j in records(log)} == {"3"}


@pytest.mark.parametrize(
    "option,words",
    [
        ("hydra.launcher.gpus=[0,0]", "more than once"),
        ("hydra.launcher.gpus_per_job=3", "only 2 devices are usable"),
        ("hydra.launcher.workers=5", "there are 2 device slots"),
        ("hydra.launcher.timeout_s=-1", "timeout_s must be a positive number"),
        ("hydra.launcher.gpus=Auto", "'Auto' is not a device; use null, auto, or a list of device indices or GPU-/MIG- UUIDs"),
        ("hydra.launcher.gpus=foo", "'foo' is not a device"),
        ("hydra.launcher.gpus=[0,cuda:1]", "'cuda:1' is not a device"),
        ("hydra.launcher.gpus=-1", "-1 is not a device"),
        ("hydra.launcher.gpus=true", "True is not a device"),
    ],
)
def test_invalid_device_settings_fail_before_any_job(tmp_path, hydra_app, fake_nvml, option, words):
    # a misspelt device is refused even where NVML cannot check it (before, CUDA_VISIBLE_DEVICES=Auto ran)
    fake_nvml(*([None] if "is not a device" in words else ["GPU-a", "GPU-b"]))
    base = ["hydra/launcher=exp_local", "hydra.launcher.gpus=[0,1]"]
    if option.startswith("hydra/launcher") or option.startswith("hydra.launcher.gpus="):
        base = ["hydra/launcher=exp_local"]
    done = hydra_app(*base, option, "+x=range(0,2)")
    assert done.returncode == 1 and words in done.stderr and "Traceback" not in done.stderr
    assert not any(p.name.isdigit() for p in (tmp_path / "sweep").glob("*"))


@pytest.mark.parametrize("option", ["hydra.launcher.gpus=auto", "hydra/launcher=exp_gpu"])
def test_auto_without_a_gpu_fails_before_any_job(tmp_path, hydra_app, fake_nvml, option):
    fake_nvml(None)
    done = hydra_app("hydra/launcher=exp_local", option, "+x=range(0,2)")
    assert done.returncode == 1 and "no NVIDIA GPU found" in done.stderr and "Traceback" not in done.stderr
    assert not any(p.name.isdigit() for p in (tmp_path / "sweep").glob("*"))


def nvml_like(*devices):
    return [Device(str(i), uuid, mem, util) for i, (uuid, mem, util) in enumerate(devices)]


def test_auto_uses_free_devices_within_the_parents_visible_list():
    devices = nvml_like(("GPU-a", 0.0, 0.0), ("GPU-b", 0.9, 0.0), ("GPU-c", 0.0, 0.5), ("GPU-d", 0.1, 0.1))
    skip = type("Skip", (), {"max_memory": 0.2, "max_utilization": 0.2})()
    assert device_slots("auto", 1, 1, skip, devices=devices, visible=None) == [("0",), ("3",)]
    assert device_slots("auto", 1, 1, skip, devices=devices, visible=["GPU-d", "1", "0"]) == [("GPU-d",), ("0",)]
    assert device_slots("auto", 2, 1, None, devices=devices, visible=["2"]) == [("2",), ("2",)]
    with pytest.raises(LauncherError, match="not a device here"):
        device_slots("auto", 1, 1, None, devices=devices, visible=["7"])
    with pytest.raises(LauncherError, match="no such device"):
        device_slots(["0", "GPU-zzz"], 1, 1, None, devices=devices, visible=None)
    with pytest.raises(LauncherError, match="one device twice"):
        device_slots(["0", "GPU-a"], 1, 1, None, devices=devices, visible=None)
    with pytest.raises(LauncherError, match="outside the parent's CUDA_VISIBLE_DEVICES"):
        device_slots(["0"], 1, 1, None, devices=devices, visible=["1"])


def test_faults_fail_only_their_job_and_leave_nothing_running(tmp_path, hydra_app, mark):
    log = tmp_path / "jobs.jsonl"
    done = hydra_app(
        "hydra/sweeper=exp_grid",
        "hydra/launcher=exp_local",
        "hydra.launcher.workers=2",
        "hydra.launcher.timeout_s=3",
        "+x=range(0,7)",
        f"+behave.record={log}",
        "+behave.fail_if=1",
        "+behave.exit_if=2",
        "+behave.kill_if=3",
        "+behave.hang_if=4",
        f"+hydra.launcher.env.EXP_TEST_MARK={mark}",
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {r["x"]: r for r in csv_rows(tmp_path / "sweep" / "exp_results.csv")}
    assert [rows[str(x)]["exp.status"] for x in range(7)] == ["completed", "failed", "failed", "failed", "failed", "completed", "completed"]
    assert rows["1"]["exp.error"] == "ValueError: boom at x=1"
    assert rows["2"]["exp.error"] == "RuntimeError: the worker process died (exit status 3)"
    assert rows["3"]["exp.error"] == "RuntimeError: the worker process died (killed by signal 9 (SIGKILL))"
    assert rows["4"]["exp.error"].startswith("TimeoutError: the job ran longer than hydra.launcher.timeout_s=3")
    hung = [j for j in records(log) if j["config"]["x"] == 4][0]
    assert not alive(hung["child"])  # the hung job's own child was killed with it
    assert not marked_processes(mark)


def wait_for(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_interrupting_or_killing_the_driver_leaves_no_process(tmp_path, mark, how, spawn):
    log = tmp_path / "jobs.jsonl"
    driver = spawn(
        [
            sys.executable,
            str(APPS / "task_app.py"),
            "-m",
            "hydra/launcher=exp_local",
            "hydra.launcher.workers=2",
            "+x=range(0,4)",
            "+behave.hang_if=0",
            f"+behave.record={log}",
            f"+hydra.launcher.env.EXP_TEST_MARK={mark}",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert wait_for(lambda: len(marked_processes(mark)) >= 3)  # two workers, and the hanging job's child
    time.sleep(0.5)
    driver.send_signal(how)
    driver.wait(timeout=30)
    assert wait_for(lambda: not marked_processes(mark), timeout=10), marked_processes(mark)


@pytest.mark.parametrize("limit,processes", [("null", 2), ("1", 6)])
def test_max_jobs_per_worker(tmp_path, hydra_app, limit, processes):
    log = tmp_path / "jobs.jsonl"
    done = hydra_app(
        "hydra/launcher=exp_local",
        "hydra.launcher.workers=2",
        f"hydra.launcher.max_jobs_per_worker={limit}",
        "+x=range(0,6)",
        f"+behave.record={log}",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert len({j["pid"] for j in records(log)}) == processes


@pytest.mark.parametrize(
    "setting,parent,expected",
    [
        (None, None, str(max(1, (os.cpu_count() or 1) // 2))),  # the CPUs shared out between 2 workers
        ("3", None, "3"),
        ("0", None, None),  # the libraries' own defaults
        (None, "7", "7"),  # the user's environment wins
    ],
)
def test_thread_pools_are_sized_per_worker(tmp_path, setting, parent, expected):
    """OpenMP/BLAS pools sized for the whole machine in every worker oversubscribe the CPUs: a
    scikit-learn job was measured over 30 times slower that way (docs/launchers.md, Thread pools)."""
    log = tmp_path / "jobs.jsonl"
    args = [
        sys.executable,
        str(APPS / "task_app.py"),
        "-m",
        "hydra/launcher=exp_local",
        "hydra.launcher.workers=2",
        "+x=range(0,2)",
        f"+behave.record={log}",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    ]
    if setting is not None:
        args.append(f"hydra.launcher.threads_per_worker={setting}")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    if parent is not None:
        env["OMP_NUM_THREADS"] = parent
    done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = records(log)
    assert len(jobs) == 2 and {j["env"]["OMP_NUM_THREADS"] for j in jobs} == {expected}
    shared = str(max(1, (os.cpu_count() or 1) // 2))
    mkl = None if setting == "0" else (setting or shared)  # each variable the environment leaves unset
    assert {j["env"]["MKL_NUM_THREADS"] for j in jobs} == {mkl}


def test_a_job_taken_back_after_its_worker_went_on_leaves_the_worker_on_the_job_handed_since():
    """The dispatcher's side of handing jobs ahead, against a worker played by the test over a real socket: a
    job asked back (for another worker gone idle) whose worker's previous job ended first, with one more job
    handed to that worker before the answer came. The worker runs that later job, whose result must reach its
    future; the one taken back goes to the queue, ready to run once more."""
    import socket
    from concurrent.futures import Future
    from multiprocessing.connection import Connection

    from hydra_plugins.exp_launcher._jobs import Job
    from hydra_plugins.exp_launcher._local import LocalEngine, Worker

    engine = LocalEngine({"workers": 2}, hydra_context=None, task_function=None, config=None)
    played, peers = [], []
    for worker_id in range(2):
        ours, theirs = socket.socketpair()
        worker = Worker.__new__(Worker)
        worker.__dict__.update(worker_id=worker_id, devices=None, conn=Connection(ours.detach()), ready=True)
        worker.__dict__.update(job=None, ahead=None, taking_back=None, jobs_done=0)
        played.append(worker)
        peers.append(Connection(theirs.detach()))
    a, b = played
    engine.workers = [a, None]
    jobs = [Job(idx, [f"+x={idx}"], Future()) for idx in range(4)]
    engine.queue.extend(jobs[1:3])
    engine._assign()  # job 1 runs on a, job 2 is handed ahead to it
    assert (a.job, a.ahead) == (jobs[1], jobs[2]) and [peers[0].recv()[1] for _ in range(2)] == [1, 2]
    engine.workers = [a, b]
    engine._assign()  # b is idle with nothing queued: job 2 is asked back
    assert peers[0].recv() == ("take_back", 2)
    peers[0].send(("done", 1, "result 1"))  # ...but job 1 ended first
    engine._receive(0)
    assert jobs[1].future.result() == "result 1" and a.job is jobs[2]
    b.job = jobs[0]  # b got busy meanwhile
    engine.queue.append(jobs[3])
    engine._assign()  # job 3 is handed ahead to a
    assert a.ahead is jobs[3] and peers[0].recv() == ("job", 3, ["+x=3"])
    peers[0].send(("taken_back", 2))  # job 2 had not started: a goes on to job 3
    engine._receive(0)
    assert a.job is jobs[3] and a.ahead is None and list(engine.queue) == [jobs[2]]
    peers[0].send(("started", 3, None))
    engine._receive(0)
    peers[0].send(("done", 3, "result 3"))
    engine._receive(0)
    assert jobs[3].future.result(timeout=1) == "result 3"
    engine._assign()  # a is free again: the job taken back runs there, its future already running
    assert a.job is jobs[2] and jobs[2].future.running() and peers[0].recv() == ("job", 2, ["+x=2"])


def test_a_message_travels_as_a_tuple_kind_first_and_a_done_with_cloudpickle():
    """The wire format between exp_local's driver and a worker: each message a pickled tuple, its kind first; a
    Done with cloudpickle, as its JobReturn may hold an object of a class that plain pickle cannot name."""
    import pickle

    from hydra_plugins.exp_launcher._messages import Done, Hello, RunJob, Started, Stop, TakeBack, TakenBack, decode, encode

    class Made:  # a class defined where pickle cannot find it by name, as in a job's script
        def __eq__(self, other):
            return type(other).__name__ == "Made"

    wire = [
        (Hello(), ("hello",)),
        (RunJob(3, ["+x=3"]), ("job", 3, ["+x=3"])),
        (TakeBack(2), ("take_back", 2)),
        (TakenBack(2), ("taken_back", 2)),
        (Started(3, {"name": "app"}), ("started", 3, {"name": "app"})),
        (Stop(), ("stop",)),
    ]
    for message, words in wire:
        assert pickle.loads(encode(message)) == words and decode(encode(message)) == message
    done = decode(encode(Done(4, Made())))
    assert isinstance(done, Done) and done.idx == 4 and done.job_return == Made()
