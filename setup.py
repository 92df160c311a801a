"""The build compiles the package's numba kernels into the built package
(``zonal_dask/precompiled.py``), so that a fresh install's first run loads
them instead of compiling; an editable install compiles on first use."""

import importlib.util
import os
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithKernels(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False) or self.dry_run:
            return
        source = Path(__file__).parent / "zonal_dask" / "precompiled.py"
        spec = importlib.util.spec_from_file_location("_zonal_dask_build", source)
        precompiled = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(precompiled)
        package = Path(self.build_lib) / "zonal_dask"
        print(f"compiling zonal_dask's kernels into {package / '_precompiled'}")
        precompiled.build(package, processes=min(2, os.cpu_count() or 1))


setup(cmdclass={"build_py": BuildWithKernels})
