"""What each kind of statistic costs, on the demo data (``zonal-dask demo``).

    python benchmarks/statistic_cost.py [DIR]

Prints the median of 3 wall times of ``zonal_stats`` for: the default moments;
plus exact percentiles (values gathered per zone group); plus majority (a
zone x value count table); the default moments under coverage weighting
(exact fractions per chunk); the mean weighted by a weights raster (a copy of
the raster) under coverage; and every band of a 3-band copy of the raster in
one pass.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio

import zonal_dask as zd
from zonal_dask.cli.demo import make_sample


def timed(function) -> float:
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        function()
        runs.append(time.perf_counter() - start)
    return float(np.median(runs))


def three_bands(raster: Path) -> Path:
    out = raster.with_name("raster3.tif")
    with rasterio.open(raster) as src:
        profile = src.profile | {"count": 3}
        data = src.read(1)
    with rasterio.open(out, "w", **profile) as dst:
        for band in (1, 2, 3):
            dst.write(data, band)
    return out


def main() -> None:
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    zones, raster = make_sample(directory)
    zd.zonal_stats(zones, raster)  # load numba's cache, warm the file cache
    stack = three_bands(raster)
    weights = raster.with_name("weights.tif")
    with rasterio.open(raster) as src:
        profile, data = src.profile, np.abs(src.read(1))
    with rasterio.open(weights, "w", **profile) as dst:
        dst.write(data, 1)
    cases = {
        "count min mean max std sum": lambda: zd.zonal_stats(zones, raster),
        "+ median p10 p90": lambda: zd.zonal_stats(
            zones, raster, [*zd.DEFAULT_STATS, "median", "p10", "p90"]
        ),
        "+ majority unique": lambda: zd.zonal_stats(
            zones, raster, [*zd.DEFAULT_STATS, "majority", "unique"]
        ),
        "coverage, the default moments": lambda: zd.zonal_stats(
            zones, raster, coverage="fraction"
        ),
        "coverage, weighted_mean (weights raster)": lambda: zd.zonal_stats(
            zones, raster, ["weighted_mean"], coverage="fraction", weights=weights
        ),
        "3 bands, band=None": lambda: zd.zonal_stats(zones, stack, band=None),
    }
    base = None
    print("| statistics | seconds | ratio |")
    print("| --- | --- | --- |")
    for name, function in cases.items():
        seconds = timed(function)
        base = base or seconds
        print(f"| {name} | {seconds:.2f} | {seconds / base:.1f} |")


if __name__ == "__main__":
    main()
