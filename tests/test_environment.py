"""environment.yml names the same packages as pyproject.toml, from conda-forge.

Creating the environment needs conda and conda-forge, which this project's
machines cannot reach; this test checks what can be checked without them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).parents[1]
# PyPI names whose conda-forge package is called differently
CONDA_NAMES = {
    "dask": "dask-core",
    "geopandas": "geopandas-base",
    "matplotlib": "matplotlib-base",
}


def _names(requirements: list[str]) -> set[str]:
    names = set()
    for requirement in requirements:
        name = re.split(r"[<>=\[ ;]", requirement, maxsplit=1)[0].lower()
        if name != "zonal-dask":
            names.add(CONDA_NAMES.get(name, name))
    return names


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert environment["channels"][0] == "conda-forge"
    assert set(environment["channels"]) <= {"conda-forge", "nodefaults"}
    listed = {
        re.split(r"[<>= ]", d, maxsplit=1)[0].lower()
        for d in environment["dependencies"]
        if isinstance(d, str)
    }
    extras = project["optional-dependencies"]
    wanted = _names(project["dependencies"])
    for requirements in extras.values():
        wanted |= _names(requirements)
    wanted -= {"ruff"}  # dev only
    assert wanted - listed == set()


def test_the_notebook_extra_brings_a_jupyter_front_end():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert {"jupyterlab", "notebook"} & _names(extras["notebook"])
    assert "ipykernel" in _names(extras["notebook"])


def test_install_hints_name_what_pip_can_install():
    """zonal-dask is not on the package index: no hint may install it by name."""
    by_name = re.compile(
        r"pip install +['\"]?zonal-dask\b|EXTRA_PIP_PACKAGES\W+zonal-dask"
    )
    texts = [ROOT / "README.md", *(ROOT / "notebooks").glob("*.ipynb")]
    texts += [*(ROOT / "zonal_dask").glob("*.py"), *(ROOT / "docs").glob("*.md")]
    found = [
        f"{path.name}: {match.group(0)}"
        for path in texts
        for match in by_name.finditer(path.read_text())
    ]
    assert found == []
