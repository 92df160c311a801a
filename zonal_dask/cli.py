"""The ``zonal-dask`` command."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .cli_series import add_arguments as series_arguments
from .cli_series import is_series, request_options
from .errors import OutputError, ZonalError
from .runtime import run_scope
from .stats import ALIASES, DEFAULT_STATS, PATTERNS, STATISTICS

if TYPE_CHECKING:
    import pandas as pd

CLASSIC_COLUMNS = ["min", "mean", "max", "std", "sum"]

EXAMPLES = """\
examples:
  zonal-dask borders.shp pop.tif stats.txt
      the classic table: tab-separated min mean max std sum fid
  zonal-dask borders.gpkg pop.tif stats.csv --stats count,mean,max --id-field code
  zonal-dask borders.shp s3://bucket/pop.tif stats.parquet --scheduler tcp://host:8786
  zonal-dask parcels.gpkg landcover.tif classes.csv --stats majority --categorical
  zonal-dask basins.gpkg ndvi_stack.tif ndvi.csv --band all --stats mean,max
  zonal-dask watersheds.tif rain.tif rain.csv --stats mean,p90
      zones given as an integer label raster on the same grid
  zonal-dask borders.shp slope.tif borders_slope.gpkg --prefix slope_ --map mean.png
      the polygons with their attributes and slope_count ... slope_sum, for QGIS,
      and a map of the mean
  zonal-dask basins.gpkg 'lst_*.tif' lst.zarr --time-pattern %Y-%m-%d --append
      a vector data cube (zone x time) of the daily files; a rerun adds new days
  zonal-dask demo [DIR]
      write a small sample into DIR, summarise it and print the first rows
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zonal-dask",
        description="Per-polygon statistics of a raster, on all local cores or a "
        "Dask cluster. A pixel belongs to a polygon when its centre is inside; "
        "nodata and NaN pixels are left out.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "zones",
        help="polygons (Shapefile, GeoPackage, GeoJSON, ...) or a label raster (.tif)",
    )
    parser.add_argument(
        "raster",
        nargs="+",
        help="raster path or GDAL-readable URL; several, a glob, a STAC catalog "
        "(.json) or a .zarr/.nc cube for a time series",
    )
    parser.add_argument(
        "output",
        help="table to write: .txt/.tsv (tab-separated), .csv or .parquet; or the "
        "polygons with their attributes and the statistics: .gpkg, .geojson, .fgb",
    )
    parser.add_argument(
        "--stats",
        help=f"comma-separated statistics, in column order (default: "
        f"{','.join(DEFAULT_STATS)}); any of: {', '.join([*STATISTICS, *ALIASES])}; "
        f"{PATTERNS}",
    )
    parser.add_argument(
        "--band",
        type=_band,
        default=1,
        help="1-based band (default 1), or 'all': one row per zone and band",
    )
    parser.add_argument(
        "--all-touched",
        action="store_true",
        help="count every pixel a polygon touches, not only centres inside",
    )
    parser.add_argument(
        "--categorical",
        action="store_true",
        help="add one column per raster value with the zone's pixel count",
    )
    parser.add_argument(
        "--weights",
        choices=["coverage"],
        help="weight pixels by the fraction the polygon covers (count, sum, mean)",
    )
    parser.add_argument(
        "--small",
        choices=["nan", "touched"],
        default="nan",
        help="polygons holding no pixel centre: NaN (default) or the pixels they "
        "touch, flagged in a 'small' column",
    )
    parser.add_argument("--nodata", type=_number, help="nodata value to use instead")
    parser.add_argument("--id-field", help="field naming the rows (default: the FID)")
    parser.add_argument("--chunks", type=int, help="chunk size in pixels")
    parser.add_argument(
        "--workers",
        type=int,
        help="local threads, or worker processes with --cluster (default: all cores)",
    )
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="start a local dask.distributed cluster (prints its dashboard link)",
    )
    parser.add_argument(
        "--threads-per-worker", type=int, help="threads of each --cluster worker"
    )
    parser.add_argument(
        "--memory-limit", help="memory of each --cluster worker, e.g. 4GB"
    )
    parser.add_argument(
        "--scheduler", help="dask scheduler address (default: $DASK_SCHEDULER_ADDRESS)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace OUTPUT")
    parser.add_argument("--layer", help="layer of a vector file that has several")
    parser.add_argument(
        "--assume-same-crs",
        action="store_true",
        help="take the zones' coordinates as the raster's, whatever CRS either "
        "declares (needed when one has none)",
    )
    parser.add_argument(
        "--zones-crs",
        metavar="CRS",
        help="the zones' true CRS (EPSG:32618, WKT, ...), replacing a wrong .prj",
    )
    parser.add_argument(
        "--checkpoint",
        metavar="DIR",
        help="save each chunk's results in DIR; a rerun computes only the rest",
    )
    parser.add_argument(
        "--geometry",
        action="store_true",
        help="with a .parquet OUTPUT: write GeoParquet, the polygons with their "
        "attributes and the statistics",
    )
    parser.add_argument(
        "--prefix", help="text before each statistic's column name, e.g. slope_"
    )
    parser.add_argument(
        "--map", metavar="FILE.png", help="also draw a map of one statistic"
    )
    parser.add_argument(
        "--map-stat",
        metavar="NAME",
        help="statistic to map (default: mean if computed, else the first)",
    )
    series_arguments(parser)
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument(
        "-q", "--quiet", action="store_true", help="no summary, no progress bar"
    )
    verbosity.add_argument(
        "-v", "--verbose", action="store_true", help="add per-stage timings"
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    return parser


def _number(text: str) -> float:
    """A nodata value: an integer exactly (beyond 2**53 too), else a float."""
    try:
        return int(text)
    except ValueError:
        return float(text)


def _band(text: str) -> int | None:
    if text == "all":
        return None
    try:
        return int(text)
    except ValueError:
        message = f"expected a number or 'all', got {text!r}"
        raise argparse.ArgumentTypeError(message) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (0 on success)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["demo"]:
            return _demo(argv[1:])
        return _run(build_parser().parse_args(argv))
    except ZonalError as err:
        print(f"zonal-dask: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:
        print(f"zonal-dask: {err or 'interrupted; no output written'}", file=sys.stderr)
        return 130


def console() -> None:
    """The ``zonal-dask`` console script: ``main``, then a prompt exit.

    Tearing down the interpreter's modules (dask, numba, xarray, GDAL) took
    0.3-0.7 s after a run on the benchmark machine. By now the output is
    renamed into place and any cluster is closed, so the process exits
    without that teardown once its streams are flushed.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@run_scope()
def _run(args: argparse.Namespace) -> int:
    import xarray as xr

    from .api import zonal_stats
    from .cluster import compute, scheduler
    from .faults import failures_reported
    from .features import STAT_COLUMNS
    from .output import check_output, write_features, write_table
    from .stats import resolve
    from .summary import Stopwatch

    if is_series(args):
        from .cli_series import run

        return run(args)
    (args.raster,) = args.raster
    stopwatch = Stopwatch()
    stats = args.stats.replace(",", " ").split() if args.stats else list(DEFAULT_STATS)
    names = [c.name for c in resolve(stats)]  # refuses unknown names before reading
    output = Path(args.output)
    features = _writes_features(output, args.geometry)
    check_output(output, overwrite=args.overwrite)
    map_stat = _map_stat(args, names)
    if args.band is None and (features or map_stat is not None):
        raise OutputError(
            "--band all writes a table (a row per zone and band), not features or a map"
        )
    prefix = args.prefix or ""
    with (
        failures_reported(output, args.checkpoint),
        scheduler(
            args.scheduler,
            args.workers,
            cluster=args.cluster,
            threads_per_worker=args.threads_per_worker,
            memory_limit=args.memory_limit,
        ) as client,
    ):
        lazy = zonal_stats(
            args.zones,
            args.raster,
            stats,
            **request_options(args),
            compute=False,
            geometry=features or map_stat is not None,
            prefix=prefix,
            checkpoint=args.checkpoint,
        )
        stopwatch.lap("planning")
        progress = sys.stderr.isatty() and not args.quiet
        result = compute(lazy, client=client, progress=progress)
        stopwatch.lap("compute")
    if isinstance(result, xr.Dataset):  # --band all: the long table
        result = result.to_dataframe().rename_axis(
            index={"zone": result.zone.long_name}
        )
    columns = result.attrs.get(STAT_COLUMNS, list(result.columns))
    if features:
        write_features(result, output, overwrite=args.overwrite)
    else:
        table = _table(result, columns, args.id_field)
        layout = _layout(table, output, args.stats, prefix)
        write_table(layout, output, overwrite=args.overwrite)
    stopwatch.lap("write")
    if map_stat is not None:
        from .plot import choropleth

        choropleth(
            result,
            prefix + map_stat,
            raster=args.raster,
            band=args.band,
            path=args.map,
            overwrite=args.overwrite,
        )
        stopwatch.lap("map")
    if not args.quiet:
        shown = [str(c).removeprefix(prefix) for c in columns]
        _summary(args, lazy, result[columns].set_axis(shown, axis=1), names, stopwatch)
    return 0


def _layout(
    table: pd.DataFrame, output: Path, stats: str | None, prefix: str = ""
) -> pd.DataFrame:
    """The classic recipe's columns for a tab-separated table of the default stats."""
    if stats is None and output.suffix.lower() in (".txt", ".tsv"):
        default = [prefix + c for c in DEFAULT_STATS]
        return table[
            [prefix + c for c in CLASSIC_COLUMNS]
            + [c for c in table.columns if c not in default]
        ]
    return table


def _writes_features(output: Path, geometry: bool) -> bool:
    """Whether OUTPUT gets the polygons and attributes, or a table; refuses
    formats that are neither before anything is computed."""
    from .output import FEATURE_FORMATS, TABLE_FORMATS

    suffix = output.suffix.lower()
    if suffix not in (*TABLE_FORMATS, *FEATURE_FORMATS):
        known = dict.fromkeys((*TABLE_FORMATS, *FEATURE_FORMATS))
        raise OutputError(
            f"{output}: unknown output format {suffix or '(none)'!r}; "
            f"use one of {', '.join(known)}"
        )
    if geometry and suffix not in FEATURE_FORMATS:
        raise OutputError(
            f"{output}: --geometry needs a .parquet, .gpkg, .geojson or .fgb output"
        )
    return suffix in FEATURE_FORMATS and (geometry or suffix != ".parquet")


def _map_stat(args: argparse.Namespace, stats: list[str]) -> str | None:
    """The statistic to map (None without --map), checked before computing."""
    if args.map is None:
        if args.map_stat is not None:
            raise OutputError("--map-stat needs --map FILE.png")
        return None
    from .plot import check_map_path

    check_map_path(args.map, overwrite=args.overwrite)
    stat = args.map_stat or ("mean" if "mean" in stats else stats[0])
    if stat not in stats:
        raise OutputError(
            f"--map-stat {stat!r} is not among the statistics computed "
            f"({','.join(stats)})"
        )
    return str(stat)


def _table(
    result: pd.DataFrame, columns: list[str], id_field: str | None
) -> pd.DataFrame:
    """The statistics alone, indexed as ``zonal_stats`` indexes its table."""
    import pandas as pd

    if columns == list(result.columns):
        return result
    table = pd.DataFrame(result[columns])
    if id_field is not None:
        table.index = pd.Index(result[id_field], name=id_field)
    return table


def _summary(
    args: argparse.Namespace,
    lazy: Any,
    table: pd.DataFrame,
    stats: list[str],
    stopwatch: Any,
) -> None:
    from .raster import open_raster
    from .summary import peak_memory, pixels_read, report, zones_without_data

    raster = open_raster(args.raster, band=args.band, chunks=args.chunks)
    assert raster.chunks is not None  # open_raster always chunks
    text = report(
        zones=table.index.get_level_values(0).nunique(),
        pixels=pixels_read(lazy, raster.chunks),
        empty=zones_without_data(table, [s for s in stats if s in table.columns]),
        stopwatch=stopwatch,
        memory=peak_memory(),
        verbose=args.verbose,
    )
    print(text, file=sys.stderr)


def _demo(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="zonal-dask demo",
        description="Write a small deterministic sample (a 2048 x 2048 raster with "
        "nodata, 300 adjacent polygons with holes and MultiPolygons) into DIR, "
        "summarise it into DIR/stats.txt and print the first rows.",
    )
    parser.add_argument("dir", nargs="?", default="zonal-dask-demo")
    args = parser.parse_args(argv)

    from .api import zonal_stats
    from .demo import make_sample
    from .output import write_table

    zones, raster = make_sample(args.dir)
    start = time.perf_counter()
    table = zonal_stats(zones, raster)
    elapsed = time.perf_counter() - start
    output = Path(args.dir) / "stats.txt"
    write_table(_layout(table, output, None), output, overwrite=True)
    print(table.head(10).to_string())
    print(
        f"\n{len(table)} zones of {zones} over {raster} in {elapsed:.2f} s; "
        f"table written to {output}"
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    console()
