"""The merge of the moments' partials alone: a step's tree of merges.

    python benchmarks/merge.py [--zones 200000] [--chunks 64] [--planes 1]
        [--repeat 9]

Zones are cells of a square grid, chunks a square grid over it; each
chunk's partials hold the zones of its cells and of the row and column of
cells beyond its edges (the zones a chunk's border cuts), as a time-series
step's 1024² chunks of 200,000 zones do (about 600,000 partial rows a step
in 9 merges of 8 parts: 64 chunks, ``split_every`` 8). ``--planes 1`` gives
partials of shape (zones, fields, 1) as a series' steps have; ``--planes 0``
2-D ones. Prints the median wall and thread CPU milliseconds of the whole
tree, over ``--repeat`` runs after one warm-up, for whichever ``zonal_dask``
is imported (set ``PYTHONPATH`` to compare versions).
"""

from __future__ import annotations

import argparse
import math
import time

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
    args = parser.parse_args()
    parts = chunk_partials(args.zones, args.chunks, args.planes)
    rows = sum(p.zone.size for p in parts)
    tree(parts)  # loads (or compiles) the kernels
    wall, cpu = [], []
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.thread_time()
        merged = tree(parts)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
    print(
        f"{rows} chunk rows, {merged.zone.size} zones: "
        f"wall {1e3 * np.median(wall):.1f} ms, thread CPU {1e3 * np.median(cpu):.1f} ms"
    )


if __name__ == "__main__":
    main()
