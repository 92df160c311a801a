"""Kernels compiled by the build: a fresh install's first run, with numba's
own cache empty, loads them and compiles nothing, whatever the CPU; a build
for another architecture or from another source compiles as before,
announced; results alike."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys

import pytest

from zonal_dask.precompiled import BUILT, KERNELS, build
from zonal_dask.run.kernels import ANNOUNCEMENT, KERNEL_DTYPES

from .package_copy import RECORD_COMPILES
from .synth import make_grid, voronoi_zones, zones_frame

# Every route and raster dtype: ``tables`` from ``zones``, ``lines``, ``raster``
ROUTES = """
import rioxarray
import zonal_dask as zd
from zonal_dask.run.kernels import FAMILIES, KERNEL_DTYPES, prepare_kernels
prepare_kernels(FAMILIES, KERNEL_DTYPES)
da = rioxarray.open_rasterio(raster, chunks=(1, 16, 16)).squeeze("band", drop=True)
tables = [zd.zonal_stats(zones, da.astype(d), ["count", "mean", "max"])
          for d in KERNEL_DTYPES]
tables.append(zd.zonal_stats(zones, raster, ["mean", "std"], all_touched=True))
tables.append(zd.zonal_stats(zones, raster, ["mean"], weights="coverage"))
tables.append(zd.zonal_stats(lines, raster, ["sum"], weights="coverage"))
tables = [t.to_json(double_precision=15) for t in tables]
"""

# ROUTES in a fresh process, printing the tables and the package's kernels
# numba compiled (its ``numba:compile`` event)
EVERY_ROUTE = (
    RECORD_COMPILES
    + """
import json, sys
zones, lines, raster = sys.argv[1:4]
exec(sys.argv[4])
print(json.dumps({"compiled": compiled, "tables": tables}))
"""
)

PREPARE_FLOAT64 = """
from zonal_dask.run.kernels import prepare_kernels
print(prepare_kernels(["moments"], ["float64"]))
"""


def _python(code, *args, path=None, cache=None, **variables):
    env = {**os.environ, **variables}
    if path is not None:
        env["PYTHONPATH"] = str(path)
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        env["NUMBA_CACHE_DIR"] = str(cache)
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=cache or None,  # not the repository: its own zonal_dask would win
    )


def test_kernels_holds_exactly_the_signatures_the_runs_call():
    """``KERNELS`` (what the build compiles) against what the package's
    Python code calls, every family and dtype prepared and WKB read from a
    writable and a read-only buffer."""
    import importlib

    import numpy as np
    import shapely

    from zonal_dask.burn.rules import Flat
    from zonal_dask.run.kernels import FAMILIES, prepare_kernels
    from zonal_dask.zones.bounds import zone_bounds
    from zonal_dask.zones.gather import take_flat
    from zonal_dask.zones.validity import needs_geos
    from zonal_dask.zones.wkb import flat_of_wkb, wkb_buffers

    prepare_kernels(FAMILIES, KERNEL_DTYPES)
    box = shapely.box(0, 0, 1, 1)
    assert flat_of_wkb(*wkb_buffers(np.array([box])))
    read_only = np.frombuffer(shapely.to_wkb(box), np.uint8)  # an immutable buffer
    assert flat_of_wkb(read_only, [0, read_only.size])
    parsed = flat_of_wkb(*wkb_buffers(np.array([box, box])))
    assert not needs_geos(Flat(*parsed[0])).any()
    flat = Flat(*parsed[0])
    assert zone_bounds(flat.zone_parts, flat.part_paths, flat.path_coords, flat.xy)[
        0
    ].tolist() == [0, 0, 1, 1]
    assert take_flat(*flat, np.array([1]))[4].tolist() == flat.xy[5:].tolist()
    # the merge of partials of planes (bands, time steps) and of a read-only
    # cluster's deserialized ones: no other signature than a 2-D merge's
    from zonal_dask.reduce.moments import N_FIELDS, Moments, merge

    planes = np.zeros((2, N_FIELDS, 3))
    planes.flags.writeable = False
    merged = merge([Moments(np.arange(2), planes), Moments(np.arange(1, 3), planes)])
    assert merged.data.shape == (3, N_FIELDS, 3)
    table: dict[tuple[str, str], set] = {}
    for module, name, signature in KERNELS:
        table.setdefault((module, name), set()).add(signature)
    for (module, name), signatures in table.items():
        kernel = getattr(importlib.import_module(f"zonal_dask.{module}"), name)
        assert set(kernel.signatures) == signatures, f"{module}.{name}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A copy of the package with the build's compiled kernels, as
    ``pip install .`` leaves it in site-packages: the copy the tests import
    when it is one (``.ci/run``), else built here (``build``)."""
    root = tmp_path_factory.mktemp("site")
    source = BUILT.parent
    package = root / "zonal_dask"
    shutil.copytree(source, package, ignore=shutil.ignore_patterns("__pycache__"))
    if not BUILT.is_dir():
        build(package)
    return root


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    import shapely

    path = tmp_path_factory.mktemp("precompiled")
    grid = make_grid((30, 40), seed=43)
    polygons = voronoi_zones(grid, 5, seed=43)
    x0, y0, x1, y1 = grid.bounds()
    zones, lines = path / "zones.gpkg", path / "lines.gpkg"
    zones_frame(polygons).to_file(zones, engine="pyogrio")
    line = shapely.LineString([(x0, y0), (x1, y1)])
    zones_frame([line, *polygons[:1]]).to_file(lines, engine="pyogrio")
    return zones, lines, grid.write(path / "grid.tif")


