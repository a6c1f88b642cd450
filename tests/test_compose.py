"""The workers' cached composition gives exactly the config Hydra's own load_sweep_config gives."""

from __future__ import annotations

import copy
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from hydra.version import VersionBase
from omegaconf import OmegaConf

from hydra_plugins.exp_launcher import _compose, _hydra_internals
from hydra_plugins.exp_launcher._compose import Composer

# CI runs these again against the newest Hydra 1.3.x (.ci/run, -m upstream): they check the mirrored internals
pytestmark = pytest.mark.upstream

FILES = {
    "config.yaml": """
        defaults:
          - db: mysql
          - optional opt: small
          - _self_
        lr: 0.01
        seed: 1
        label: ${db.host}-${lr}
        nested: {a: 1, b: [1, 2], c: {d: x}}
        extra: gone
        hydra:
          job:
            env_copy: [HOME]
            config:
              override_dirname:
                exclude_keys: [seed]
    """,
    "db/mysql.yaml": "host: mysql.local\nport: 3306\n",
    "db/pg.yaml": "defaults:\n  - /server@server: big\n  - _self_\nhost: pg.local\nport: 5432\n",
    "server/big.yaml": "cores: 64\n",
    "server/tiny.yaml": "cores: 1\n",
    "opt/small.yaml": "# @package _global_\nopt_size: 1\n",
}

JOBS = [
    ["lr=0.1"],
    ["lr=0.2", "seed=3"],
    ["db=pg", "lr=0.1"],
    ["db=pg", "lr=0.5", "server@db.server=tiny"],
    ["+new.key=1", "db.port=5", "nested.c.d=y"],
    ["~extra", "lr=1e-3"],
    ["++lr=3", "++fresh=[1,2]"],
    ["db={host: h, port: 1}", "lr=0.1"],
    ["hydra.job.chdir=true", "lr=0.1"],
    ["nested={a: 2}", "label='quoted ${lr}'"],
    ["~opt", "lr=0.3"],
    ["lr=0.2", "seed=3"],
    # Hydra 1.3 lets a job change the launcher (its config says so, the launcher running it stays); Hydra's main
    # branch refuses it in load_sweep_config. Not mirrored (see _hydra_internals): this job fails here first if a
    # Hydra release that refuses it is installed.
    ["hydra/launcher=exp_local", "lr=0.1"],
    ["++hydra.launcher.foo=1", "lr=0.2"],
]

BAD = [["+lr=1"], ["nosuch=1"], ["db=nosuch"], ["~nosuch"]]


@pytest.fixture()
def loader_and_master(tmp_path: Path):
    for name, text in FILES.items():
        path = tmp_path / "conf" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    version_base = copy.copy(VersionBase.instance())  # initialize_* sets it for the whole process
    with initialize_config_dir(config_dir=str(tmp_path / "conf"), job_name="app", version_base=None):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration("config", overrides=["hydra.sweep.dir=sweeps", "lr=0.1,0.2"], run_mode=RunMode.MULTIRUN)
        yield loader, master
    VersionBase.set_instance(version_base)  # or Hydra's in-process test suites, run later, see version_base=None


def test_every_job_config_equals_hydras_own(loader_and_master) -> None:
    loader, master = loader_and_master
    composer = Composer(loader, master)
    for overrides in JOBS + JOBS:  # the second round is served from the cache
        ours = composer.compose(overrides)
        hydras = loader.load_sweep_config(master, list(overrides))
        assert OmegaConf.to_yaml(ours) == OmegaConf.to_yaml(hydras), overrides
        app = {k: ours[k] for k in ours if k != "hydra"}, {k: hydras[k] for k in hydras if k != "hydra"}
        assert OmegaConf.to_yaml(app[0], resolve=True) == OmegaConf.to_yaml(app[1], resolve=True), overrides
        assert OmegaConf.is_struct(ours) and not OmegaConf.is_readonly(ours.hydra)
    # one tree per set of group choices: the defaults, db=pg, db=pg with server tiny, without opt, exp_local
    assert len(composer.trees) == 5


def test_a_jobs_identity_in_hydras_env_set_is_served_from_the_cached_tree(loader_and_master) -> None:
    """The exp sweepers give every job ``++hydra.job.env_set.EXP_CONFIG_ID=<id>``: a value override, so one
    tree serves every job (a distinct tree per job would compose each config in full and grow the worker)."""
    loader, master = loader_and_master
    composer = Composer(loader, master)
    for n in range(5):
        overrides = [f"lr={n}", f"++hydra.job.env_set.EXP_CONFIG_ID={n}", "++hydra.job.env_set.EXP_RUN=1"]
        ours = composer.compose(overrides)
        assert OmegaConf.to_yaml(ours) == OmegaConf.to_yaml(loader.load_sweep_config(master, overrides))
        assert ours.hydra.job.env_set.EXP_CONFIG_ID == str(n)
    assert len(composer.trees) == 1


