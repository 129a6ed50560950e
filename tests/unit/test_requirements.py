"""requirements.txt names every library the services import: a clean pip install must start them."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: Imported only where an optional feature is installed, each with where it comes from.
OPTIONAL = {
    "numpy": "the GPU burn-in step, with cupy on a GPU node",
    "networking_generic_switch": "setup.cfg extra 'switches'",
}
#: Code that is not part of the services: the lab and the demo use test-requirements.txt as well.
NOT_SERVICES = ("lab", "demo")


def _imports() -> set[str]:
    found: set[str] = set()
    for path in (REPO / "agent").rglob("*.py"):
        if path.relative_to(REPO / "agent").parts[0] in NOT_SERVICES:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {name for name in found if name not in sys.stdlib_module_names and name != "agent"}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements() -> set[str]:
    names = set()
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            names.add(_normalise(re.split(r"[<>=!~;\[ ]", line)[0]))
    return names


def test_every_import_of_the_services_is_a_requirement() -> None:
    distributions = importlib.metadata.packages_distributions()
    required = _requirements()
    missing = []
    for module in sorted(_imports() - set(OPTIONAL)):
        dists = distributions.get(module)
        assert dists, f"{module} is imported by agent/ but not installed here: add it to requirements.txt"
        if not any(_normalise(dist) in required for dist in dists):
            missing.append(f"{module} (pip: {', '.join(dists)})")
    assert not missing, f"imported by the services but not in requirements.txt: {'; '.join(missing)}"
