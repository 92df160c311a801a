"""The command line's options: a flag for each ``zonal_stats`` parameter.

``FLAGS`` maps each parameter the command line can give to its flag, passed
through by name; ``API_ONLY`` names the few only Python can give, with the
reason (``tests/test_cli_surface.py`` checks that the two cover the function's
parameters). Help is wrapped at word boundaries; a bad flag is one line.
"""

from __future__ import annotations

import argparse
import textwrap
from typing import Any, NamedTuple, NoReturn

from .._version import __version__
from ..statistics.table import (
    ALIASES,
    COVERAGE_KINDS,
    DEFAULT_STATS,
    PATTERNS,
    STATISTICS,
)

USAGE = """zonal-dask ZONES RASTER OUTPUT [options]
       zonal-dask demo [DIR]"""

DESCRIPTION = """\
Per-polygon statistics of a raster, on all local cores or a Dask cluster.
A pixel belongs to a polygon when its centre is inside (or, with
--all-touched, when the polygon touches it); nodata and NaN pixels are left
out. 'zonal-dask demo' writes a small sample and summarises it."""

EXAMPLES = """\
examples:
  zonal-dask borders.shp pop.tif stats.txt
      the classic table: tab-separated min mean max std sum fid, then count
  zonal-dask borders.gpkg pop.tif stats.csv --stats count,mean,max --id-field code
  zonal-dask borders.gpkg pop.tif stats.csv --include-cols name,code
      the zones' name and code columns before the statistics
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


class Flag(NamedTuple):
    """A ``zonal_stats`` parameter's flag and its ``add_argument`` options."""

    param: str
    flag: str
    options: dict[str, Any]


def _band(text: str) -> int | None:
    if text == "all":
        return None
    try:
        return int(text)
    except ValueError:
        message = f"expected a number or 'all', got {text!r}"
        raise argparse.ArgumentTypeError(message) from None


def _number(text: str) -> float:
    """A nodata value: an integer exactly (beyond 2**53 too), else a float."""
    try:
        return int(text)
    except ValueError:
        return float(text)


def _names(text: str) -> list[str]:
    return text.replace(",", " ").split()


FLAGS: tuple[Flag, ...] = (
    Flag(
        "stats",
        "--stats",
        {
            "metavar": "LIST",
            "help": f"comma-separated statistics, in column order (default: "
            f"{','.join(DEFAULT_STATS)}); any of: {', '.join([*STATISTICS, *ALIASES])};"
            f" {PATTERNS}",
        },
    ),
    Flag(
        "band",
        "--band",
        {
            "type": _band,
            "default": 1,
            "help": "1-based band (default 1), or 'all': one row per zone and band",
        },
    ),
    Flag(
        "all_touched",
        "--all-touched",
        {
            "action": "store_true",
            "help": "count every pixel a polygon touches, not only centres inside",
        },
    ),
    Flag(
        "categorical",
        "--categorical",
        {
            "action": "store_true",
            "help": "add one column per raster value with the zone's pixel count",
        },
    ),
    Flag(
        "coverage",
        "--coverage",
        {
            "nargs": "?",
            "const": "fraction",
            "choices": COVERAGE_KINDS,
            "metavar": "KIND",
            "help": "weight each pixel a polygon touches as exactextract does: by "
            "the fraction it covers (KIND fraction, the default), 1 (none), or the "
            "covered area (area_cartesian, area_spherical_m2, area_spherical_km2)",
        },
    ),
    Flag(
        "weights",
        "--weights",
        {
            "metavar": "RASTER",
            "help": "a weights raster for the weighted_* statistics (same or "
            "compatible grid); 'coverage' means --coverage fraction",
        },
    ),
    Flag(
        "default_value",
        "--default-value",
        {"type": float, "help": "value of nodata pixels, which then count"},
    ),
    Flag(
        "default_weight",
        "--default-weight",
        {
            "type": float,
            "help": "weight of pixels whose weight is nodata or missing "
            "(else the weighted statistics are NaN)",
        },
    ),
    Flag(
        "min_coverage_frac",
        "--min-coverage-frac",
        {
            "type": float,
            "metavar": "F",
            "help": "with --coverage: pixels covered less than F (0..1) do not count",
        },
    ),
    Flag(
        "grid_compat_tol",
        "--grid-compat-tol",
        {
            "type": float,
            "metavar": "T",
            "help": "with --weights: how far (a share of a cell) the grids may be "
            "from aligned (default 0.001)",
        },
    ),
    Flag(
        "group_by",
        "--group-by",
        {
            "metavar": "FIELD",
            "help": "features sharing the field's value form one zone (a row per "
            "value)",
        },
    ),
    Flag(
        "small",
        "--small",
        {
            "choices": ["nan", "touched"],
            "default": "nan",
            "help": "polygons holding no pixel centre: NaN (default) or the pixels "
            "they touch, flagged in a 'small' column",
        },
    ),
    Flag(
        "nodata", "--nodata", {"type": _number, "help": "nodata value to use instead"}
    ),
    Flag(
        "raw",
        "--raw",
        {
            "action": "store_true",
            "help": "summarise stored values, not applying the raster's declared "
            "scale and offset",
        },
    ),
    Flag(
        "zone_id",
        "--id-field",
        {"metavar": "FIELD", "help": "field naming the rows (default: the FID)"},
    ),
    Flag(
        "include_cols",
        "--include-cols",
        {
            "metavar": "FIELDS",
            "type": _names,
            "help": "comma-separated fields of the zones to write before the "
            "statistics",
        },
    ),
    Flag("layer", "--layer", {"help": "layer of a vector file that has several"}),
    Flag(
        "assume_same_crs",
        "--assume-same-crs",
        {
            "action": "store_true",
            "help": "accept zones or a raster without a CRS as sharing coordinates",
        },
    ),
    Flag(
        "zones_crs",
        "--zones-crs",
        {
            "metavar": "CRS",
            "help": "the zones' true CRS (EPSG:32618, WKT, ...), replacing a wrong "
            ".prj",
        },
    ),
    Flag("chunks", "--chunks", {"type": int, "help": "chunk size in pixels"}),
    Flag(
        "split_every",
        "--split-every",
        {
            "type": int,
            "default": 8,
            "metavar": "N",
            "help": "partial results each merge task combines (default 8)",
        },
    ),
    Flag(
        "checkpoint",
        "--checkpoint",
        {
            "metavar": "DIR",
            "help": "save each chunk's results in DIR; a rerun computes only the "
            "rest; removed once OUTPUT is written",
        },
    ),
    Flag(
        "geometry",
        "--geometry",
        {
            "action": "store_true",
            "help": "with a .parquet OUTPUT: write GeoParquet, the polygons with "
            "their attributes and the statistics",
        },
    ),
    Flag(
        "prefix",
        "--prefix",
        {"help": "text before each statistic's column name, e.g. slope_"},
    ),
)
# parameters only Python can give, and why
API_ONLY = {
    "compute": "the command always computes and writes OUTPUT",
    "affine": "a NumPy array exists only in Python",
    "progress": "a bar is drawn on a terminal unless -q",
}


