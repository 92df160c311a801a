"""Weighted time series against the unweighted step: one job as one process.

    python benchmarks/weighted_series.py RASTER ZONES WORKDIR MODE --steps N

The steps are RASTER repeated (``WORKDIR/step_1.tif`` ... links to it), so
every mode reads the same pixels; the weights raster (``WORKDIR/weights.tif``,
written on the first run, on RASTER's grid: 1 + the row's position, so every
weight differs along y) is made by this script. MODE is one of:

* ``plain``: ``zonal_series`` of count, mean, sum, unweighted (pixel centres);
* ``coverage``: the same with ``coverage="fraction"``;
* ``weights``: ``coverage="fraction"`` and the weights raster, with
  ``weighted_mean`` added;
* ``calls``: what ``weights`` computes, as one weighted ``zonal_stats`` call
  per step (the fractions and weights made again for each step).

A mode's time per step is the difference between two runs with different
``--steps``, divided by the difference of steps (start, imports, reading the
zones and planning cancel out), e.g. with ``/usr/bin/time -v``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

STATS = ["count", "mean", "sum"]


def weights_raster(raster: Path, workdir: Path) -> Path:
    path = workdir / "weights.tif"
    if path.exists():
        return path
    import numpy as np
    import rasterio

    with rasterio.open(raster) as src:
        profile = src.profile | {"dtype": "float32", "nodata": None, "count": 1}
        rows, cols = src.shape
    weights = np.repeat(
        (1.0 + np.arange(rows, dtype=np.float32) / rows)[:, None], cols, axis=1
    )
    tmp = workdir / "weights.tmp.tif"
    with rasterio.open(tmp, "w", **profile) as dst:
        dst.write(weights, 1)
    os.replace(tmp, path)
    return path


def steps(raster: Path, workdir: Path, n: int) -> list[str]:
    paths = []
    for t in range(1, n + 1):
        link = workdir / f"step_{t}.tif"
        if not link.exists():
            link.symlink_to(raster.resolve())
        paths.append(str(link))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raster", type=Path)
    parser.add_argument("zones", type=Path)
    parser.add_argument("workdir", type=Path)
    parser.add_argument("mode", choices=["plain", "coverage", "weights", "calls"])
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    files = steps(args.raster, args.workdir, args.steps)
    weights = weights_raster(args.raster, args.workdir)

    import zonal_dask as zd

    stats, options = list(STATS), {}
    if args.mode != "plain":
        options["coverage"] = "fraction"
    if args.mode in ("weights", "calls"):
        options["weights"] = str(weights)
        stats.append("weighted_mean")
    if args.mode == "calls":
        means = [
            float(zd.zonal_stats(str(args.zones), f, stats, **options)["mean"].mean())
            for f in files
        ]
        print(f"{len(files)} calls, mean of means {means[-1]:.4f}")
    else:
        cube = zd.zonal_series(str(args.zones), files, stats, **options)
        print(f"{dict(cube.sizes)}, mean of means {float(cube['mean'].mean()):.4f}")
    sys.stdout.flush()
    os._exit(0)  # like the command line: no interpreter teardown


if __name__ == "__main__":
    main()
