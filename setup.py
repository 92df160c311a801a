"""The build compiles the package's numba kernels into the built package
(``zonal_dask/precompiled.py``), so that a fresh install's first run loads
them instead of compiling; an editable install compiles on first use."""

import os
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

# the built package imported without its __init__ (xarray and the rest of the
# run-time dependencies are not in the build's environment: numba and numpy are)
COMPILE = """
import sys, types
from pathlib import Path
package = types.ModuleType("zonal_dask")
package.__path__ = [sys.argv[1]]
sys.modules["zonal_dask"] = package
from zonal_dask.precompiled import build
build(Path(sys.argv[1]), processes=int(sys.argv[2]))
"""


class BuildWithKernels(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False) or self.dry_run:
            return
        package = Path(self.build_lib).resolve() / "zonal_dask"
        print(f"compiling zonal_dask's kernels into {package / '_precompiled'}")
        processes = str(min(2, os.cpu_count() or 1))
        subprocess.run([sys.executable, "-c", COMPILE, package, processes], check=True)


setup(cmdclass={"build_py": BuildWithKernels})
