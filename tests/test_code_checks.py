"""The linters, the type checker and the check that private upstream names stay in their internals modules,
run with the suite so that CI (and every developer's pytest) runs them.

Their settings are in pyproject.toml; their versions are pinned in setup.py's test extra, so that a new
release's new rules never fail a build that changed nothing.
"""

import ast
import graphlib
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set, Tuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["-p", "exp_compat", "-p", "hydra_plugins.exp_sweeper", "-p", "hydra_plugins.exp_launcher"]


@pytest.mark.parametrize(
    "command",
    [["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy", *PACKAGES]],
    ids=["ruff-lint", "ruff-format", "mypy"],
)
def test_the_code_passes(command):
    done = subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]


def _exp_compat_imports() -> Dict[str, Set[str]]:
    """Every ``exp_compat`` module and the modules it imports, wherever the import stands: one inside a
    function or under ``TYPE_CHECKING`` still makes the two modules depend on each other."""
    paths = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): path
        for path in (ROOT / "exp_compat").rglob("*.py")
    }
    imports: Dict[str, Set[str]] = {}
    for module, path in paths.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        found = imports[module] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = package.rsplit(".", node.level - 1)[0] if node.level else ""
                source = ".".join(part for part in (base, node.module) if part)
                # ``from package import module`` imports the module, ``from module import name`` the module.
                found.update(f"{source}.{alias.name}" if f"{source}.{alias.name}" in paths else source for alias in node.names)
    return imports


def test_exp_compat_has_no_circle_of_imports():
    imports = _exp_compat_imports()
    graph = {module: {m for m in found if m in imports and m != module} for module, found in imports.items()}
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as error:
        pytest.fail(f"a circle of imports: {' -> '.join(reversed(error.args[1]))}")


def test_exp_compat_never_imports_the_plugins():
    upward = {f"{module} imports {m}" for module, found in _exp_compat_imports().items() for m in found if m.startswith("hydra_plugins")}
    assert not upward, sorted(upward)


# The private names of the libraries this package builds on that it uses: any release may move them, so each lives
# in one internals module, which names the release it mirrors and whose tests CI runs again against the newest
# releases (.ci/run, -m upstream). Hydra's are in two: exp_compat's (exp_compat imports no plugin) holds those that
# it, the sweeper and the launcher need (the sweeper and the launcher import nothing of each other), the launcher's
# those of its config composition alone.
HYDRA = "exp_compat/_hydra_internals.py"
COMPOSE = "hydra_plugins/exp_launcher/_hydra_internals.py"
SKOPT = "hydra_plugins/exp_sweeper/_skopt_internals.py"
PRIVATE_MODULES = {  # importing a module of these packages with a part (or a name) starting with "_": where allowed
    "hydra": (HYDRA, COMPOSE),
    "omegaconf": (),
    "skopt": (SKOPT,),
    "sklearn": (SKOPT,),
    "submitit": (),
    "cloudpickle": (),
}
PRIVATE_NAMES = {  # an attribute, keyword or getattr name: where allowed
    # Hydra: ConfigLoaderImpl's underscored steps of composing a config, mirrored by the launcher's fast path
    "_apply_overrides_to_config": (HYDRA,),
    "_parse_overrides_and_create_caching_repo": (COMPOSE,),
    "_compose_config_from_defaults_list": (COMPOSE,),
    # Hydra: hydra.main's underscored function that a @hydra.main function calls to run its app
    "_run_hydra": (COMPOSE,),
    # Hydra: JobReturn's underscored field; its public return_value raises a failed job's error (writing to stderr)
    "_return_value": (HYDRA,),
    # scikit-optimize: undocumented (underscored) functions and Optimizer attributes
    "_gaussian_acquisition": (SKOPT,),
    "_param_for_white_kernel_in_Sum": (SKOPT,),
    "_next_x": (SKOPT,),
    # scikit-optimize: the estimator that Optimizer.tell clones and fits, set by Optimizer.__init__, not documented
    "base_estimator_": (SKOPT,),
    # scikit-optimize: Optimizer's told values and fitted models, documented to read, kept consistent by tell() alone
    "yi": (SKOPT,),
    "models": (SKOPT,),
    # scikit-optimize: what its GaussianProcessRegressor.fit sets beyond scikit-learn (copied from scikit-learn's private ones)
    "noise_": (SKOPT,),
    "K_inv_": (SKOPT,),
    "y_train_std_": (SKOPT,),
    "y_train_mean_": (SKOPT,),
}


def private_upstream_uses(path: Path) -> List[Tuple[str, Tuple[str, ...]]]:
    """Each private upstream name that the module ``path`` names, with the modules allowed to name it. An
    attribute of ``self`` is the class's own (a class of this package may call a field ``models``)."""
    uses = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        named = None
        if isinstance(node, ast.Import):
            uses += [(a.name, PRIVATE_MODULES[a.name.split(".")[0]]) for a in node.names if private_import(a.name, [])]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and private_import(node.module or "", [a.name for a in node.names]):
            uses.append((node.module or "", PRIVATE_MODULES[(node.module or "").split(".")[0]]))
        elif isinstance(node, ast.Attribute) and not (isinstance(node.value, ast.Name) and node.value.id == "self"):
            named = node.attr
        elif isinstance(node, ast.keyword) and (node.arg or "").startswith("_"):  # models= is create_result's public keyword
            named = node.arg
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("getattr", "setattr", "hasattr", "delattr"):
            named = getattr(node.args[1], "value", None) if len(node.args) > 1 else None
        if named in PRIVATE_NAMES:
            uses.append((named, PRIVATE_NAMES[named]))
    return uses


def private_import(module: str, names: List[str]) -> bool:
    parts = module.split(".")
    return parts[0] in PRIVATE_MODULES and any(p.startswith("_") and not p.startswith("__") for p in parts[1:] + names)


def test_private_upstream_names_only_in_their_internals_module():
    misplaced = []
    for path in sorted([*ROOT.glob("exp_compat/**/*.py"), *ROOT.glob("hydra_plugins/**/*.py")]):
        where = path.relative_to(ROOT).as_posix()
        misplaced += [f"{where}: {name}" for name, allowed in private_upstream_uses(path) if where not in allowed]
    assert not misplaced, "private upstream names outside their internals module:\n" + "\n".join(misplaced)


def test_the_private_names_check_sees_each_kind_of_use(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "import skopt._private\nfrom hydra._internal.utils import x\nfrom skopt.acquisition import _gaussian_acquisition\n"
        "a.optimizer.models = []\nJobReturn(_return_value=e)\ngetattr(r, '_return_value', None)\n"
        "self.models\nfrom hydra.core import utils\nimport os\nos._exit(0)\ncreate_result(models=[])\n"
    )
    found = sorted(name for name, _ in private_upstream_uses(module))
    assert found == ["_return_value", "_return_value", "hydra._internal.utils", "models", "skopt._private", "skopt.acquisition"]
