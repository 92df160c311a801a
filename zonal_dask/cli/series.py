"""The command line for time series: many rasters in, a vector data cube out.

    zonal-dask ZONES 'lst_*.tif' OUT.zarr --time-pattern %Y-%m-%d [--append]
    zonal-dask ZONES items.json OUT.parquet --asset lst
    zonal-dask ZONES cube.zarr OUT.nc --variable lst

``cli/main.py`` hands a run to ``run`` when ``is_series`` says the inputs are a
series; the options are ``cli/options.py``'s, like every other flag.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time
from pathlib import Path

SERIES_OUTPUTS = (".zarr", ".nc", ".parquet")
SERIES_INPUTS = (".zarr", ".nc", ".nc4", ".json", ".geojson")


def is_series(args: argparse.Namespace) -> bool:
    """Whether the run is a time series: several rasters, a glob, a cube or
    STAC input, a cube output, or a series option."""
    rasters = args.raster
    if len(rasters) > 1 or glob.has_magic(rasters[0]):
        return True
    if rasters[0].rstrip("/").lower().endswith(SERIES_INPUTS):
        return True
    if Path(args.output).suffix.lower() in (".zarr", ".nc"):
        return True
    options = (args.time_pattern, args.times, args.asset, args.variable, args.batch)
    return any(o is not None for o in options) or args.append or args.plan_per_grid


def run(args: argparse.Namespace) -> int:
    """Compute the series' statistics and write OUTPUT; one line says what."""
    from ..errors import OutputError
    from ..io.location import locate
    from ..labels.plan import ZonePlan
    from ..run.faults import failures_reported
    from ..series.zonal_series import OPTIONS, zonal_series
    from .options import FLAGS, scheduler_for, zonal_options

    options = zonal_options(args)
    # the flags whose zonal_stats options zonal_series does not take
    offered = {*OPTIONS, "stats", "geometry"}
    refused = [
        flag.flag
        for flag in FLAGS
        if flag.param not in offered and options[flag.param] not in (None, False)
    ]
    refused += [
        name
        for name, given in (
            ("--map", args.map),
            ("--pixels", args.pixels),
            ("--class-names", args.class_names),
            ("--categorical with --band all", args.categorical and args.band is None),
        )
        if given
    ]
    if refused:
        raise OutputError(f"{refused[0]} is not offered for a time series")
    rasters = args.raster
    source: object = rasters if len(rasters) > 1 else rasters[0]
    zones: object = args.zones
    if os.path.isdir(args.zones) and args.zones.rstrip("/").endswith(".zarr"):
        zones = ZonePlan.load(args.zones)
    options = {k: v for k, v in options.items() if k in offered}
    started = time.perf_counter()
    with (
        failures_reported(locate(args.output).url, None),  # Path makes s3:/ of s3://
        scheduler_for(args),
    ):
        written = zonal_series(
            zones,
            source,
            **{k: v for k, v in options.items() if v is not None},
            time_pattern=args.time_pattern,
            times=args.times,
            asset=args.asset,
            variables=args.variable,
            plan_per_grid=args.plan_per_grid,
            output=args.output,
            append=args.append,
            overwrite=args.overwrite,
            batch=args.batch,
            progress=sys.stderr.isatty() and not args.quiet,
        )
    if not args.quiet:
        elapsed = time.perf_counter() - started
        what = f"{len(written)} step(s) written to" if written else "no new step for"
        print(f"zonal-dask: {what} {args.output} in {elapsed:.1f} s", file=sys.stderr)
    return 0
