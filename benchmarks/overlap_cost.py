"""What overlapping zones cost the rasterizer, against a partition of the same size.

One 2048 x 2048 chunk; N random points; zones are either their Voronoi cells (a
partition: only shared-edge pixels are claimed twice) or discs around them
whose radius makes each pixel covered about ``depth`` times. Prints the layers
``overlap_layers`` makes, its time, the time of ``polygon_labels`` (median of
3) and how many (pixel, zone) claims were resolved by re-burning zones alone.

    python benchmarks/overlap_cost.py
"""

from __future__ import annotations

import time

import numpy as np
import shapely

from zonal_dask.burn import overlap_layers
from zonal_dask.labels import polygon_labels
from zonal_dask.zones import ChunkTask

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


def timed(geometries: np.ndarray, all_touched: bool) -> tuple[float, float, int, int]:
    start = time.perf_counter()
    layers = overlap_layers(geometries, all_touched)
    colouring = time.perf_counter() - start
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        task = ChunkTask.whole(geometries, (SIZE, SIZE), layers=layers)
        labels = polygon_labels(task, all_touched)
        runs.append(time.perf_counter() - start)
    return (
        colouring,
        float(np.median(runs)),
        int(layers.max()) + 1,
        labels.extra_pixels.size,
    )


LAYOUTS = ((0, "partition"), (1.5, "discs, depth 1.5"), (3, "discs, depth 3"))


def main() -> None:
    print("| zones | layout | rule | layers | colouring s | rasterize s | resolved |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for n in (1000, 10000):
        for depth, name in LAYOUTS:
            geometries = zones(n, depth)
            for all_touched in (False, True):
                rule = "all touched" if all_touched else "centre"
                colour, seconds, layers, claims = timed(geometries, all_touched)
                print(
                    f"| {n} | {name} | {rule} | {layers} | {colour:.3f} "
                    f"| {seconds:.3f} | {claims} |"
                )


if __name__ == "__main__":
    main()
