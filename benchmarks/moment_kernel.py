"""The chunk step's moments pass alone, on one 2048² float32 chunk.

    python benchmarks/moment_kernel.py [--zones 200] [--repeat 7]

Times ``reduce.partials.chunk_step`` (the compiled pass and what wraps it)
on one chunk of values near 1000 (spread 30) labelled by ``--zones`` square
zones, for the default statistics, with the extremes' positions asked
(``min_center_x``), with the third and fourth moments (``skewness``), and
with a weights raster (``weighted_mean``); prints the median of ``--repeat``
runs after one warm-up (numba's compilation excluded), in wall time and in
the calling thread's CPU time (steadier on a shared machine: the pass runs
on that thread). Run it with
``PYTHONPATH`` set to a tree of zonal_dask to compare two versions: the
cases a version does not know are skipped.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from zonal_dask.labels.sources import ChunkLabels
from zonal_dask.reduce import partials

SIZE = 2048


def labels(n_zones: int) -> ChunkLabels:
    side = max(1, round(float(np.sqrt(n_zones))))
    rows = np.minimum(np.arange(SIZE) * side // SIZE, side - 1)
    grid = (rows[:, None] * side + rows[None, :]).astype(np.int32)
    empty = np.empty(0, np.int64)
    return ChunkLabels(
        grid[np.newaxis], empty, empty.astype(np.int32), np.arange(side * side)
    )


def needs(**asked: bool) -> partials.Needs | None:
    known = {f.name for f in dataclasses.fields(partials.Needs)}
    if not set(asked) <= known:
        return None
    return partials.Needs(**asked)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--zones", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    values = rng.normal(1000, 30, (SIZE, SIZE)).astype(np.float32)
    weights = rng.uniform(0, 2, (SIZE, SIZE))
    chunk = labels(args.zones)
    cases = {
        "default statistics": (needs(), None),
        "with positions": (needs(positions=True), None),
        "with skewness": (needs(higher=True), None),
        "with a weights raster": (needs(weighted=True), weights),
    }
    for name, (asked, by_pixel) in cases.items():
        if asked is None:
            print(f"{name:24s} not in this version")
            continue
        spec = partials.ChunkSpec(needs=asked, origin=(0, 0, SIZE))
        partials.chunk_step(values, chunk, by_pixel, spec)  # compile / load
        times, cpu = [], []
        for _ in range(args.repeat):
            start, start_cpu = time.perf_counter(), time.thread_time()
            partials.chunk_step(values, chunk, by_pixel, spec)
            times.append(time.perf_counter() - start)
            cpu.append(time.thread_time() - start_cpu)
        median, median_cpu = float(np.median(times)), float(np.median(cpu))
        rate = SIZE * SIZE / median_cpu / 1e6
        print(
            f"{name:24s} {median * 1e3:8.1f} ms, CPU {median_cpu * 1e3:6.1f} ms"
            f"  {rate:6.0f} Mpx per CPU s"
        )


if __name__ == "__main__":
    main()
