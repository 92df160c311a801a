"""What a fresh process pays before its first chunk: no compile, light imports."""

from __future__ import annotations

import json
import subprocess
import sys

from .synth import make_grid, voronoi_zones, zones_frame

PROBE = """
import json, sys
import zonal_dask as zd
from zonal_dask import kernels
table = zd.zonal_stats(sys.argv[1], sys.argv[2], ["count", "mean", "std"])
stats = {name: getattr(kernels, name).stats for name in ("moments", "decode_claims")}
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


def test_a_second_process_loads_the_kernels_without_compiling(tmp_path):
    grid = make_grid((40, 50), seed=31)
    zones = tmp_path / "zones.gpkg"
    zones_frame(voronoi_zones(grid, 6, seed=31)).to_file(zones, engine="pyogrio")
    raster = grid.write(tmp_path / "grid.tif")
    _probe(zones, raster)  # compiles, unless an earlier run left the cache
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


def test_the_engine_freezes_the_collector_at_exit():
    # a hook registered before the engine is imported runs after the engine's
    code = (
        "import atexit, gc; "
        "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0)); "
        "import zonal_dask.api"
    )
    assert _python(code).strip() == "frozen True"
