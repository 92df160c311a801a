"""Cost of pixels that several zones claim, for one 2048 x 2048 chunk.

    python benchmarks/overlap_chunk.py

Burns a chunk wholly covered by one zone, then by two overlapping zones, as
``zonal_stats`` does (the second zone's pixels become sparse claims), and as a
stored ``ZonePlan`` does (``overlap_layers`` puts them in two label planes).
Prints the time of each and the process's peak RSS.
"""

from __future__ import annotations

import resource
import time

import numpy as np
import shapely

from zonal_dask.burn.rules import overlap_layers
from zonal_dask.labels.chunk_tasks import ChunkTask
from zonal_dask.labels.sources import ChunkLabels, polygon_labels

SIDE = 2048


def main() -> None:
    # oriented pixel space of a north-up raster: rows go to negative y
    cover = shapely.box(-10, -SIDE - 10, SIDE + 10, 10)
    disc = shapely.Point(SIDE / 2, -SIDE / 2).buffer(SIDE)  # covers it too
    geometries = np.array([cover, disc], dtype=object)
    cases = [
        ("1 zone", geometries[:1], None),
        ("2 zones, sparse claims", geometries, None),
        ("2 zones, a plan's overlap layers", geometries, overlap_layers(geometries)),
    ]
    for name, zones, layers in cases:
        start = time.perf_counter()
        out = polygon_labels(ChunkTask.whole(zones, (SIDE, SIDE), layers=layers))
        elapsed = time.perf_counter() - start
        assert isinstance(out, ChunkLabels)
        print(
            f"{name}: {elapsed:.2f} s, {out.labels.shape[0]} plane(s), "
            f"{out.extra_pixels.size} sparse claims, peak RSS {_peak():.0f} MB"
        )


def _peak() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
