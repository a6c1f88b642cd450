"""Hydra's own shared test suites, run with exp_grid as the sweeper and its default options.

The suites compare each job's config with exact expected dicts, so they also
check that exp_grid's defaults give an app the swept parameters and nothing else.
"""

from hydra.test_utils.launcher_common_tests import BatchedSweeperTestSuite, IntegrationTestSuite, LauncherTestSuite
from pytest import mark, param

EXP_GRID = ["hydra/sweeper=exp_grid"]


@mark.parametrize("launcher_name, overrides", [("basic", EXP_GRID + ["hydra.sweeper.max_batch_size=2"])])
class TestExpGridBatches(BatchedSweeperTestSuite):
    pass


@mark.parametrize("launcher_name, overrides", [("basic", EXP_GRID), param("joblib", EXP_GRID, marks=mark.slow)])
class TestExpGridWithLaunchers(LauncherTestSuite):
    pass


@mark.parametrize("task_launcher_cfg, extra_flags", [({}, ["-m", *EXP_GRID])])
class TestExpGridIntegration(IntegrationTestSuite):
    pass
