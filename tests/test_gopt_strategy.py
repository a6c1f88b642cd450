"""exp_gopt's strategy in process: in asynchronous mode the slow refit runs in the background."""

from __future__ import annotations

import pytest

from exp_compat import Space
from hydra_plugins.exp_sweeper._gopt import GoptStrategy
from hydra_plugins.exp_sweeper._objectives import Objectives, normal_scores
from hydra_plugins.exp_sweeper._outcome import Outcome
from hydra_plugins.exp_sweeper._proposer import Proposer
from hydra_plugins.exp_sweeper.config import Direction, PrunedValue

REAL = {"x": {"type": "range", "bounds": [-3.0, 3.0]}}


def strategy(n_trials: int, n_initial_points: int = 3, surrogate: str = "GP") -> GoptStrategy:
    search = Space.from_mapping(REAL).search()
    proposer = Proposer(search.dimensions, surrogate=surrogate, n_initial_points=n_initial_points, seed=4)
    return GoptStrategy(search, proposer, n_trials, Objectives([Direction.minimize], None, []))


def finish(s: GoptStrategy, trial) -> None:
    s.tell(trial, Outcome("completed", value=(trial.params["x"] - 1.0) ** 2))


@pytest.mark.parametrize("surrogate", ["GP", "RF", "ET", "GBRT", "random"])
def test_a_freed_slot_is_not_kept_waiting_for_the_refit_and_its_proposal_knows_every_result(surrogate):
    s = strategy(14, surrogate=surrogate)
    running = s.ask(2)
    for _ in range(10):
        s.prepare()  # after launching: the refit with the results so far, in the background
        s.fitting.result()  # ... done while the jobs ran
        finish(s, running.pop(0))
        [new] = s.ask(1)
        assert len(s.proposer.y) == s.finished  # the result is recorded ...
        if surrogate != "random" and s.finished > 3:  # ... and the slot got its trial without a fit with it
            assert s.proposer.fitted is not None and s.proposer.fitted.n == s.finished - 1
        assert new.params["x"] not in {t.params["x"] for t in running}  # never a running point
        running.append(new)
    s.close()
    assert len(s.proposer.y) == 10  # every result told in the end
    if surrogate != "random":
        assert s.proposer.fitted.n == 10 and len(s.proposer.optimizer.models) == 1  # the plots draw a model of every result


def test_the_quick_refit_takes_the_result_that_just_arrived():
    """A result not fitted yet still steers the proposal made the moment it arrives."""
    proposals = {}
    for outcome in ("excellent", "terrible"):
        search = Space.from_mapping(REAL).search()
        proposer = Proposer(search.dimensions, n_initial_points=4, seed=0)
        proposer.tell([[-3.0], [-1.5], [3.0], [2.5]], [9.0, 6.0, 4.0, 2.0])
        proposer.record([[1.0]], [-20.0 if outcome == "excellent" else 50.0])
        proposals[outcome] = proposer.propose(1, pending=[[-2.5]])[0][0]
    assert abs(proposals["excellent"] - 1.0) < 0.5 < abs(proposals["terrible"] - 1.0)


@pytest.mark.parametrize("surrogate", ["RF", "ET", "GBRT"])
def test_tree_surrogates_keep_away_from_running_points_and_from_bad_results_they_were_not_fitted_to(surrogate):
    """Local penalisation: no tree refit per proposal, yet a batch spreads out and a terrible result
    that arrived after the fit repels the next proposal."""
    search = Space.from_mapping(REAL).search()
    proposer = Proposer(search.dimensions, surrogate=surrogate, n_initial_points=5, seed=0)
    proposer.tell([[-3.0], [-1.5], [0.0], [1.5], [3.0]], [16.0, 6.25, 1.0, 0.25, 4.0])  # (x - 1)^2
    fitted = proposer.fitted
    batch = [p[0] for p in proposer.propose(4, pending=[])]
    assert proposer.fitted is fitted  # proposals never refit
    assert min(abs(a - b) for i, a in enumerate(batch) for b in batch[i + 1 :]) > 0.05
    proposer.record([[batch[0]]], [1000.0])  # the model's favourite turned out terrible
    [[after]] = proposer.propose(1, pending=[[b] for b in batch[1:]])
    assert abs(after - batch[0]) > 0.05 and proposer.fitted is fitted


def test_batches_refit_before_proposing():
    s = strategy(6)
    first = s.ask(3)
    for trial in first:
        finish(s, trial)
    s.ask(3)
    assert len(s.proposer.y) == 3 and s.fitting is None and s.proposer.fitted.n == 3


