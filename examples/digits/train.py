"""Tune a gradient-boosted classifier on scikit-learn's digits (shipped with scikit-learn: no download).

An EXP runnable made a Hydra app with ``@runnable``: the space (``space.conf``) mixes a log-uniform
learning rate, an integer depth and a categorical regularisation; the job returns the 3-fold
cross-validated error (1 - accuracy), which exp_gopt minimises. The three models grow by ``every``
boosting iterations at a time (``warm_start``), and the error after each growth is reported
(``exp_compat.report``), so that ``hydra.sweeper.pruner=asha`` can stop a hopeless trial early.

    python examples/digits/train.py -m hydra/sweeper=exp_gopt +exp.params=examples/digits/space.conf \\
        hydra.sweeper.n_trials=20 hydra.sweeper.plot=true hydra/launcher=exp_local hydra.launcher.workers=2
    # with early stopping at 5, 10 and 20 iterations:
    python examples/digits/train.py -m hydra/sweeper=exp_gopt +exp.params=examples/digits/space.conf \\
        hydra.sweeper.n_trials=30 hydra.sweeper.pruner=asha hydra.sweeper.min_resource=5 \\
        hydra.sweeper.max_resource=40 hydra.sweeper.reduction_factor=2 hydra/launcher=exp_local hydra.launcher.workers=2
"""

from exp_compat import report, runnable


@runnable
def run(learning_rate=0.1, max_depth=3, l2_regularization=0.0, max_iter=40, every=5, seed=0, **kwargs):
    from sklearn.datasets import load_digits
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold

    features, labels = load_digits(return_X_y=True)
    folds = list(StratifiedKFold(n_splits=3).split(features, labels))
    models = [
        HistGradientBoostingClassifier(
            learning_rate=learning_rate, max_depth=max_depth, l2_regularization=l2_regularization, random_state=seed, warm_start=True
        )
        for _ in folds
    ]
    error = 1.0
    for iterations in range(every, max_iter + 1, every):
        accuracies = []
        for model, (train, test) in zip(models, folds):
            model.set_params(max_iter=iterations)  # warm_start: grows the fitted model by `every` iterations
            model.fit(features[train], labels[train])
            accuracies.append(model.score(features[test], labels[test]))
        error = 1.0 - sum(accuracies) / len(accuracies)
        report(iterations, error)  # raises exp_compat.Pruned when the sweep stops this trial
    return error


if __name__ == "__main__":
    run()
