"""What a fresh process pays before its first chunk: no compile, light imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import zonal_dask as zd

from .synth import make_grid, voronoi_zones, zones_frame

PROBE = """
import json, sys
import zonal_dask as zd
from zonal_dask.burn import prepare
from zonal_dask.reduce import moment_kernel
table = zd.zonal_stats(sys.argv[1], sys.argv[2], ["count", "mean", "std"])
stats = {"moments": moment_kernel.moments.stats, "burn": prepare.burn_claims.stats}
print(json.dumps({
    "misses": sum(sum(s.cache_misses.values()) for s in stats.values()),
    "hits": sum(sum(s.cache_hits.values()) for s in stats.values()),
    "distributed": "distributed" in sys.modules,
    "count": int(table["count"].sum()),
}))
"""


def _python(code: str, *args: object) -> str:
    """What a fresh ``python -c code args`` prints."""
    done = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def _probe(zones, raster) -> dict:
    return json.loads(_python(PROBE, zones, raster).splitlines()[-1])


@pytest.mark.slow
def test_a_second_process_loads_the_kernels_without_compiling(tmp_path):
    grid = make_grid((40, 50), seed=31)
    zones = tmp_path / "zones.gpkg"
    zones_frame(voronoi_zones(grid, 6, seed=31)).to_file(zones, engine="pyogrio")
    raster = grid.write(tmp_path / "grid.tif")
    # the same run in this process compiles into numba's cache, unless an
    # earlier run left it there (or loaded it): no first process to pay for
    zd.zonal_stats(zones, raster, ["count", "mean", "std"])
    second = _probe(zones, raster)
    assert second["count"] > 0
    assert second["misses"] == 0 and second["hits"] >= 2
    # no distributed.Client can exist when distributed was never imported:
    # the threads are used without importing it (0.4 s)
    assert not second["distributed"]


def test_importing_the_package_defers_the_engine():
    code = (
        "import sys, zonal_dask; "
        "print(sorted(m for m in ('dask.array', 'numba', 'rasterio', 'geopandas')"
        " if m in sys.modules))"
    )
    assert _python(code).strip() == "[]"


RUN = """
import sys
import zonal_dask as zd
zd.zonal_stats(sys.argv[1], sys.argv[2], ["count", "median"])
zd.zonal_stats(sys.argv[1], sys.argv[2], ["mean"], weights="coverage")
zd.ZonePlan(sys.argv[1], like=sys.argv[2]).save(sys.argv[3], overwrite=True)
zd.rasterize_zones(sys.argv[1], sys.argv[2]).compute()
"""
# what the libraries zonal_dask uses do to the process when imported is theirs:
# they are imported first, in the order a run imports them; and dask's threaded
# scheduler registers the shutdown of its pool when it first starts it
STATE = """
import atexit, gc, importlib, json, os, sys, warnings
for name in json.loads(sys.argv[4]):
    try:
        importlib.import_module(name)
    except Exception:
        pass
import dask.threaded
dask.threaded.get({"x": 1}, "x")
def state():
    return {
        "environ": dict(os.environ),
        "gc": [gc.isenabled(), gc.get_threshold(), gc.get_freeze_count()],
        "filters": repr(warnings.filters),
        "atexit": atexit._ncallbacks(),
    }
before = state()
exec(compile(RUN, "run", "exec"))
after = state()
print(json.dumps({k: before[k] == after[k] for k in before}))
"""
MODULES = RUN + "\nimport json\nprint(json.dumps(list(sys.modules)))"


@pytest.mark.slow
def test_importing_and_running_leave_the_process_state_alone(tmp_path):
    """No environment variable, collector setting, warnings filter or exit hook
    is left changed by importing zonal_dask or by a run, whatever its route."""
    grid = make_grid((40, 50), seed=32)
    zones = tmp_path / "zones.gpkg"
    zones_frame(voronoi_zones(grid, 6, seed=32)).to_file(zones, engine="pyogrio")
    raster = grid.write(tmp_path / "grid.tif")
    args = [zones, raster, tmp_path / "plan.zarr"]
    imported = json.loads(_python(MODULES, *args).splitlines()[-1])
    libraries = [m for m in imported if not m.startswith(("zonal_dask", "__main__"))]
    assert "numba" in libraries and "zonal_dask.api" in imported
    # an endpoint variable that a run turns into GDAL settings for its duration
    env = {**os.environ, "AWS_ENDPOINT_URL": "http://127.0.0.1:1"}
    code = f"RUN = {RUN!r}\n{STATE}"
    done = subprocess.run(
        [sys.executable, "-c", code, *map(str, args), json.dumps(libraries)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    unchanged = json.loads(done.stdout.splitlines()[-1])
    assert unchanged == {"environ": True, "gc": True, "filters": True, "atexit": True}


CLI_MODULES = """
import json, sys
from zonal_dask.cli.main import main
code = main(sys.argv[1:])
engine = ("numba", "dask", "geopandas", "rasterio", "pyogrio", "distributed")
print(json.dumps([code, sorted(m for m in engine if m in sys.modules)]))
"""


@pytest.mark.slow  # fresh processes
def test_help_and_argument_errors_answer_without_importing_the_engine(tmp_path):
    """``--help``, ``demo --help``, ``--version`` and a bad flag or a missing
    argument are answered by argparse alone: no numba, dask, geopandas,
    rasterio or pyogrio imported (each costs a fraction of a second)."""
    for argv, code in [
        (["--help"], 0),
        (["demo", "--help"], 0),
        (["--version"], 0),
        (["zones.gpkg", "raster.tif", "out.csv", "--no-such-flag"], 2),
        (["zones.gpkg"], 2),
    ]:
        exit_code, engine = json.loads(_python(CLI_MODULES, *argv).splitlines()[-1])
        assert (exit_code, engine) == (code, []), argv
