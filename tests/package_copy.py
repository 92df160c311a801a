"""The package under test as a fresh checkout or an editable install has it:
its sources without the build's compiled kernels, for the tests of what a
process with nothing compiled does, whichever copy the tests import."""

from __future__ import annotations

import shutil
from pathlib import Path

import zonal_dask
from zonal_dask.precompiled import BUILT


def unbuilt_copy(directory: Path) -> Path:
    """``directory`` holding a copy of the imported ``zonal_dask`` without
    ``_precompiled`` and numba's cache: the folder to put first on a
    process's ``PYTHONPATH``."""
    package = Path(zonal_dask.__file__).resolve().parent
    skipped = shutil.ignore_patterns("__pycache__", BUILT.name)
    shutil.copytree(package, directory / "zonal_dask", ignore=skipped)
    return directory


# Python source recording, in ``compiled``, each kernel of the package numba
# compiles in the process that runs it ("module.name", numba's
# ``numba:compile`` event): put before the code whose compiles it counts
RECORD_COMPILES = """
from numba.core import event
compiled = []
class _Heard(event.Listener):
    def on_start(self, ev):
        pass
    def on_end(self, ev):
        function = ev.data["dispatcher"].py_func
        if function.__module__.startswith("zonal_dask."):
            compiled.append(f"{function.__module__}.{function.__name__}")
event.register("numba:compile", _Heard())
"""
