"""The command line's options: a flag for each ``zonal_stats`` parameter.

``FLAGS`` maps each parameter the command line can give to its flag, passed
through by name; ``API_ONLY`` names the few only Python can give, with the
reason. Both derive from the one parameter table (``parameters.py``). Help
is wrapped at word boundaries; a bad flag is one line.
"""

from __future__ import annotations

import argparse
import os
import textwrap
from typing import Any, NamedTuple, NoReturn

from .._version import __version__
from ..parameters import PARAMETERS, Parameter

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


def _flag(parameter: Parameter) -> Flag:
    assert parameter.flag is not None
    options = {
        "default": parameter.default,
        **parameter.cli,
        "help": parameter.help.format(default=parameter.default),
    }
    return Flag(parameter.name, parameter.flag, options)


# derived from the one parameter table (``parameters.py``)
FLAGS: tuple[Flag, ...] = tuple(_flag(p) for p in PARAMETERS if p.flag is not None)
# parameters only Python can give, and why
API_ONLY = {p.name: p.python_only for p in PARAMETERS if p.flag is None}


def _times(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _series_arguments(parser: argparse.ArgumentParser) -> None:
    """The time series options (``cli/series.py``), in a group of their own."""
    group = parser.add_argument_group(
        "time series (several RASTERs, a glob, a STAC catalog, a .zarr or .nc cube)"
    )
    group.add_argument(
        "--time-pattern",
        metavar="PATTERN",
        help="strftime codes finding each file's time in its name, e.g. %%Y-%%m-%%d "
        "(%%m, %%d read month1 as month01); default: the files' order, a glob's "
        "natural order (month2 before month10)",
    )
    group.add_argument(
        "--times",
        metavar="LIST",
        type=_times,
        help="comma-separated times of the files, one each in the order given, "
        "e.g. 2024-01,2024-02",
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


def refused_together(args: argparse.Namespace, features: bool) -> str | None:
    """The first of the command's outputs and flags that cannot go together,
    in one line naming those given (None when all go together); checked
    before anything is read or computed. ``features``: OUTPUT gets the
    polygons (a .gpkg, .geojson or .fgb OUTPUT, or --geometry)."""
    output = f"a {os.path.splitext(args.output)[1]} OUTPUT"
    if args.geometry:
        output = "--geometry"
    pixels = args.pixels is not None
    if pixels and _same_path(args.pixels, args.output):
        return f"--pixels {args.pixels} and OUTPUT {args.output} are the same path"
    if pixels and args.map is not None and _same_path(args.pixels, args.map):
        return f"--pixels {args.pixels} and --map {args.map} are the same path"
    pairs = (
        (
            args.band is None and pixels,
            "--band all",
            "--pixels",
            "the pixel listing holds one band",
        ),
        (
            args.band is None and features,
            "--band all",
            output,
            "a row per zone and band is a table, not features",
        ),
        (
            args.band is None and args.map is not None,
            "--band all",
            "--map",
            "a map shows one band",
        ),
        (
            args.group_by is not None and features,
            "--group-by",
            output,
            "a group of features has no single polygon; write a table",
        ),
        (
            args.group_by is not None and args.map is not None,
            "--group-by",
            "--map",
            "a group of features has no single polygon to draw",
        ),
    )
    for refused, first, second, why in pairs:
        if refused:
            return f"{first} cannot go with {second}: {why}"
    return None


def _same_path(a: str, b: str) -> bool:
    return os.path.abspath(a) == os.path.abspath(b)


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
        "--class-names",
        action="store_true",
        help="name the class columns and the majority/minority values by the "
        "raster's attribute table (.vat.dbf) or GDAL category names",
    )
    out.add_argument(
        "--strict",
        action="store_true",
        help="fail (exit 1) where a warning is due: no zone meets the raster",
    )
    out.add_argument(
        "--pixels",
        metavar="OUT.parquet",
        help="also write every (zone, pixel) with its value, coverage, weight, "
        "cell id and centre, as a partitioned Parquet directory",
    )
    out.add_argument(
        "--map",
        metavar="FILE.png|FILE.html",
        help="also draw a map of one statistic; .html: an interactive map, every "
        "statistic in each zone's tooltip",
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
