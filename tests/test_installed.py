"""The tests test the package as the user has it: when a built copy is
installed (``pip install .``, as ``.ci/run`` does), they and the processes
they start import that copy, with its compiled kernels, and it holds this
checkout's sources. An editable install, or none, is the checkout itself."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import zonal_dask

ROOT = Path(__file__).resolve().parents[1]
IMPORTED = Path(zonal_dask.__file__).resolve().parent


def built_copy() -> Path | None:
    """The folder of the installed, non-editable ``zonal_dask``, or None.

    The checkout is not searched: ``pip install .`` leaves its metadata there
    (``zonal_dask.egg-info``), naming the checkout's own files."""
    installed = [p for p in sys.path if Path(p or ".").resolve() != ROOT]
    for distribution in metadata.distributions(name="zonal-dask", path=installed):
        for file in distribution.files or []:
            if file.as_posix() == "zonal_dask/__init__.py":
                return Path(file.locate()).resolve().parent
    return None  # none, or editable: a path or a finder, no package files


def _sources(package: Path) -> dict[str, bytes]:
    return {
        path.relative_to(package).as_posix(): path.read_bytes()
        for path in package.rglob("*.py")
        if "__pycache__" not in path.parts
    }


def test_the_tests_import_the_built_copy_when_one_is_installed():
    built = built_copy()
    if built is None:
        pytest.skip("no built copy installed: the tests import the checkout")
    assert IMPORTED == built, (
        f"the tests imported {IMPORTED}, not the installed {built}: run the "
        "environment's `pytest` (README), not `python -m pytest`, which puts "
        "the checkout first and compiles every kernel again"
    )


def test_the_built_copy_holds_this_checkouts_sources():
    built = built_copy()
    if built is None:
        pytest.skip("no built copy installed: the tests import the checkout")
    checkout, installed = _sources(ROOT / "zonal_dask"), _sources(built)
    stale = sorted({name for name, _ in checkout.items() ^ installed.items()})
    assert not stale, (
        f"the installed zonal_dask ({built}) differs from this checkout in "
        f"{stale}: `pip install --no-deps --force-reinstall .`, or an "
        "editable install"
    )


@pytest.mark.skipif(sys.version_info < (3, 11), reason="PYTHONSAFEPATH: 3.11+")
def test_a_process_started_in_the_checkout_imports_the_same_copy():
    """``python -c`` and ``-m`` put their working directory first on sys.path:
    run from the checkout, they would import its sources, compiled again
    (``conftest.py`` sets PYTHONSAFEPATH for every process the tests start)."""
    code = "import importlib.util; print(importlib.util.find_spec('zonal_dask').origin)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT
    )
    assert Path(done.stdout.strip()).resolve().parent == IMPORTED, done.stderr
