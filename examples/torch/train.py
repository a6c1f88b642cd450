"""Train a small PyTorch network on scikit-learn's digits, on the GPU its exp_local slot was given, else the CPU.

An EXP runnable made a Hydra app with ``@runnable``. exp_local starts each worker with its slot's
``CUDA_VISIBLE_DEVICES``, so ``cuda`` here is always the job's own GPU (``cuda:0`` inside the job);
on a machine without a GPU (or with ``hydra.launcher.gpus=null``) the same code trains on the CPU.
The job reports the validation error after each epoch (``exp_compat.report``: with
``hydra.sweeper.pruner=asha`` the sweep stops hopeless trials early) and returns the last one, which
exp_gopt minimises; it also logs where it ran.

    pip install -e ".[torch,gpu]"
    # one job per GPU, every GPU of the machine:
    python examples/torch/train.py -m hydra/sweeper=exp_gopt +exp.params=examples/torch/space.conf \\
        hydra.sweeper.n_trials=20 hydra/launcher=exp_local hydra.launcher.gpus=auto
    # no GPU: two CPU workers
    python examples/torch/train.py -m hydra/sweeper=exp_gopt +exp.params=examples/torch/space.conf \\
        hydra.sweeper.n_trials=20 hydra/launcher=exp_local hydra.launcher.workers=2
    # with early stopping: 40 trials, the hopeless ones stopped at epoch 1, 3 or 9
    python examples/torch/train.py -m hydra/sweeper=exp_gopt +exp.params=examples/torch/space.conf \\
        hydra.sweeper.n_trials=40 hydra.sweeper.pruner=asha hydra.sweeper.max_resource=27 \\
        hydra/launcher=exp_local hydra.launcher.workers=2
"""

import logging
import os

from exp_compat import report, runnable

log = logging.getLogger(__name__)


@runnable
def run(lr=0.01, hidden=64, dropout=0.1, optimizer="adam", epochs=27, batch_size=64, seed=0, **kwargs):
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    torch.manual_seed(seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    log.info("training on %s (CUDA_VISIBLE_DEVICES=%s)", device, os.environ.get("CUDA_VISIBLE_DEVICES"))
    features, labels = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(features / 16.0, labels, test_size=0.25, random_state=seed)
    as_tensor = lambda a, dtype: torch.tensor(a, dtype=dtype, device=device)  # noqa: E731
    x_train, x_val = as_tensor(x_train, torch.float32), as_tensor(x_val, torch.float32)
    y_train, y_val = as_tensor(y_train, torch.long), as_tensor(y_val, torch.long)

    model = torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Dropout(dropout), torch.nn.Linear(hidden, 10)).to(
        device
    )
    make = {"adam": torch.optim.Adam, "sgd": lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9)}[optimizer]
    opt = make(model.parameters(), lr=lr)
    loss_of = torch.nn.CrossEntropyLoss()
    generator = torch.Generator(device="cpu").manual_seed(seed)
    error = 1.0
    for epoch in range(1, epochs + 1):
        model.train()
        for batch in torch.randperm(len(x_train), generator=generator).split(batch_size):
            opt.zero_grad()
            loss_of(model(x_train[batch]), y_train[batch]).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            error = 1.0 - (model(x_val).argmax(dim=1) == y_val).float().mean().item()
        report(epoch, error)  # raises exp_compat.Pruned when the sweep stops this trial
    return error


if __name__ == "__main__":
    run()
