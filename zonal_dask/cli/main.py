"""The ``zonal-dask`` command.

Every option of ``zonal_stats`` that a command line can give has one flag
(``options.FLAGS``), passed through by name. What a user sees on a terminal:
one progress bar, one summary line, and one line per warning or error, in
words.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import NoOverlapWarning, OptionError, OutputError, ZonalError
from ..run.faults import Stage
from ..run.process_state import (
    arrow_on_system_heap,
    command_scope,
    large_blocks_mapped,
    options_given,
)
from ..statistics.table import DEFAULT_STATS
from .options import (
    HelpFormatter,
    Parser,
    build_parser,
    refused_together,
    scheduler_for,
    zonal_options,
)
from .series import is_series

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["build_parser", "console", "main"]

CLASSIC_COLUMNS = ["min", "mean", "max", "std", "sum"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (0 on success)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    stage = Stage()
    try:
        with _warnings_in_words():
            if argv[:1] == ["demo"]:
                return _demo(argv[1:])
            args = build_parser().parse_args(argv)
            with warnings.catch_warnings(), _zones_read_ahead(args):
                warnings.simplefilter(
                    "error" if args.strict else "always", NoOverlapWarning
                )
                return _run(args, stage)
    except SystemExit as done:  # argparse: --help, --version, a bad flag
        return done.code if isinstance(done.code, int) else 2
    except ZonalError as err:
        print(f"zonal-dask: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:
        print(f"zonal-dask: {stage.interrupted(err)}", file=sys.stderr)
        return 130


def console() -> None:
    """The ``zonal-dask`` console script: ``main``, then a prompt exit.

    Tearing down the interpreter's modules (dask, numba, xarray, GDAL) took
    0.3-0.7 s after a run on the benchmark machine. By now the output is
    renamed into place and any cluster is closed, so the process exits
    without that teardown once its streams are flushed.

    The process is the command's own: glibc maps large blocks apart from
    its heaps for all of it (``process_state.large_blocks_mapped``).
    """
    large_blocks_mapped()
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@contextmanager
def _warnings_in_words() -> Iterator[None]:
    """Each warning as one line of words (``faults.show_warning``)."""
    from ..run.faults import show_warning

    previous = warnings.showwarning
    warnings.showwarning = show_warning
    try:
        yield
    finally:
        warnings.showwarning = previous


@contextmanager
def _zones_read_ahead(args: argparse.Namespace) -> Iterator[None]:
    """The zones read on a thread while the engine is imported (a single
    raster's run: ``zones.read_ahead``), Arrow allocating from the C heap
    from the start (``command_scope``)."""
    if is_series(args):
        yield
        return
    from ..zones.read_ahead import reading_ahead

    with arrow_on_system_heap(), reading_ahead(args.zones, args.layer):
        yield


@command_scope()
def _run(args: argparse.Namespace, stage: Stage) -> int:
    stage.doing = "checking the options"
    import xarray as xr

    from ..api import request_for, zonal_pixels, zonal_stats
    from ..io.features import STAT_COLUMNS
    from ..io.writers import check_output, write_features, write_pixels, write_table
    from ..run.checkpoint import remove_checkpoint, saved_blocks
    from ..run.faults import failures_reported
    from ..run.progress import Bar
    from ..run.scheduler import compute
    from ..run_request import worker_reach
    from .summary import Stopwatch

    if is_series(args):
        from .series import run

        stage.doing = "computing the series"
        return run(args)
    (args.raster,) = args.raster
    stopwatch = Stopwatch()
    options = zonal_options(args)
    options["stats"] = options["stats"] or list(DEFAULT_STATS)
    output = stage.output = Path(args.output)
    features = _writes_features(output, args.geometry)
    refusal = refused_together(args, features)
    if refusal is not None:
        raise OptionError(refusal)
    options["geometry"] = features or args.map is not None
    request = request_for(args.zones, **options)  # refuses bad options, reads nothing
    names = [c.name for c in request.columns]
    check_output(output, overwrite=args.overwrite)
    if args.pixels is not None:
        check_output(args.pixels, overwrite=args.overwrite)
    map_stat = _map_stat(args, names)
    class_names = _class_names(args)
    if features:
        _check_zones_crs(output, args.zones, args.layer)
    prefix = args.prefix or ""
    echo = None if args.quiet else _echo_dashboard
    with (
        failures_reported(output, args.checkpoint),
        options_given(request.gdal_options),  # computing below and the pixels too
        scheduler_for(args, echo) as client,
    ):
        stage.doing = "reading the zones and planning"
        lazy = zonal_stats(args.zones, args.raster, compute=False, **options)
        # the chunks the checkpoint holds intact (opening it removed the others)
        loaded = saved_blocks(args.checkpoint) if args.checkpoint else frozenset()
        stopwatch.lap("planning")
        report = Bar() if sys.stderr.isatty() and not args.quiet else None
        stage.doing = "computing"
        reach = worker_reach(args.zones, args.raster, args.weights, args.checkpoint)
        result = compute(lazy, client=client, report=report, reach=reach)
        stopwatch.lap("compute")
        if args.pixels is not None:
            stage.doing = f"writing the pixels to {args.pixels}"
            pixels = zonal_pixels(args.zones, args.raster, **_pixel_options(options))
            write_pixels(pixels, args.pixels, overwrite=args.overwrite, client=client)
            stage.published.append(args.pixels)  # a path or a URL
            stopwatch.lap("pixels")
    stage.doing = f"writing {output}"
    if isinstance(result, xr.Dataset):  # --band all: the long table
        long = result.to_dataframe().rename_axis(index={"zone": result.zone.long_name})
        carried = list(args.include_cols or ())  # coordinates: first, as in a table
        result = long[[*carried, *(c for c in long.columns if c not in carried)]]
    if class_names:
        from ..io.class_names import name_classes

        result = name_classes(result, class_names, prefix)
    columns = result.attrs.get(STAT_COLUMNS, list(result.columns))
    if features:
        write_features(result, output, overwrite=args.overwrite)
    else:
        table = _table(result, columns, args.zone_id, args.include_cols)
        layout = _layout(table, output, args.stats, prefix)
        write_table(layout, output, overwrite=args.overwrite)
    stage.published.append(output)
    stopwatch.lap("write")
    if map_stat is not None:
        stage.doing = f"drawing the map {args.map}"
        _draw_map(args, result, prefix + map_stat, columns)
        stopwatch.lap("map")
    stage.doing = None  # all written: an interruption now loses nothing
    if args.checkpoint:
        remove_checkpoint(args.checkpoint)
    if not args.quiet:
        stats = [c for c in columns if c not in (args.include_cols or ())]
        shown = [str(c).removeprefix(prefix) for c in stats]
        table = result[stats].set_axis(shown, axis=1)
        _summary(args, lazy, table, names, stopwatch, loaded)
    return 0


def _draw_map(
    args: argparse.Namespace, features: Any, column: str, columns: list[Any]
) -> None:
    """--map: a picture of ``column``, or an HTML page (every statistic in
    each zone's tooltip)."""
    from ..io.maps import HTML_SUFFIXES, choropleth, interactive_map

    common = {"raster": args.raster, "band": args.band, "overwrite": args.overwrite}
    if Path(args.map).suffix.lower() in HTML_SUFFIXES:
        ids = [c for c in [args.zone_id or features.index.name] if c is not None]
        carried = [
            str(c) for c in [*ids, *(args.include_cols or ())] if c not in columns
        ]
        tooltip = [*dict.fromkeys(carried), *(str(c) for c in columns)]
        interactive_map(features, column, tooltip=tooltip, path=args.map, **common)
    else:
        choropleth(features, column, path=args.map, **common)


def _echo_dashboard(link: str) -> None:
    print(f"zonal-dask: dashboard at {link}", file=sys.stderr)


def _pixel_options(options: dict[str, Any]) -> dict[str, Any]:
    """The options of ``zonal_stats`` that ``zonal_pixels`` takes too."""
    import inspect

    from ..api import zonal_pixels

    taken = inspect.signature(zonal_pixels).parameters
    return {k: v for k, v in options.items() if k in taken}


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
    from ..io.writers import FEATURE_FORMATS, TABLE_FORMATS

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


def _check_zones_crs(output: Path, zones: str, layer: str | int | None) -> None:
    """Refuse, before any work, features OUTPUT cannot hold in the zones' CRS
    (read from the zones file's header; other zones are checked as written)."""
    from ..io.writers import check_feature_crs

    if output.suffix.lower() != ".geojson" or not os.path.isfile(zones):
        return
    import pyogrio

    try:
        crs = pyogrio.read_info(zones, layer=layer)["crs"]
    except Exception:  # reading the zones will say what is wrong
        return
    check_feature_crs(output, crs)


def _map_stat(args: argparse.Namespace, stats: list[str]) -> str | None:
    """The statistic to map (None without --map), checked before computing."""
    if args.map is None:
        if args.map_stat is not None:
            raise OutputError("--map-stat needs --map FILE.png")
        return None
    from ..io.maps import check_map_path

    check_map_path(args.map, overwrite=args.overwrite)
    stat = args.map_stat or ("mean" if "mean" in stats else stats[0])
    if stat not in stats:
        raise OutputError(
            f"--map-stat {stat!r} is not among the statistics computed "
            f"({','.join(stats)})"
        )
    return str(stat)


def _class_names(args: argparse.Namespace) -> dict[Any, str]:
    """The raster's class names with --class-names (else none), read before
    computing: a raster without any is refused."""
    if not args.class_names:
        return {}
    from ..errors import RasterError
    from ..io.class_names import read_class_names

    names = read_class_names(args.raster, args.band or 1)
    if not names:
        raise RasterError(
            f"{args.raster}: --class-names: no class names found (no .vat.dbf "
            f"attribute table, no GDAL category names in its .aux.xml)"
        )
    return names


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
    from ..io.raster import open_raster
    from ..reduce.graph import chunk_keys
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
    parser = Parser(
        prog="zonal-dask demo",
        description="Write a small deterministic sample (a 2048 x 2048 raster with "
        "nodata, 300 adjacent polygons with holes and MultiPolygons) into DIR, "
        "summarise it into DIR/stats.txt and print the first rows.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("dir", nargs="?", default="zonal-dask-demo")
    args = parser.parse_args(argv)

    from ..api import zonal_stats
    from ..io.writers import write_table
    from .demo import make_sample

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
