"""The command line for time series: many rasters in, a vector data cube out.

    zonal-dask ZONES 'lst_*.tif' OUT.zarr --time-pattern %Y-%m-%d [--append]
    zonal-dask ZONES items.json OUT.parquet --asset lst
    zonal-dask ZONES cube.zarr OUT.nc --variable lst

``cli.py`` adds these options to its parser (``add_arguments``) and hands a
run to ``run`` when ``is_series`` says the inputs are a series.
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The series options, in a group of their own."""
    group = parser.add_argument_group(
        "time series (several RASTERs, a glob, a STAC catalog, a .zarr or .nc cube)"
    )
    group.add_argument(
        "--time-pattern",
        metavar="PATTERN",
        help="strftime codes finding each file's time in its name, e.g. %%Y-%%m-%%d "
        "(default: the files' order)",
    )
    group.add_argument("--asset", help="the STAC asset to read from each item")
    group.add_argument(
        "--variable",
        action="append",
        help="a variable of a .zarr/.nc cube (repeat for several; default: all)",
    )
    group.add_argument(
        "--append",
        action="store_true",
        help="compute only the steps OUTPUT (.zarr or .parquet) lacks and add them",
    )
    group.add_argument(
        "--plan-per-grid",
        action="store_true",
        help="accept steps on different grids, rasterizing the zones once per grid",
    )
    group.add_argument(
        "--batch", type=int, metavar="N", help="time steps per batch (default: chosen)"
    )


def request_options(args: argparse.Namespace) -> dict:
    """The options of ``zonal_stats`` and ``zonal_series`` the command line
    sets, as keyword arguments."""
    return {
        "band": args.band,
        "nodata": args.nodata,
        "zone_id": args.id_field,
        "all_touched": args.all_touched,
        "categorical": args.categorical,
        "weights": args.weights,
        "small": args.small,
        "chunks": args.chunks,
        "layer": args.layer,
        "assume_same_crs": args.assume_same_crs,
        "zones_crs": args.zones_crs,
    }


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
    options = (args.time_pattern, args.asset, args.variable, args.batch)
    return any(o is not None for o in options) or args.append or args.plan_per_grid


def run(args: argparse.Namespace) -> int:
    """Compute the series' statistics and write OUTPUT; one line says what."""
    from .cluster import scheduler
    from .errors import OutputError
    from .faults import failures_reported
    from .plan import ZonePlan
    from .timeseries import zonal_series

    refused = [
        name
        for name, given in (
            ("--checkpoint", args.checkpoint),
            ("--map", args.map),
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
    stats = args.stats.replace(",", " ").split() if args.stats else None
    started = time.perf_counter()
    with (
        failures_reported(Path(args.output), None),
        scheduler(
            args.scheduler,
            args.workers,
            cluster=args.cluster,
            threads_per_worker=args.threads_per_worker,
            memory_limit=args.memory_limit,
        ),
    ):
        written = zonal_series(
            zones,
            source,
            **({"stats": stats} if stats else {}),
            **request_options(args),
            prefix=args.prefix,
            time_pattern=args.time_pattern,
            asset=args.asset,
            variables=args.variable,
            plan_per_grid=args.plan_per_grid,
            output=args.output,
            append=args.append,
            overwrite=args.overwrite,
            geometry=args.geometry,
            batch=args.batch,
            progress=sys.stderr.isatty() and not args.quiet,
        )
    if not args.quiet:
        elapsed = time.perf_counter() - started
        what = f"{len(written)} step(s) written to" if written else "no new step for"
        print(f"zonal-dask: {what} {args.output} in {elapsed:.1f} s", file=sys.stderr)
    return 0