def test_a_worker_keeps_a_bounded_number_of_trees(loader_and_master, monkeypatch) -> None:
    monkeypatch.setattr(_compose, "TREES", 2)
    loader, master = loader_and_master
    composer = Composer(loader, master)
    choices = [["db=mysql"], ["db=pg"], ["db=pg", "server@db.server=tiny"], ["~opt"], ["db=pg"]]
    for overrides in choices:
        ours = composer.compose([*overrides, "lr=0.5"])
        assert OmegaConf.to_yaml(ours) == OmegaConf.to_yaml(loader.load_sweep_config(master, [*overrides, "lr=0.5"]))
        assert len(composer.trees) <= 2


def test_jobs_do_not_share_state(loader_and_master) -> None:
    loader, master = loader_and_master
    composer = Composer(loader, master)
    first = composer.compose(["lr=0.1", "+new.key=1"])
    first.lr = 99.0
    second = composer.compose(["lr=0.2", "+new.key=2"])
    assert second.lr == 0.2 and second.new.key == 2 and first.new.key == 1
    assert list(second.hydra.overrides.task) == ["lr=0.2", "+new.key=2"]


@pytest.mark.parametrize("overrides", BAD, ids=lambda o: o[0])
def test_errors_are_hydras_own(loader_and_master, overrides, caplog, monkeypatch) -> None:
    monkeypatch.setattr(_compose, "_reported", set())
    loader, master = loader_and_master
    composer = Composer(loader, master)
    composer.compose(["lr=0.1"])  # warm the cache
    with pytest.raises(Exception) as ours:
        composer.compose(overrides)
    with pytest.raises(Exception) as hydras:
        loader.load_sweep_config(master, list(overrides))
    assert type(ours.value) is type(hydras.value) and str(ours.value) == str(hydras.value)
    # a user's bad override is not a fault of the fast path: it stays on, and nothing is logged
    assert composer.fast and not caplog.records


def test_a_failing_fast_path_falls_back_to_hydras_and_says_so_once(loader_and_master, caplog, monkeypatch) -> None:
    # What a Hydra release that moved the mirrored internals does: the cached path raises where Hydra's own works.
    def moved(*args, **kwargs):
        raise AttributeError("'ConfigLoaderImpl' object has no attribute '_compose_config_from_defaults_list'")

    monkeypatch.setattr(_compose, "_reported", set())
    monkeypatch.setattr(_hydra_internals, "compose_tree", moved)
    loader, master = loader_and_master
    caplog.set_level(logging.DEBUG, logger="hydra_plugins.exp_launcher")
    for composer in (Composer(loader, master), Composer(loader, master)):  # once per process, not per composer
        for overrides in JOBS:
            ours = composer.compose(overrides)
            assert OmegaConf.to_yaml(ours) == OmegaConf.to_yaml(loader.load_sweep_config(master, list(overrides)))
        assert not composer.fast
    [record] = caplog.records
    assert record.levelno == logging.WARNING and record.name == "hydra_plugins.exp_launcher"
    message = record.getMessage()
    assert "AttributeError: 'ConfigLoaderImpl' object has no attribute '_compose_config_from_defaults_list'" in message
    assert _hydra_internals.MIRRORED in message


def test_apply_overrides_sets_value_overrides_in_a_config_as_hydra_does():
    """exp_compat's private Hydra function (``exp-compat convert``'s check of what a job receives, and the cached
    composition's last step): adding, forcing, changing, deleting and merging a dict value."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from exp_compat._hydra_internals import apply_overrides

    config = OmegaConf.create({"a": {"b": 1, "d": {"e": 1}}, "gone": 2})
    apply_overrides(OverridesParser.create().parse_overrides(["a.b=3", "+c=[1,2]", "++f=x", "~gone", "a.d={g: 2}"]), config)
    assert OmegaConf.to_container(config) == {"a": {"b": 3, "d": {"e": 1, "g": 2}}, "c": [1, 2], "f": "x"}


def test_job_error_is_the_exception_a_failed_job_raised(capsys):
    """The private field of JobReturn that exp_compat reads: what a failed job raised, set with the public setter as
    Hydra's run_job and the launchers set it, and which the public ``return_value`` raises instead of returning."""
    from hydra.core.utils import JobReturn, JobStatus

    from exp_compat._hydra_internals import job_error
    from hydra_plugins.exp_launcher._jobs import failed_job_return

    error = ValueError("bad")
    failed = failed_job_return(error, overrides=["a=1"])
    assert job_error(failed) is error
    with pytest.raises(ValueError):
        failed.return_value  # noqa: B018
    completed = JobReturn(status=JobStatus.COMPLETED)
    completed.return_value = 3
    assert job_error(completed) is None and completed.return_value == 3


def test_apps_stopped_stops_a_hydra_app_called_while_it_holds():
    """The private hook of hydra.main that a worker replaces while it runs the app script again (an unguarded
    script calls its app at import): with the installed Hydra, the app does not run and AppStarted says so.
    In a process of its own: hydra.main sets the process's version base, which Hydra's suites here rely on."""
    code = """
import sys, hydra
from hydra_plugins.exp_launcher._hydra_internals import AppStarted, apps_stopped, can_stop_apps
ran = []
@hydra.main(version_base=None, config_path=None, config_name=None)
def app(cfg):
    ran.append(cfg)
assert can_stop_apps()
try:
    with apps_stopped():
        app()
except AppStarted:
    print("stopped", ran)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "stopped []", done.stdout + done.stderr
