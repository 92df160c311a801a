"""The merge of the moments' partials alone: a step's tree of merges.

    python benchmarks/merge.py [--zones 200000] [--chunks 64] [--planes 1]
        [--repeat 9] [--series DIR]

Zones are cells of a square grid, chunks a square grid over it; each
chunk's partials hold the zones of its cells and of the row and column of
cells beyond its edges (the zones a chunk's border cuts), as a time-series
step's 1024² chunks of 200,000 zones do (about 600,000 partial rows a step
in 9 merges of 8 parts: 64 chunks, ``split_every`` 8). ``--planes 1`` gives
partials of shape (zones, fields, 1) as a series' steps have; ``--planes 0``
2-D ones. Prints the median wall and thread CPU milliseconds of the whole
tree, over ``--repeat`` runs after one warm-up, for whichever ``zonal_dask``
is imported (set ``PYTHONPATH`` to compare versions).

``--series DIR`` (what ``peers/make_timeseries.py`` writes): the partials
are instead those of a real Zarr step, ``zonal_series`` over the first step
of ``DIR/lst.zarr`` and ``DIR/lst_zones_{zones}.gpkg`` with every merge's
inputs recorded; the same merges are then timed.
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

import numpy as np


def chunk_partials(zones: int, chunks: int, planes: int, seed: int = 0) -> list:
    from zonal_dask.reduce.moments import N_FIELDS, Moments
    from zonal_dask.statistics.fields import INDEX

    rng = np.random.default_rng(seed)
    side, per = math.isqrt(zones), math.isqrt(chunks)
    cells = side // per
    parts = []
    for i in range(per):
        for j in range(per):
            rows = np.arange(max(i * cells - 1, 0), min((i + 1) * cells + 1, side))
            cols = np.arange(max(j * cells - 1, 0), min((j + 1) * cells + 1, side))
            zone = (rows[:, None] * side + cols[None, :]).ravel().astype(np.int64)
            shape = (zone.size, N_FIELDS) + ((planes,) if planes else ())
            data = rng.normal(300.0, 5.0, shape)
            data[:, INDEX["weight"]] = rng.integers(1, 400, shape[:1] + shape[2:])
            for name in ("posinf", "neginf", "nan", "nodata", "undefined", "carry"):
                data[:, INDEX[name]] = 0.0
            for name in ("m2", "m3", "m4"):
                data[:, INDEX[name]] = np.abs(data[:, INDEX[name]])
            for name in ("min_at", "max_at"):
                data[:, INDEX[name]] = rng.integers(0, 2**40, shape[:1] + shape[2:])
            parts.append(Moments(zone, data))
    return parts


def series_merges(directory: str, zones: int) -> list[list]:
    """The inputs of every merge of one Zarr step, recorded from a run."""
    import xarray as xr

    import zonal_dask as zd
    from zonal_dask.reduce import partials

    calls: list[list] = []
    merge = partials.merge

    def recorded(parts: list) -> Any:
        calls.append(list(parts))
        return merge(parts)

    cube = xr.open_zarr(f"{directory}/lst.zarr", decode_coords="all")
    partials.merge = recorded
    try:
        stats = ["count", "min", "mean", "max", "std", "sum"]
        zd.zonal_series(
            f"{directory}/lst_zones_{zones}.gpkg", cube.isel(time=slice(0, 1)), stats
        )
    finally:
        partials.merge = merge
    return calls


def tree(parts: list, split_every: int = 8):
    from zonal_dask.reduce.moments import merge

    level = parts
    while len(level) > 1:
        level = [
            merge(level[i : i + split_every]) for i in range(0, len(level), split_every)
        ]
    return level[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zones", type=int, default=200_000)
    parser.add_argument("--chunks", type=int, default=64)
    parser.add_argument("--planes", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--series", help="a time series' directory")
    args = parser.parse_args()
    from zonal_dask.reduce.moments import merge

    if args.series:
        calls = series_merges(args.series, args.zones)

        def run() -> Any:
            return [merge(parts) for parts in calls][-1]

        rows = sum(p.zone.size for parts in calls for p in parts if p is not None)
        what = f"{len(calls)} merges of a Zarr step, {rows} rows"
    else:
        parts = chunk_partials(args.zones, args.chunks, args.planes)

        def run() -> Any:
            return tree(parts)

        what = f"{sum(p.zone.size for p in parts)} chunk rows"
    run()  # loads (or compiles) the kernels
    wall, cpu = [], []
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.thread_time()
        merged = run()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
    print(
        f"{what}, {merged.zone.size} zones: wall {1e3 * np.median(wall):.1f} ms, "
        f"thread CPU {1e3 * np.median(cpu):.1f} ms (medians of {args.repeat})"
    )


if __name__ == "__main__":
    main()
