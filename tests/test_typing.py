"""The package is typed: it ships py.typed, and mypy (configured in pyproject.toml
to require annotations on every function) finds no error in it."""

from __future__ import annotations

import importlib.resources
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_py_typed_is_installed():
    assert importlib.resources.files("zonal_dask").joinpath("py.typed").is_file()


def test_mypy_is_clean_on_the_package():
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "zonal_dask"],
        cwd=ROOT,  # pyproject.toml's [tool.mypy]
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
