"""The time-series benchmark: one job as one process, to time from outside.

    python benchmarks/timeseries.py DIR TOOL [--input zarr|tif] [--zones N]
        [--steps N]

DIR holds what ``peers/make_timeseries.py`` writes (a 7800 x 8100 float32
daily grid as ``lst.zarr`` and ``lst_YYYY-MM-DD.tif``, and
``lst_zones_{N}.gpkg``). TOOL is one of:

* ``zonal_dask``: ``zonal_series`` over the first ``steps`` steps (count,
  min, mean, max, std, sum), the zones planned once, the cube kept in memory;
* ``plan``: the zones read and planned on the grid, their labels made and
  kept, nothing else: ``zonal_series``'s implicit plan;
* ``floor``: read and decode every 1024² chunk of the first ``steps`` steps
  with 2 threads, nothing else (each thread keeps its files open);
* ``exactextract``: exactextract's ``raster-sequential`` strategy called on
  each GeoTIFF step in turn, the zones read once (exactextract has no plan to
  reuse between calls).

A tool's time per step is the difference between two runs with different
``steps``, divided by the difference of steps: the process's start, the
imports, reading the zones and planning cancel out. For example, with
``/usr/bin/time -v`` (or any whole-process timer):

    /usr/bin/time -v python benchmarks/timeseries.py DIR zonal_dask --steps 2
    /usr/bin/time -v python benchmarks/timeseries.py DIR zonal_dask --steps 10
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

STATS = ["count", "min", "mean", "max", "std", "sum"]
THREADS = 2
CHUNK = 1024


def tifs(directory: Path, steps: int) -> list[str]:
    found = sorted(glob.glob(str(directory / "lst_2*.tif")))
    if len(found) < steps:
        sys.exit(f"{directory}: {len(found)} GeoTIFF steps, {steps} asked")
    return found[:steps]


def zonal_dask(directory: Path, source: str, zones: Path, steps: int) -> None:
    import xarray as xr

    import zonal_dask as zd

    if source == "zarr":
        cube = xr.open_zarr(directory / "lst.zarr", decode_coords="all")
        series: Any = cube.isel(time=slice(0, steps))
        pattern = None
    else:
        series, pattern = tifs(directory, steps), "%Y-%m-%d"
    result = zd.zonal_series(zones, series, STATS, time_pattern=pattern)
    print(f"{dict(result.sizes)}, mean of means {float(result['mean'].mean()):.4f}")


def plan(directory: Path, source: str, zones: Path, steps: int) -> None:
    from zonal_dask.labels.inputs import label_source
    from zonal_dask.labels.sources import persisted
    from zonal_dask.request import Request
    from zonal_dask.run.process_state import run_scope

    like = tifs(directory, 1)[0]
    request = Request.build("polygons", STATS)
    with run_scope():
        persisted(label_source(str(zones), like, request, str(zones)).source)


def floor(directory: Path, source: str, zones: Path, steps: int) -> None:
    if source == "zarr":
        import zarr

        store = zarr.open_array(str(directory / "lst.zarr" / "lst"), mode="r")
        height, width = store.shape[1:]

        def read(t: int, r: int, c: int) -> Any:
            return store[t, r : r + CHUNK, c : c + CHUNK]

    else:
        import rasterio
        from rasterio.windows import Window

        paths = tifs(directory, steps)
        local = threading.local()
        with rasterio.open(paths[0]) as src:
            height, width = src.shape

        def read(t: int, r: int, c: int) -> Any:
            opened = getattr(local, "opened", None)
            if opened is None:
                opened = local.opened = {}
            if t not in opened:
                opened[t] = rasterio.open(paths[t])
            window = Window(c, r, min(CHUNK, width - c), min(CHUNK, height - r))
            return opened[t].read(1, window=window)

    jobs = [
        (t, r, c)
        for t in range(steps)
        for r in range(0, height, CHUNK)
        for c in range(0, width, CHUNK)
    ]
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(lambda job: read(*job).shape, jobs))


def exactextract(directory: Path, source: str, zones: Path, steps: int) -> None:
    import geopandas as gpd
    from exactextract import exact_extract

    frame = gpd.read_file(zones, engine="pyogrio")
    ops = ["count", "min", "mean", "max", "stdev", "sum"]
    for path in tifs(directory, steps):
        table = exact_extract(
            path, frame, ops, output="pandas", strategy="raster-sequential"
        )
        print(f"{Path(path).name}: mean of means {table['mean'].mean():.4f}")


TOOLS = {
    "zonal_dask": zonal_dask,
    "plan": plan,
    "floor": floor,
    "exactextract": exactextract,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("tool", choices=list(TOOLS))
    parser.add_argument("--input", choices=["zarr", "tif"], default="zarr")
    parser.add_argument("--zones", type=int, default=200_000)
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()
    zones = args.directory / f"lst_zones_{args.zones}.gpkg"
    TOOLS[args.tool](args.directory, args.input, zones, args.steps)
    # like the command line: no interpreter teardown once the work is done
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
