"""Peak memory of coverage weighting under zones nested 150 deep (issue 24).

    python benchmarks/coverage_overlap_memory.py [--zones 150] [--side 1000]

150 concentric discs, each inside the previous, over one 1000 x 1000 float32
raster held as a single chunk; ``count`` and ``mean`` under the centre rule,
under ``coverage="fraction"``, and by exactextract. Each case runs in a fresh
process that first runs every case on a small input (so that numba's kernels
are loaded), then the measured call; it prints

* ``process``: the process's peak RSS (``VmHWM``) minus that of a process that
  does everything but the measured call (imports, data, the small case): the
  whole-process figure ``/usr/bin/time -v`` reports, less the baseline;
* ``call``: the peak RSS during the call minus the RSS just before it (the
  peak reset before the call through /proc/self/clear_refs);
* ``traced``: tracemalloc's peak during the call (numpy's allocations; not the
  arrays numba's kernels allocate).

and the ratios of the coverage run to the centre rule and to exactextract.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tracemalloc

import numpy as np

CASES = ("baseline", "centre", "fraction", "exactextract")


def nested_discs(n: int, side: int) -> object:
    """``n`` concentric discs centred on a ``side``² grid of unit cells whose
    top left corner is (0, side), the largest nearly touching its edges."""
    import geopandas as gpd
    import shapely

    centre = shapely.Point(side / 2 + 0.3, side / 2 - 0.2)
    radii = (side / 2 - 1) * (1 - np.arange(n) / n)
    return gpd.GeoDataFrame(
        {"zone": np.arange(n)},
        geometry=[centre.buffer(r, quad_segs=64) for r in radii],
        crs="EPSG:32633",
    )


def raster(side: int) -> object:
    import rioxarray  # noqa: F401  (the .rio accessor)
    import xarray as xr

    values = np.random.default_rng(24).normal(100, 10, (side, side))
    da = xr.DataArray(
        values.astype(np.float32),
        dims=("y", "x"),
        coords={"y": side - 0.5 - np.arange(side), "x": 0.5 + np.arange(side)},
    )
    return da.rio.write_crs("EPSG:32633").chunk(side)


def run(case: str, zones: object, grid: object) -> object:
    if case == "baseline":
        return None
    if case == "exactextract":
        from exactextract import exact_extract

        return exact_extract(grid, zones, ["count", "mean"], output="pandas")
    import zonal_dask as zd

    coverage = "fraction" if case == "fraction" else None
    return zd.zonal_stats(zones, grid, ["count", "mean"], coverage=coverage)


def measure(case: str, n: int, side: int) -> dict:
    """One case in this process: the small case, then the measured one."""
    for warm in CASES[1:]:  # every process loads the same kernels first
        run(warm, *_inputs(warm, 8, 64))
    zones, grid = _inputs(case, n, side)
    # the peak RSS so far set back to the RSS now (Linux: clear_refs 5)
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    before = _status("VmRSS")
    tracemalloc.start()
    run(case, zones, grid)
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    after = _status("VmHWM")
    return {"call": after - before, "traced": traced / 2**20, "hwm": _peak()}


def _inputs(case: str, n: int, side: int) -> tuple:
    grid = raster(side)
    if case == "exactextract":
        grid = grid.compute()  # exactextract reads an in-memory array
    return nested_discs(n, side), grid


def _peak() -> float:
    """The process's peak RSS since it started, in MB (what time -v reports)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _status(field: str) -> float:
    """A field of /proc/self/status, in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(field)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zones", type=int, default=150)
    parser.add_argument("--side", type=int, default=1000)
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(measure(args.case, args.zones, args.side)))
        return
    found = {}
    sizes = ["--zones", str(args.zones), "--side", str(args.side)]
    for case in CASES:
        out = subprocess.run(
            [sys.executable, __file__, "--case", case, *sizes],
            check=True,
            capture_output=True,
            text=True,
        )
        found[case] = json.loads(out.stdout.strip().splitlines()[-1])
    base = found["baseline"]["hwm"]
    print(f"{args.zones} nested discs over one {args.side}² chunk, count and mean")
    print(f"{'case':<14}{'process MB':>12}{'call MB':>10}{'traced MB':>11}")
    for case in CASES[1:]:
        f = found[case]
        f["process"] = max(f["hwm"] - base, 0.0)
        print(f"{case:<14}{f['process']:>12.1f}{f['call']:>10.1f}{f['traced']:>11.1f}")
    for key in ("process", "call"):
        cover = found["fraction"][key]
        ratios = [
            cover / max(found[other][key], 1.0) for other in ("centre", "exactextract")
        ]
        print(
            f"fraction / centre ({key}): {ratios[0]:.1f}x, "
            f"fraction / exactextract ({key}): {ratios[1]:.1f}x"
        )


if __name__ == "__main__":
    main()
