"""Cost of resolving pixels that several zones claim, for one 2048 x 2048 chunk.

    python benchmarks/overlap_chunk.py

Burns a chunk wholly covered by one zone, then by two overlapping zones: every
pixel is then claimed twice and resolved through ``rasterize._resolve_overlaps``.
Prints the time of each and the process's peak RSS.
"""

from __future__ import annotations

import resource
import time

import numpy as np
import shapely

from zonal_dask.rasterize import rasterize_chunk

SIDE = 2048


def main() -> None:
    # oriented pixel space of a north-up raster: rows go to negative y
    cover = shapely.box(-10, -SIDE - 10, SIDE + 10, 10)
    disc = shapely.Point(SIDE / 2, -SIDE / 2).buffer(SIDE)  # covers it too
    geometries = np.array([cover, disc], dtype=object)
    for k in (1, 2):
        start = time.perf_counter()
        out = rasterize_chunk(
            geometries[:k], np.arange(k), (0, 0), (SIDE, SIDE), (1, -1)
        )
        elapsed = time.perf_counter() - start
        print(f"{k} zone(s): {elapsed:.2f} s, {out.extra_pixels.size} shared claims")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()
