"""The package is typed: it ships py.typed, and mypy (configured in pyproject.toml
to require annotations on every function) finds no error in it."""

from __future__ import annotations

import importlib.resources
import sys
from pathlib import Path

import pytest

from .background import Background, selected

ROOT = Path(__file__).parents[1]
MYPY = Background()


def start_in_background(items) -> None:
    """mypy takes a minute from a cold cache: started with the session."""
    if selected(items, "test_mypy_is_clean_on_the_package"):
        _start_mypy()


def _start_mypy() -> None:
    # cwd: pyproject.toml's [tool.mypy]
    MYPY.start([sys.executable, "-m", "mypy", "zonal_dask"], cwd=ROOT)


def test_py_typed_is_installed():
    assert importlib.resources.files("zonal_dask").joinpath("py.typed").is_file()


@pytest.mark.slow
def test_mypy_is_clean_on_the_package():
    _start_mypy()  # unless already started
    code, out, err = MYPY.wait(timeout=280)
    assert code == 0, out + err
