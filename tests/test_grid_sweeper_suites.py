"""Hydra's own shared test suites, run with exp_grid as the sweeper.

id_key/run_key are null here because the suites compare each job's config
with exact expected dicts; the default gives every job its id and run too.
"""
from hydra.test_utils.launcher_common_tests import BatchedSweeperTestSuite, IntegrationTestSuite, LauncherTestSuite
from pytest import mark, param

EXP_GRID = ["hydra/sweeper=exp_grid", "hydra.sweeper.id_key=null", "hydra.sweeper.run_key=null"]


@mark.parametrize("launcher_name, overrides", [("basic", EXP_GRID + ["hydra.sweeper.max_batch_size=2"])])
class TestExpGridBatches(BatchedSweeperTestSuite):
    pass


@mark.parametrize("launcher_name, overrides", [("basic", EXP_GRID), param("joblib", EXP_GRID, marks=mark.slow)])
class TestExpGridWithLaunchers(LauncherTestSuite):
    pass


@mark.parametrize("task_launcher_cfg, extra_flags", [({}, ["-m", *EXP_GRID])])
class TestExpGridIntegration(IntegrationTestSuite):
    pass