@pytest.mark.slow
@pytest.mark.timeout(900)  # the build in `installed`
def test_the_build_holds_every_kernel_a_run_calls(installed):
    built = installed / "zonal_dask" / BUILT.name
    indexes = sorted(p.name.split("-")[0] for p in built.glob("*/*.nbi"))
    assert indexes == sorted({f"{m.split('.')[-1]}.{k}" for m, k, _ in KERNELS})
    assert len(list(built.glob("reduce.moment_kernel/*.nbc"))) == len(KERNEL_DTYPES)


@pytest.mark.slow
@pytest.mark.timeout(900)  # the build in `installed`
def test_a_fresh_install_compiles_nothing_and_finds_the_same_tables(
    installed, sample, tmp_path
):
    fresh = _python(EVERY_ROUTE, *sample, ROUTES, path=installed, cache=tmp_path)
    assert ANNOUNCEMENT not in fresh.stderr
    got = json.loads(fresh.stdout.splitlines()[-1])
    assert got["compiled"] == []
    # the same runs here, the kernels compiled or loaded from numba's cache
    zones, lines, raster = sample
    here = {"zones": zones, "lines": lines, "raster": raster}
    exec(ROUTES, here)
    assert got["tables"] == here["tables"]


@pytest.mark.slow
@pytest.mark.timeout(900)  # the build in `installed`
def test_the_build_serves_any_cpu_of_its_architecture(installed, tmp_path):
    """The build compiles for a generic CPU: a process numba takes for
    another CPU model (an older one) loads it all the same."""
    done = _python(
        PREPARE_FLOAT64, path=installed, cache=tmp_path, NUMBA_CPU_NAME="nehalem"
    )
    assert done.stdout.strip() == "()"
    assert ANNOUNCEMENT not in done.stderr


@pytest.mark.slow
@pytest.mark.timeout(900)  # the build in `installed`
def test_a_build_for_another_architecture_compiles_as_before(installed, tmp_path):
    """Its compiled code keyed by another target triple: not loaded, the
    kernel compiled (announced) and saved in numba's own cache."""
    other = tmp_path / "site"
    shutil.copytree(installed, other)
    built = other / "zonal_dask" / BUILT.name / "reduce.moment_kernel"
    (index,) = built.glob("*.nbi")
    with index.open("rb") as f:
        version = pickle.load(f)
        stamp, overloads = pickle.loads(f.read())
    assert overloads
    moved = {
        (signature, ("aarch64-unknown-linux-gnu", cpu, features), code): data
        for (signature, (_, cpu, features), code), data in overloads.items()
    }
    with index.open("wb") as f:
        pickle.dump(version, f)
        f.write(pickle.dumps((stamp, moved)))
    cache = tmp_path / "numba"
    done = _python(PREPARE_FLOAT64, path=other, cache=cache)
    assert ANNOUNCEMENT in done.stderr
    assert "zonal_dask.reduce.moment_kernel.moments" in done.stdout
    assert list(cache.rglob("moment_kernel.moments-*.nbi"))
    again = _python(PREPARE_FLOAT64, path=other, cache=cache)
    assert again.stdout.strip() == "()"  # numba's own cache, the second time


@pytest.mark.slow
@pytest.mark.timeout(900)  # the build in `installed`
def test_an_edited_source_compiles_as_before(installed, tmp_path):
    edited = tmp_path / "site"
    shutil.copytree(installed, edited)
    kernel = edited / "zonal_dask" / "reduce" / "moment_kernel.py"
    kernel.write_text(kernel.read_text() + "\n# edited after the build\n")
    done = _python(PREPARE_FLOAT64, path=edited, cache=tmp_path / "numba")
    assert ANNOUNCEMENT in done.stderr
    assert "zonal_dask.reduce.moment_kernel.moments" in done.stdout


@pytest.mark.slow
@pytest.mark.timeout(900)  # the build in `installed`
def test_a_build_by_another_numba_compiles_as_before(installed, tmp_path):
    """pip may give the build's environment another numba than the run's."""
    other = tmp_path / "site"
    shutil.copytree(installed, other)
    built = other / "zonal_dask" / BUILT.name / "reduce.moment_kernel"
    (index,) = built.glob("*.nbi")
    with index.open("rb") as f:
        pickle.load(f)
        rest = f.read()
    with index.open("wb") as f:
        pickle.dump("0.1.0", f)
        f.write(rest)
    done = _python(PREPARE_FLOAT64, path=other, cache=tmp_path / "numba")
    assert ANNOUNCEMENT in done.stderr
    assert "zonal_dask.reduce.moment_kernel.moments" in done.stdout


BUILD_IMPORTS = """
import importlib, sys, types

class Absent:  # what the build environment lacks: it has numba and numpy only
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] not in {"numba", "numpy", "llvmlite"} and (
            name.split(".")[0] in sys.argv[2].split(",")
        ):
            raise ModuleNotFoundError(f"No module named {name!r}")

sys.meta_path.insert(0, Absent())
package = types.ModuleType("zonal_dask")
package.__path__ = [sys.argv[1]]
sys.modules["zonal_dask"] = package
from zonal_dask.precompiled import KERNELS
for module, name, _ in KERNELS:
    getattr(importlib.import_module(f"zonal_dask.{module}"), name)
"""


def test_the_kernel_modules_import_with_numba_and_numpy_alone():
    """The build imports each kernel's module in an environment holding only
    numba and numpy (``build-system.requires``): a run-time dependency
    imported at module level there fails ``pip install .``."""
    run_time = "shapely,geopandas,pyogrio,rasterio,rioxarray,xarray,dask,pandas"
    run_time += ",pyarrow,distributed,fsspec,pyproj,affine,scipy"
    _python(BUILD_IMPORTS, BUILT.parent, run_time)
