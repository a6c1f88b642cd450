"""Tune a gradient-boosted classifier on scikit-learn's digits (shipped with scikit-learn: no download).

An EXP runnable made a Hydra app with ``@runnable``: the space (``space.conf``) mixes a log-uniform
learning rate, an integer depth and a categorical regularisation; the job returns the 3-fold
cross-validated error (1 - accuracy), which exp_gopt minimises.

    python examples/digits/train.py -m hydra/sweeper=exp_gopt +exp.params=examples/digits/space.conf \\
        hydra.sweeper.n_trials=20 hydra.sweeper.plot=true hydra/launcher=exp_local hydra.launcher.workers=2
"""

from exp_compat import runnable


@runnable
def run(learning_rate=0.1, max_depth=3, l2_regularization=0.0, max_iter=40, seed=0, **kwargs):
    from sklearn.datasets import load_digits
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import cross_val_score

    features, labels = load_digits(return_X_y=True)
    model = HistGradientBoostingClassifier(
        learning_rate=learning_rate, max_depth=max_depth, max_iter=max_iter, l2_regularization=l2_regularization, random_state=seed
    )
    accuracy = cross_val_score(model, features, labels, cv=3).mean()
    return 1.0 - float(accuracy)


if __name__ == "__main__":
    run()