def _series_arguments(parser: argparse.ArgumentParser) -> None:
    """The time series options (``cli/series.py``), in a group of their own."""
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


def scheduler_for(args: argparse.Namespace, echo: Any = None) -> Any:
    """The scheduler the command's flags ask for, as a context manager."""
    from ..run.scheduler import scheduler

    return scheduler(
        args.scheduler,
        args.workers,
        cluster=args.cluster,
        threads_per_worker=args.threads_per_worker,
        memory_limit=args.memory_limit,
        echo=echo,
    )


def zonal_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``zonal_stats`` options the command line sets, by parameter name."""
    return {flag.param: getattr(args, flag.param) for flag in FLAGS}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help wrapped at word boundaries only: no name is ever cut in two."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(
            " ".join(text.split()),
            width,
            break_long_words=False,
            break_on_hyphens=False,
        )


class Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="zonal-dask",
        usage=USAGE,
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "zones",
        metavar="ZONES",
        help="polygons (Shapefile, GeoPackage, GeoJSON, ...) or a label raster (.tif)",
    )
    parser.add_argument(
        "raster",
        metavar="RASTER",
        nargs="+",
        help="raster path or GDAL-readable URL; several, a glob, a STAC catalog "
        "(.json) or a .zarr/.nc cube for a time series",
    )
    parser.add_argument(
        "output",
        metavar="OUTPUT",
        help="table to write: .txt/.tsv (tab-separated), .csv or .parquet; or the "
        "polygons with their attributes and the statistics: .gpkg, .geojson, .fgb",
    )
    for flag in FLAGS:
        parser.add_argument(flag.flag, dest=flag.param, **flag.options)
    run = parser.add_argument_group("where it computes")
    run.add_argument(
        "--workers",
        type=int,
        help="local threads, or worker processes with --cluster (default: all cores)",
    )
    run.add_argument(
        "--cluster",
        action="store_true",
        help="start a local dask.distributed cluster (prints its dashboard link)",
    )
    run.add_argument(
        "--threads-per-worker", type=int, help="threads of each --cluster worker"
    )
    run.add_argument("--memory-limit", help="memory of each --cluster worker, e.g. 4GB")
    run.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="dask scheduler address (default: $DASK_SCHEDULER_ADDRESS)",
    )
    out = parser.add_argument_group("output")
    out.add_argument("--overwrite", action="store_true", help="replace OUTPUT")
    out.add_argument(
        "--pixels",
        metavar="OUT.parquet",
        help="also write every (zone, pixel) with its value, coverage, weight, "
        "cell id and centre, as a partitioned Parquet directory",
    )
    out.add_argument(
        "--map", metavar="FILE.png", help="also draw a map of one statistic"
    )
    out.add_argument(
        "--map-stat",
        metavar="NAME",
        help="statistic to map (default: mean if computed, else the first)",
    )
    _series_arguments(parser)
    verbosity = out.add_mutually_exclusive_group()
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
