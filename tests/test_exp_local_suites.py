"""Hydra's shared launcher test suites, run with exp_local."""

from hydra.test_utils.launcher_common_tests import IntegrationTestSuite, LauncherTestSuite
from pytest import mark


@mark.parametrize("launcher_name, overrides", [("exp_local", ["hydra.launcher.workers=2"])])
class TestExpLocal(LauncherTestSuite):
    pass


@mark.parametrize("task_launcher_cfg, extra_flags", [({}, ["-m", "hydra/launcher=exp_local", "hydra.launcher.workers=2"])])
class TestExpLocalIntegration(IntegrationTestSuite):
    pass
