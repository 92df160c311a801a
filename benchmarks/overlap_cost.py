"""What overlapping zones cost the burner, against a partition of the same size.

One 2048 x 2048 chunk; N random points; zones are either their Voronoi cells (a
partition: only shared-edge pixels are claimed twice) or discs around them
whose radius makes each pixel covered about ``depth`` times. Prints the time to
burn the chunk (``polygon_labels`` and every piece it is burnt in; median of
3), the pieces, the sparse claims (every claim beyond the first on a pixel)
and the process's peak RSS so far.

    python benchmarks/overlap_cost.py
"""

from __future__ import annotations

import resource
import time

import numpy as np
import shapely

from zonal_dask.labels.chunk_tasks import ChunkTask
from zonal_dask.labels.sources import pieces, polygon_labels

SIZE = 2048


def zones(n: int, depth: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    points = rng.uniform(0, SIZE, (n, 2))
    if depth == 0:
        box = shapely.box(0, 0, SIZE, SIZE)
        cells = shapely.voronoi_polygons(shapely.multipoints(points), extend_to=box)
        geometries = shapely.intersection(shapely.get_parts(cells), box)
    else:
        radius = np.sqrt(depth * SIZE * SIZE / (n * np.pi))
        geometries = shapely.buffer(shapely.points(points), radius, quad_segs=8)
    # oriented pixel space of a north-up raster: y = -row
    return shapely.transform(geometries, lambda xy: xy * (1, -1))


def timed(geometries: np.ndarray, all_touched: bool) -> tuple[float, int, int]:
    """Median seconds to burn every piece, the pieces and the sparse claims."""
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        count = sparse = 0
        task = ChunkTask.whole(geometries, (SIZE, SIZE))
        for piece in pieces(polygon_labels(task, all_touched)):
            count += 1
            sparse += piece.extra_pixels.size
        runs.append(time.perf_counter() - start)
    return float(np.median(runs)), count, sparse


LAYOUTS = (
    (0, "partition"),
    (1.5, "discs, depth 1.5"),
    (3, "discs, depth 3"),
    (30, "discs, depth 30"),
)


def main() -> None:
    print("| zones | layout | rule | burn s | pieces | sparse claims | peak MB |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for n in (1000, 10000):
        for depth, name in LAYOUTS:
            geometries = zones(n, depth)
            for all_touched in (False, True):
                rule = "all touched" if all_touched else "centre"
                seconds, count, claims = timed(geometries, all_touched)
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                print(
                    f"| {n} | {name} | {rule} | {seconds:.3f} | {count} "
                    f"| {claims} | {peak:.0f} |"
                )


if __name__ == "__main__":
    main()
