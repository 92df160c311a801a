"""The ``zonal-dask`` command.

Every option of ``zonal_stats`` that a command line can give has one flag in
``FLAGS``, passed through by name; the few that only Python can give are in
``API_ONLY``, with the reason (``tests/test_cli.py`` checks that the two cover
the function's parameters). What a user sees on a terminal: one progress bar,
one summary line, and one line per warning or error, in words.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

from ._version import __version__
from .errors import OutputError, ZonalError
from .runtime import run_scope
from .stats import ALIASES, DEFAULT_STATS, PATTERNS, STATISTICS

if TYPE_CHECKING:
    import pandas as pd

CLASSIC_COLUMNS = ["min", "mean", "max", "std", "sum"]

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
        "weights",
        "--weights",
        {
            "choices": ["coverage"],
            "help": "weight each pixel by the fraction of it the polygon covers",
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
    Flag("nodata", "--nodata", {"type": float, "help": "nodata value to use instead"}),
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


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Help wrapped at word boundaries only: no name is ever cut in two."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(
            " ".join(text.split()),
            width,
            break_long_words=False,
            break_on_hyphens=False,
        )


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="zonal-dask",
        usage=USAGE,
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=_Formatter,
    )
    parser.add_argument(
        "zones",
        metavar="ZONES",
        help="polygons (Shapefile, GeoPackage, GeoJSON, ...) or a label raster (.tif)",
    )
    parser.add_argument(
        "raster", metavar="RASTER", help="raster path or GDAL-readable URL"
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
        "--map", metavar="FILE.png", help="also draw a map of one statistic"
    )
    out.add_argument(
        "--map-stat",
        metavar="NAME",
        help="statistic to map (default: mean if computed, else the first)",
    )
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (0 on success)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        with _warnings_in_words():
            if argv[:1] == ["demo"]:
                return _demo(argv[1:])
            return _run(build_parser().parse_args(argv))
    except SystemExit as done:  # argparse: --help, --version, a bad flag
        return done.code if isinstance(done.code, int) else 2
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


@contextmanager
def _warnings_in_words() -> Iterator[None]:
    """Each warning as one line of words (``faults.show_warning``)."""
    from .faults import show_warning

    previous = warnings.showwarning
    warnings.showwarning = show_warning
    try:
        yield
    finally:
        warnings.showwarning = previous


@run_scope()
def _run(args: argparse.Namespace) -> int:
    import xarray as xr

    from .api import request_for, zonal_stats
    from .checkpoint import remove_checkpoint, saved_blocks
    from .cluster import compute, scheduler
    from .faults import failures_reported
    from .features import STAT_COLUMNS
    from .output import check_output, write_features, write_table
    from .progress import Bar
    from .summary import Stopwatch

    stopwatch = Stopwatch()
    options = {flag.param: getattr(args, flag.param) for flag in FLAGS}
    options["stats"] = options["stats"] or list(DEFAULT_STATS)
    output = Path(args.output)
    features = _writes_features(output, args.geometry)
    options["geometry"] = features or args.map is not None
    request = request_for(args.zones, **options)  # refuses bad options, reads nothing
    names = [c.name for c in request.columns]
    check_output(output, overwrite=args.overwrite)
    map_stat = _map_stat(args, names)
    if args.band is None and (features or map_stat is not None):
        raise OutputError(
            "--band all writes a table (a row per zone and band), not features or a map"
        )
    prefix = args.prefix or ""
    loaded = saved_blocks(args.checkpoint) if args.checkpoint else frozenset()
    echo = None if args.quiet else _echo_dashboard
    with (
        failures_reported(output, args.checkpoint),
        scheduler(
            args.scheduler,
            args.workers,
            cluster=args.cluster,
            threads_per_worker=args.threads_per_worker,
            memory_limit=args.memory_limit,
            echo=echo,
        ) as client,
    ):
        lazy = zonal_stats(args.zones, args.raster, compute=False, **options)
        stopwatch.lap("planning")
        report = Bar() if sys.stderr.isatty() and not args.quiet else None
        result = compute(lazy, client=client, report=report)
        stopwatch.lap("compute")
    if isinstance(result, xr.Dataset):  # --band all: the long table
        result = result.to_dataframe().rename_axis(
            index={"zone": result.zone.long_name}
        )
    columns = result.attrs.get(STAT_COLUMNS, list(result.columns))
    if features:
        write_features(result, output, overwrite=args.overwrite)
    else:
        table = _table(result, columns, args.zone_id, args.include_cols)
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
    if args.checkpoint:
        remove_checkpoint(args.checkpoint)
    if not args.quiet:
        stats = [c for c in columns if c not in (args.include_cols or ())]
        shown = [str(c).removeprefix(prefix) for c in stats]
        table = result[stats].set_axis(shown, axis=1)
        _summary(args, lazy, table, names, stopwatch, loaded)
    return 0


def _echo_dashboard(link: str) -> None:
    print(f"zonal-dask: dashboard at {link}", file=sys.stderr)


def _layout(
    table: pd.DataFrame, output: Path, stats: Any, prefix: str = ""
) -> pd.DataFrame:
    """A tab-separated table of the default statistics: the classic recipe's
    columns first (``min mean max std sum fid``), then ``count`` and the rest."""
    if stats is None and output.suffix.lower() in (".txt", ".tsv"):
        classic = [prefix + c for c in CLASSIC_COLUMNS]
        rest = [c for c in table.columns if c not in classic]
        flat = table.reset_index()  # an unnamed RangeIndex is not written
        return flat[[*classic, *table.index.names, *rest]]
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
    result: pd.DataFrame,
    columns: list[Any],
    id_field: str | None,
    include: Sequence[str] | None,
) -> pd.DataFrame:
    """The carried fields and the statistics, indexed as ``zonal_stats``
    indexes its table (``result`` may be the features, for a map)."""
    import pandas as pd

    wanted = [*(c for c in include or () if c not in columns), *columns]
    if wanted == list(result.columns):
        return result
    table = pd.DataFrame(result[wanted])
    if id_field is not None:
        table.index = pd.Index(result[id_field], name=id_field)
    return table


def _summary(
    args: argparse.Namespace,
    lazy: Any,
    table: pd.DataFrame,
    stats: list[str],
    stopwatch: Any,
    loaded: frozenset[tuple[int, ...]],
) -> None:
    from .graph import chunk_keys
    from .raster import open_raster
    from .summary import peak_memory, pixels_read, report, zones_without_data

    raster = open_raster(args.raster, band=args.band, chunks=args.chunks)
    assert raster.chunks is not None  # open_raster always chunks
    blocks = {key[1:] for key in chunk_keys(lazy)}
    text = report(
        zones=table.index.get_level_values(0).nunique(),
        pixels=pixels_read(lazy, raster.chunks, skip=loaded),
        empty=zones_without_data(table, [s for s in stats if s in table.columns]),
        stopwatch=stopwatch,
        memory=peak_memory(),
        verbose=args.verbose,
        resumed=(len(loaded & blocks), len(blocks)) if loaded else None,
    )
    print(text, file=sys.stderr)


def _demo(argv: Sequence[str]) -> int:
    parser = _Parser(
        prog="zonal-dask demo",
        description="Write a small deterministic sample (a 2048 x 2048 raster with "
        "nodata, 300 adjacent polygons with holes and MultiPolygons) into DIR, "
        "summarise it into DIR/stats.txt and print the first rows.",
        formatter_class=_Formatter,
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
