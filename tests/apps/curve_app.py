"""A Hydra app that trains on a known learning curve and reports each epoch (``exp_compat.report``).

Its loss at epoch ``e`` is ``q + 10 / e``: the configurations rank by ``q`` at every epoch, so the pruner's
right decisions are known in advance. Keys: ``q`` (the configuration's quality, smaller is better),
``epochs`` (how many epochs it trains), ``behave.log`` (a file to append one JSON line per epoch actually
trained: the job's q, epoch and time), ``behave.nan_at`` (report NaN at this epoch), ``behave.sleep`` (seconds
per epoch), ``behave.after_best`` (a trial of q > 0 waits, 60 s at most, before its first epoch until the log
shows that q = 0 trained its second epoch, past the first rung: the best reaches it first, whatever order the
jobs start in), ``behave.hold`` (a file: wait, 60 s at most, until it exists before the first epoch),
``behave.bad`` (report this instead of a number at epoch 2), ``behave.catch`` (catch Pruned and report
again), ``behave.return_none`` (return nothing: the last report is the result), ``behave.negate`` (report
and return minus the loss: a score to maximize), ``behave.overfit`` (the loss is ``q + epoch``: it grows
with training, so a trial stopped early reports a better value than any that trained to the end).

What real training scripts do around the loop: ``behave.swallow`` (a broad ``except Exception`` around the
loop that returns this number instead), ``behave.thread`` (the loop runs in a thread; the job returns
``behave.swallow``, or -1000), ``behave.linger`` (catch Pruned, go on for this many seconds, then return the
loss), ``behave.child`` (``fork`` or ``spawn``: each epoch's report comes from a new child process, as from a
DataLoader worker; the job trains every epoch whatever the children hear, and returns the loss).
"""

import json
import multiprocessing
import os
import sys
import threading
import time
from typing import Callable

import hydra
from omegaconf import DictConfig

from exp_compat import Pruned, report

PRUNED_EXIT = 3


def logged(log: str, q: float, epoch: int) -> bool:
    """Whether the log shows that the trial of this q trained this epoch."""
    try:
        with open(log, encoding="utf-8") as handle:
            entries = (json.loads(line) for line in handle if line.endswith("\n"))
            return any(entry.get("q") == q and entry.get("epoch") == epoch for entry in entries)
    except FileNotFoundError:
        return False


def wait_until(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def write(log: str, entry: dict) -> None:
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")


def report_in_child(q: float, epoch: int, loss: float, log: str) -> None:
    try:
        report(epoch, loss)
    except Pruned as pruned:
        if log:
            write(log, {"child_of": q, "pruned_at": epoch, "pid": os.getpid(), "step": pruned.step})
        sys.exit(PRUNED_EXIT)


def train(cfg: DictConfig, behave) -> float:
    q = float(cfg.q)
    loss = None
    if behave.get("after_best") and q > 0:
        wait_until(lambda: logged(behave.log, 0.0, 2))
    if behave.get("hold"):
        wait_until(lambda: os.path.exists(behave.hold))
    for epoch in range(1, int(cfg.get("epochs", 9)) + 1):
        if behave.get("sleep"):
            time.sleep(float(behave.sleep))
        if behave.get("log"):
            write(behave.log, {"q": q, "epoch": epoch, "at": time.time()})
        loss = (q + (epoch if behave.get("overfit") else 10.0 / epoch)) * (-1 if behave.get("negate") else 1)
        accuracy = 1.0 / (1.0 + abs(loss))
        if behave.get("nan_at") == epoch:
            loss = float("nan")
        if behave.get("bad") is not None and epoch == 2:
            loss = behave.bad
        if behave.get("child"):
            child = multiprocessing.get_context(behave.child).Process(target=report_in_child, args=(q, epoch, loss, behave.get("log")))
            child.start()
            child.join()  # a child that heard Pruned exits PRUNED_EXIT; the job goes on regardless
            continue
        try:
            report(epoch, loss, accuracy=accuracy, epoch_seconds=0.0)
        except Pruned:
            if behave.get("linger"):
                if behave.get("log"):
                    write(behave.log, {"lingers": q, "at": time.time()})
                time.sleep(float(behave.linger))
                return loss
            if not behave.get("catch"):
                raise
            report(epoch + 1, loss)
    return loss


@hydra.main(version_base=None, config_path=None, config_name=None)
def main(cfg: DictConfig):
    behave = cfg.get("behave") or {}
    if behave.get("thread"):
        worker = threading.Thread(target=train, args=(cfg, behave))
        worker.start()
        worker.join()
        return behave.get("swallow", -1000.0)
    if behave.get("swallow") is not None:
        try:
            return train(cfg, behave)
        except Exception:
            return float(behave.swallow)
    loss = train(cfg, behave)
    return None if behave.get("return_none") else loss


if __name__ == "__main__":
    main()
