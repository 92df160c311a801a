"""A list of rasters (exactextract's) beside one raster: what the list costs.

    python benchmarks/raster_list.py ZONES RASTER [REPEATS]

Times ``zonal_stats(zones, raster)`` and ``zonal_stats(zones, [raster,
copy])`` (the copy a symbolic link under another name), after one warm-up
call, and prints each run and the medians.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

import zonal_dask as zd


def main(zones: str, raster: str, repeats: int = 5) -> None:
    with tempfile.TemporaryDirectory() as directory:
        copy = os.path.join(directory, "second.tif")
        os.symlink(os.path.abspath(raster), copy)
        stats = ["mean", "sum"]
        zd.zonal_stats(zones, raster, stats)  # compiled kernels, caches
        one, two = [], []
        for _ in range(repeats):
            started = time.perf_counter()
            zd.zonal_stats(zones, raster, stats)
            one.append(time.perf_counter() - started)
            started = time.perf_counter()
            zd.zonal_stats(zones, [raster, copy], stats)
            two.append(time.perf_counter() - started)
            print(f"one raster {one[-1]:.2f} s, a list of two {two[-1]:.2f} s")
    print(
        f"medians: one raster {statistics.median(one):.2f} s, a list of two "
        f"{statistics.median(two):.2f} s"
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(int(a) for a in sys.argv[3:4]))
