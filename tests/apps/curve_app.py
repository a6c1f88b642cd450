"""A Hydra app that trains on a known learning curve and reports each epoch (``exp_compat.report``).

Its loss at epoch ``e`` is ``q + 10 / e``: the configurations rank by ``q`` at every epoch, so the pruner's
right decisions are known in advance. Keys: ``q`` (the configuration's quality, smaller is better),
``epochs`` (how many epochs it trains), ``behave.log`` (a file to append one JSON line per epoch actually
trained: the job's q and epoch), ``behave.nan_at`` (report NaN at this epoch), ``behave.sleep`` (seconds per
epoch), ``behave.wait_per_q`` (seconds per unit of q to wait before the first epoch: the better configurations
reach each rung first, whatever order the jobs start in), ``behave.bad`` (report this instead of a number at
epoch 2), ``behave.catch`` (catch Pruned and report again), ``behave.return_none`` (return nothing: the last
report is the result), ``behave.negate`` (report and return minus the loss: a score to maximize),
``behave.overfit`` (the loss is ``q + epoch``: it grows with training, so a trial stopped early reports a
better value than any that trained to the end).

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

import hydra
from omegaconf import DictConfig

from exp_compat import Pruned, report

PRUNED_EXIT = 3


def report_in_child(q: float, epoch: int, loss: float, log: str) -> None:
    try:
        report(epoch, loss)
    except Pruned as pruned:
        if log:
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"child_of": q, "pruned_at": epoch, "pid": os.getpid(), "step": pruned.step}) + "\n")
        sys.exit(PRUNED_EXIT)


def train(cfg: DictConfig, behave) -> float:
    q = float(cfg.q)
    loss = None
    if behave.get("wait_per_q"):
        time.sleep(q * float(behave.wait_per_q))
    for epoch in range(1, int(cfg.get("epochs", 9)) + 1):
        if behave.get("sleep"):
            time.sleep(float(behave.sleep))
        if behave.get("log"):
            with open(behave.log, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"q": q, "epoch": epoch, "at": time.time()}) + "\n")
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
                    with open(behave.log, "a", encoding="utf-8") as handle:
                        handle.write(json.dumps({"lingers": q, "at": time.time()}) + "\n")
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
