"""Both exp launchers implement the asynchronous contract the sweep loop declares, and both engines the one their
launcher class declares (Protocols, matched by shape)."""

import inspect

import pytest

from hydra_plugins.exp_launcher._launcher import Engine
from hydra_plugins.exp_launcher._local import LocalEngine
from hydra_plugins.exp_launcher._slurm import SlurmEngine
from hydra_plugins.exp_launcher.exp_local import ExpLocalLauncher
from hydra_plugins.exp_launcher.exp_slurm import ExpSlurmLauncher
from hydra_plugins.exp_sweeper._contract import AsyncLauncher

MEMBERS = [name for name in vars(AsyncLauncher) if not name.startswith("_")]
ENGINE_MEMBERS = [name for name in vars(Engine) if not name.startswith("_")]


def test_the_contract_names_what_the_sweep_loop_uses():
    assert sorted(MEMBERS) == ["ahead", "end", "end_earlier_jobs", "shutdown", "slots", "start", "submit"]


def same_member(protocol, implementation, name):
    declared, implemented = inspect.getattr_static(protocol, name), inspect.getattr_static(implementation, name, None)
    assert implemented is not None, f"{implementation.__name__} lacks {name}"
    if isinstance(declared, property):
        assert isinstance(implemented, property)
        return
    wanted = [(p.name, p.kind, p.default) for p in inspect.signature(declared).parameters.values()]
    got = [(p.name, p.kind, p.default) for p in inspect.signature(implemented).parameters.values()]
    assert got == wanted


@pytest.mark.parametrize("launcher", [ExpLocalLauncher, ExpSlurmLauncher])
@pytest.mark.parametrize("name", MEMBERS)
def test_each_exp_launcher_implements_every_member_with_the_same_parameters(launcher, name):
    same_member(AsyncLauncher, launcher, name)


@pytest.mark.parametrize("engine", [LocalEngine, SlurmEngine])
@pytest.mark.parametrize("name", ENGINE_MEMBERS)
def test_each_engine_implements_every_member_with_the_same_parameters(engine, name):
    same_member(Engine, engine, name)