def test_background_refits_skip_skopts_own_point_and_fit_every_result(monkeypatch):
    """An asynchronous sweep never hands out scikit-optimize's own next point (there are always running
    trials beside a proposal), so its background refit fits the surrogate alone: skopt's acquisition
    search is not run there, and the model is fitted to every result told."""
    import skopt.optimizer.optimizer as skopt_optimizer

    searches = []
    acquisition = skopt_optimizer._gaussian_acquisition
    monkeypatch.setattr(skopt_optimizer, "_gaussian_acquisition", lambda *a, **k: searches.append(1) or acquisition(*a, **k))
    s = strategy(12)
    running = s.ask(2)
    for _ in range(8):
        s.prepare()
        s.fitting.result()
        finish(s, running.pop(0))
        running += s.ask(1)
    s.prepare()
    s.fitting.result()
    assert searches == [] and len(s.proposer.y) == 8
    assert len(s.proposer.optimizer.models) == 1 and len(s.proposer.optimizer.models[-1].X_train_) == 8
    finish(s, running.pop(0))
    s.close()
    assert searches == [] and len(s.proposer.optimizer.models[-1].X_train_) == 9
    batches = strategy(4)
    for trial in batches.ask(3):
        finish(batches, trial)
    batches.ask(1)  # batches are told with skopt's own point: the search is watched
    assert searches


def test_pruned_value_says_what_the_optimizer_is_told_of_a_pruned_trial():
    told = {}
    for policy in PrunedValue:
        search = Space.from_mapping(REAL).search()
        s = GoptStrategy(
            search, Proposer(search.dimensions, n_initial_points=3, seed=4), 4, Objectives([Direction.maximize], "score", []), policy
        )
        first, second, third = s.ask(3)
        s.tell(first, Outcome("pruned", value=0.1))  # before any completed trial: capped has nothing to cap at
        s.tell(second, Outcome("completed", value={"score": 0.5}))
        s.tell(third, Outcome("pruned", value=7.0))  # far better than the completed trial, on a truncated curve
        s.close()
        told[policy.value] = [round(-y, 6) for y in s.proposer.y]  # maximized: the optimizer minimizes -score
        assert s.best_value == 0.5 and s.n_pruned == 2  # a pruned trial is never the best, however good its value
        assert len(s.proposer.seen) == 3  # every point is remembered, told or not: never proposed again
    assert told == {
        "last": [0.1, 0.5, 7.0],
        "capped": [0.1, 0.5, 7.0],
        "ignore": [0.5],
    }  # capped: never told worse than the worst completed


def test_with_a_pruner_the_surrogate_learns_the_values_normal_scores_and_the_plot_the_values():
    """Scores keep the values' order and nothing of their scale: a curve cut at an error of 0.9 is one rank
    worse than the finished trials, not forty times their spread."""
    search = Space.from_mapping(REAL).search()
    s = GoptStrategy(
        search, Proposer(search.dimensions, n_initial_points=3, seed=4), 6, Objectives([Direction.maximize], None, []), scored=True
    )
    first, second, third = s.ask(3)
    s.tell(first, Outcome("pruned", value=0.1))
    s.tell(second, Outcome("completed", value=0.5))
    s.tell(third, Outcome("pruned", value=-7.0))
    s.ask(1)  # batches: told (and fitted) before the proposal
    assert s.told == [-0.1, -0.5, 7.0]  # as minimised, in the order told
    assert s.proposer.y == pytest.approx([0.0, -0.9674216, 0.9674216])  # ranks 2, 1, 3 of 3 on a standard normal
    s.prepare()  # asynchronous from here: results recorded, refitted in the background
    s.fitting.result()
    fourth, fifth = s.ask(2)
    s.tell(fourth, Outcome("completed", value=0.7))  # the best so far: every earlier score moves down
    s.tell(fifth, Outcome("completed", value=0.5))  # ties share their rank
    s.ask(1)  # recorded for the freed slot's proposal, while a refit could be running: earlier scores not told again
    assert s.proposer.y[:3] == pytest.approx([0.0, -0.9674216, 0.9674216])
    s.close()  # the last fit learns every score anew
    assert s.told == [-0.1, -0.5, 7.0, -0.7, -0.5]
    assert s.proposer.y == pytest.approx(normal_scores(s.told)) and s.proposer.fitted.n == 5
    assert s.proposer.y[1] == s.proposer.y[4] and min(s.proposer.y) == s.proposer.y[3]
    assert s.n_pruned == 2  # (that a pruned trial is never the best: the test above, with a pruned value better than all)


def test_normal_scores_keep_the_order_and_drop_the_scale():
    assert normal_scores([0.02, 0.03, 0.9]) == normal_scores([1.0, 2.0, 3.0]) == pytest.approx([-0.9674216, 0.0, 0.9674216])
    assert normal_scores([5.0]) == [0.0] and normal_scores([]) == []
    assert normal_scores([1.0, 1.0, 3.0]) == pytest.approx([-0.4307273, -0.4307273, 0.9674216])  # mean rank 1.5
