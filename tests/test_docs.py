"""The README and docs/ pages: the README is the entry point and links into docs/, so a renamed heading or a moved
page must fail here rather than leave a reader at a dead link."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def prose(text: str) -> str:
    """The text outside fenced code blocks and inline code, where a link is a link."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def anchors(page: Path) -> set:
    """The anchors GitHub gives the page's headings: lowercase, punctuation dropped, spaces to '-', repeats numbered."""
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.M | re.S)
    slugs, counts = set(), {}
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", text, flags=re.M):
        heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        slugs.add(f"{slug}-{counts[slug]}" if slug in counts else slug)
        counts[slug] = counts.get(slug, 0) + 1
    return slugs


def local_links(page: Path) -> list:
    return [target for target in LINK.findall(prose(page.read_text(encoding="utf-8"))) if not re.match(r"[a-z]+:", target)]


def test_the_slugs_are_githubs():
    page = ROOT / "docs" / "sweepers.md"
    assert {"exp_grid-exps-runner", "exp_gopt-exps-optimizer", "one-sweep-per-directory"} <= anchors(page)


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_every_local_link_and_anchor_resolves(page):
    broken = []
    for target in local_links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.is_file():
            broken.append(f"{target}: no file {file}")
        elif anchor and (file.suffix != ".md" or anchor not in anchors(file)):
            broken.append(f"{target}: no heading with anchor #{anchor} in {file.name}")
    assert not broken, broken


def test_the_readme_links_every_docs_page():
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in local_links(ROOT / "README.md")}
    assert [p.name for p in PAGES[1:] if p.resolve() not in linked] == []


def test_ci_runs_the_readmes_test_command_first():
    """.ci/run says it runs exactly the README's test command: the two must not drift apart."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = readme.split("run the whole test suite", 1)[1].split("```bash\n", 1)[1].split("\n", 1)[0]
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith(("#", "set ", "cd "))]
    assert command.endswith("python -m pytest") and ci[0] == command


def test_the_python_api_example_runs_as_written():
    block = (ROOT / "docs" / "python-api.md").read_text(encoding="utf-8").split("```python\n", 1)[1].split("```", 1)[0]
    done = subprocess.run([sys.executable, "-c", block], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]


def option_tables(page: Path) -> list:
    """The option names of every '| option | default | meaning |' table on the page (`a`, `b` cells give both)."""
    names = []
    for table in re.findall(r"^\| option \| default \| meaning \|\n\|[-|]+\|\n((?:\|.*\n)+)", page.read_text(encoding="utf-8"), flags=re.M):
        for row in table.splitlines():
            names += re.findall(r"`([\w.]+)`", row.split("|")[1])
    return names


def fields(conf: type, prefix: str = "") -> set:
    found = set()
    for field in dataclasses.fields(conf):
        found.add(prefix + field.name)
        nested = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        if dataclasses.is_dataclass(nested):
            found |= fields(type(nested), f"{prefix}{field.name}.")
    return found


def test_every_documented_option_is_a_config_field():
    """The option tables are the reference users type options from: each name must be one Hydra accepts."""
    from hydra_plugins.exp_launcher.config import ExpLocalConf, ExpSlurmConf
    from hydra_plugins.exp_sweeper.config import ExpGoptConf, ExpGridConf

    pages = {
        "sweepers.md": fields(ExpGridConf) | fields(ExpGoptConf),
        "launchers.md": fields(ExpLocalConf),
        "slurm.md": fields(ExpSlurmConf),
    }
    unknown = {}
    for name, known in pages.items():
        documented = option_tables(ROOT / "docs" / name)
        assert len(documented) >= 4, (name, documented)
        unknown[name] = [option for option in documented if option not in known]
    assert unknown == {name: [] for name in pages}
