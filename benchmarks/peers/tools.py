"""One tool's zonal statistics on the peer-benchmark data, as one process.

    python benchmarks/peers/tools.py TOOL ZONES RASTER OUT

``run.py`` times this whole process: interpreter start, imports, reading the
zones, the statistics and writing OUT; every tool's process then ends without
the interpreter's teardown. Every tool writes OUT as parquet with one
row per input feature, in input order, and the columns ``zone`` (the zones'
``zone`` field), ``count``, ``mean``, ``sum``, ``min``, ``max``, ``std``. A
zone with no valid pixel has count 0; what the other columns say then is the
tool's own convention. The two floors write nothing.

Each tool imports its libraries inside its function, so that a process pays
only for the imports of the tool it runs.
"""

from __future__ import annotations

import math
import os
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

STATS = ["count", "mean", "sum", "min", "max", "std"]
THREADS = 2  # the floors' and the Pool loop's parallelism: this machine's cores
POOL_TASK = 500  # polygons per Pool task


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 4 or args[0] not in TOOLS:
        sys.exit(f"usage: tools.py {{{','.join(TOOLS)}}} ZONES RASTER OUT")
    name, zones, raster, out = args
    TOOLS[name](zones, raster, Path(out))
    # Every tool's process ends here, its output written: none pays for the
    # interpreter's teardown (collecting what the imports made), which is the
    # same whatever the tool computed and which zonal-dask's CLI skips too.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def zonal_dask_api(
    zones: str, raster: str, out: Path, threads: int | None = None
) -> None:
    """zonal_dask's Python API, default pixel-centre rule; on ``threads``
    threads (default: one per core)."""
    import dask

    import zonal_dask

    with dask.config.set(num_workers=threads):
        frame = zonal_dask.zonal_stats(zones, raster, STATS, zone_id="zone")
    write(out, frame.reset_index())


def zonal_dask_coverage(zones: str, raster: str, out: Path) -> None:
    """zonal_dask weighted by coverage fraction: exactextract's reference."""
    import zonal_dask

    frame = zonal_dask.zonal_stats(
        zones, raster, STATS, zone_id="zone", coverage="fraction"
    )
    write(out, frame.reset_index())


def weights_of(raster: str, suffix: str = "") -> str:
    """The weights raster ``make_data.py --weights`` writes beside ``raster``."""
    path = Path(raster)
    return str(path.with_name(path.stem.replace("raster", "weights") + suffix + ".tif"))


def zonal_dask_weighted(
    zones: str, raster: str, out: Path, coverage: str | None, suffix: str = ""
) -> None:
    """zonal_dask's mean weighted by a weights raster (``weighted_mean``),
    written as ``mean``; with ``suffix="_x4"`` the raster four times coarser."""
    import zonal_dask

    frame = zonal_dask.zonal_stats(
        zones,
        raster,
        {"mean": "weighted_mean"},
        zone_id="zone",
        coverage=coverage,
        weights=weights_of(raster, suffix),
    )
    write(out, frame.reset_index())


def zonal_dask_mean(zones: str, raster: str, out: Path, coverage: str | None) -> None:
    """zonal_dask's mean alone: what ``zonal_dask_weighted`` is compared with."""
    import zonal_dask

    frame = zonal_dask.zonal_stats(
        zones, raster, ["mean"], zone_id="zone", coverage=coverage
    )
    write(out, frame.reset_index())


def exactextract_weighted(zones: str, raster: str, out: Path) -> None:
    """exactextract's ``weighted_mean`` with the same weights raster."""
    import geopandas as gpd
    from exactextract import exact_extract

    frame = gpd.read_file(zones, engine="pyogrio")
    result = exact_extract(
        raster,
        frame,
        ["mean=weighted_mean"],
        weights=weights_of(raster),
        output="pandas",
        include_cols=["zone"],
        strategy="raster-sequential",
    )
    write(out, result)


def rasterstats_tool(zones: str, raster: str, out: Path, boundless: bool) -> None:
    """rasterstats' ``zonal_stats``: one window read and rasterize per polygon.

    ``boundless=True`` is its default; ``False`` is its option for zones that
    lie inside the raster, which the benchmark's do.
    """
    from rasterstats import zonal_stats

    features = zonal_stats(
        zones, raster, stats=STATS, geojson_out=True, boundless=boundless
    )
    write(out, pd.DataFrame([feature["properties"] for feature in features]))


def exactextract_tool(zones: str, raster: str, out: Path, strategy: str) -> None:
    """exactextract; pixels weighted by the fraction the polygon covers."""
    import geopandas as gpd
    from exactextract import exact_extract

    # Neither GDAL's Python bindings nor fiona are installed: exactextract
    # reads the zones through geopandas.
    frame = gpd.read_file(zones, engine="pyogrio")
    ops = ["count", "mean", "sum", "min", "max", "stdev"]
    result = exact_extract(
        raster, frame, ops, output="pandas", include_cols=["zone"], strategy=strategy
    )
    write(out, result.rename(columns={"stdev": "std"}))


def bands_mean(zones: str, raster: str, out: Path, tool: str) -> None:
    """The mean of every band of a multi-band raster per zone (make_multiband.py).

    ``tool`` is ``"zonal_dask"`` (``band=None``, pixel-centre rule, what
    ``--band all --stats mean`` computes) or ``"exactextract"`` (its default
    strategy, coverage-weighted, as exactextractr in kadyb/raster-benchmark).
    """
    if tool == "zonal_dask":
        import zonal_dask

        cube = zonal_dask.zonal_stats(zones, raster, ["mean"], band=None)
        cube.to_dataframe().reset_index().to_parquet(out, index=False)
        return
    import geopandas as gpd
    from exactextract import exact_extract

    frame = gpd.read_file(zones, engine="pyogrio")
    exact_extract(raster, frame, "mean", output="pandas").to_parquet(out, index=False)


def xrspatial_tool(zones: str, raster: str, out: Path) -> None:
    """xarray-spatial's ``zonal_stats`` on dask arrays, labels from one rasterize."""
    import dask.array as da
    import xarray as xr
    import xrspatial

    frame, labels, values, nodata = label_inputs(zones, raster)
    label_array = xr.DataArray(
        da.from_array(labels, chunks=values.data.chunks), dims=values.dims
    )
    result = xrspatial.zonal_stats(
        label_array, values, stats_funcs=STATS, nodata_values=nodata
    ).compute()
    write(out, by_label(frame, result.set_index("zone")))


def flox_tool(zones: str, raster: str, out: Path) -> None:
    """flox ``groupby_reduce`` map-reduce, nodata as NaN, labels from one rasterize."""
    import dask
    import dask.array as da
    from flox import groupby_reduce

    frame, labels, values, nodata = label_inputs(zones, raster)
    data = da.where(values.data == nodata, np.nan, values.data)
    by = da.from_array(labels, chunks=data.chunks)
    groups = np.arange(1, len(frame) + 1)
    funcs = {
        "count": "count",
        "mean": "nanmean",
        "sum": "nansum",
        "min": "nanmin",
        "max": "nanmax",
        "std": "nanstd",
    }
    lazy = {
        stat: groupby_reduce(
            data,
            by,
            func=func,
            expected_groups=groups,
            method="map-reduce",
            fill_value=0 if stat in ("count", "sum") else np.nan,
            # accumulate in float64, as zonal_dask does
            dtype=np.int64 if stat == "count" else np.float64,
        )[0]
        for stat, func in funcs.items()
    }
    computed = dict(zip(lazy, dask.compute(*lazy.values()), strict=True))
    write(out, pd.DataFrame({"zone": frame["zone"].to_numpy(), **computed}))


def gdal_loop(zones: str, raster: str, out: Path) -> None:
    """The classic per-polygon loop, one core: window, rasterize, read, numpy."""
    import geopandas as gpd
    import rasterio

    frame = gpd.read_file(zones, engine="pyogrio")
    with rasterio.open(raster) as src:
        rows = [polygon_stats(src, geometry) for geometry in frame.geometry]
    write(out, pd.DataFrame(rows, columns=STATS).assign(zone=frame["zone"]))


def gdal_pool(zones: str, raster: str, out: Path) -> None:
    """The classic loop in ``multiprocessing.Pool(2)``, chunks of polygons per task."""
    import multiprocessing

    import geopandas as gpd
    import shapely

    frame = gpd.read_file(zones, engine="pyogrio")
    wkb = shapely.to_wkb(frame.geometry.to_numpy())
    tasks = [wkb[i : i + POOL_TASK] for i in range(0, len(wkb), POOL_TASK)]
    with multiprocessing.Pool(THREADS, _open_worker_raster, (raster,)) as pool:
        rows = [row for chunk in pool.imap(_pool_task, tasks) for row in chunk]
    write(out, pd.DataFrame(rows, columns=STATS).assign(zone=frame["zone"]))


def floor_read(zones: str, raster: str, out: Path, threads: int = THREADS) -> None:
    """Floor A: read and decode every block, 2 threads (or ``threads``),
    nothing else."""
    import rasterio

    with rasterio.open(raster) as src:
        blocks = [window for _, window in src.block_windows(1)]
    with per_thread_dataset(raster) as dataset:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda w: dataset().read(1, window=w), blocks))


def floor_rasterize(zones: str, raster: str, out: Path) -> None:
    """Floor B: read the zones, burn those meeting each chunk, 2 threads."""
    import geopandas as gpd
    import rasterio
    import shapely
    from rasterio import features, windows

    from zonal_dask.io.grid import choose_chunks

    geometries = gpd.read_file(zones, engine="pyogrio").geometry.to_numpy()
    tree = shapely.STRtree(geometries)
    with rasterio.open(raster) as src:
        transform, shape = src.transform, src.shape
        rows, cols = choose_chunks(shape, src.block_shapes[0])

    def burn(window: windows.Window) -> None:
        hits = tree.query(shapely.box(*windows.bounds(window, transform)))
        if len(hits):
            features.rasterize(
                zip(geometries[hits], hits + 1, strict=True),
                out_shape=(window.height, window.width),
                transform=windows.transform(window, transform),
                fill=0,
                dtype="int32",
            )

    chunks = [
        windows.Window(col, row, min(cols, shape[1] - col), min(rows, shape[0] - row))
        for row in range(0, shape[0], rows)
        for col in range(0, shape[1], cols)
    ]
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(burn, chunks))


def label_inputs(zones: str, raster: str) -> tuple[Any, np.ndarray, Any, float]:
    """Zones, their label raster (0 = none, i + 1 = feature i), dask values, nodata.

    The values are chunked as zonal_dask chunks them (whole 512-pixel tiles,
    about 2048 x 2048), read in parallel (``lock=False``, as zonal_dask). One
    rasterize of all polygons: where polygons overlap, the last one drawn gets
    the pixel.
    """
    import geopandas as gpd
    import rasterio
    import rioxarray
    from rasterio import features

    from zonal_dask.io.grid import choose_chunks

    frame = gpd.read_file(zones, engine="pyogrio")
    with rasterio.open(raster) as src:
        shape, transform, nodata = src.shape, src.transform, src.nodata
        rows, cols = choose_chunks(shape, src.block_shapes[0])
    labels = features.rasterize(
        zip(frame.geometry, range(1, len(frame) + 1), strict=True),
        out_shape=shape,
        transform=transform,
        fill=0,
        dtype="int32",
    )
    values = rioxarray.open_rasterio(
        raster, chunks={"band": 1, "y": rows, "x": cols}, lock=False
    ).squeeze("band", drop=True)
    return frame, labels, values, nodata


def by_label(frame: Any, result: pd.DataFrame) -> pd.DataFrame:
    """Rows of a per-label result back in feature order; absent labels count 0."""
    rows = result.reindex(np.arange(1, len(frame) + 1))
    rows["count"] = rows["count"].fillna(0)
    return rows.reset_index(drop=True).assign(zone=frame["zone"].to_numpy())


def polygon_stats(src: Any, geometry: Any) -> list[float]:
    """The classic recipe's statistics of one polygon, pixel-centre rule.

    The polygon's bounding box, rounded outward to whole pixels and clipped to
    the raster, is the window: the polygon alone is rasterized into it, the
    window is read and nodata and NaN are left out.
    """
    from rasterio import features, windows

    if geometry is None or geometry.is_empty:
        return moments(np.empty(0))
    box = windows.from_bounds(*geometry.bounds, transform=src.transform)
    col0, row0 = max(0, math.floor(box.col_off)), max(0, math.floor(box.row_off))
    col1 = min(src.width, math.ceil(box.col_off + box.width))
    row1 = min(src.height, math.ceil(box.row_off + box.height))
    if col1 <= col0 or row1 <= row0:
        return moments(np.empty(0))
    window = windows.Window(col0, row0, col1 - col0, row1 - row0)
    inside = features.rasterize(
        [(geometry, 1)],
        out_shape=(window.height, window.width),
        transform=src.window_transform(window),
        fill=0,
        dtype="uint8",
    ).view(bool)
    values = src.read(1, window=window)[inside]
    valid = ~np.isnan(values)
    if src.nodata is not None:
        valid &= values != src.nodata
    return moments(values[valid].astype(np.float64))


def moments(values: np.ndarray) -> list[float]:
    """count, mean, sum, min, max, std of valid float64 values (NaN when none)."""
    if not len(values):
        return [0, math.nan, math.nan, math.nan, math.nan, math.nan]
    return [
        len(values),
        values.mean(),
        values.sum(),
        values.min(),
        values.max(),
        values.std(),
    ]


_worker_raster: Any = None


def _open_worker_raster(raster: str) -> None:
    import rasterio

    global _worker_raster
    _worker_raster = rasterio.open(raster)


def _pool_task(wkb: Sequence[bytes]) -> list[list[float]]:
    import shapely

    return [polygon_stats(_worker_raster, g) for g in shapely.from_wkb(wkb)]


class per_thread_dataset:
    """A context giving each thread its own open dataset, all closed on exit."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.local = threading.local()
        self.opened: list[Any] = []
        self.lock = threading.Lock()

    def __enter__(self) -> Callable[[], Any]:
        return self.dataset

    def __exit__(self, *exc: object) -> None:
        for dataset in self.opened:
            dataset.close()

    def dataset(self) -> Any:
        import rasterio

        if not hasattr(self.local, "dataset"):
            self.local.dataset = rasterio.open(self.path)
            with self.lock:
                self.opened.append(self.local.dataset)
        return self.local.dataset


def write(out: Path, frame: pd.DataFrame) -> None:
    """Write the columns ``zone`` and those of STATS that the tool computed."""
    columns = ["zone", *(s for s in STATS if s in frame.columns)]
    frame[columns].to_parquet(out, index=False)


TOOLS: dict[str, Callable[[str, str, Path], None]] = {
    "zonal_dask": zonal_dask_api,
    "zonal_dask_1thread": lambda z, r, o: zonal_dask_api(z, r, o, threads=1),
    "zonal_dask_coverage": zonal_dask_coverage,
    "zonal_dask_mean": lambda z, r, o: zonal_dask_mean(z, r, o, None),
    "zonal_dask_weighted": lambda z, r, o: zonal_dask_weighted(z, r, o, None),
    "zonal_dask_coverage_mean": lambda z, r, o: zonal_dask_mean(z, r, o, "fraction"),
    "zonal_dask_coverage_weighted": lambda z, r, o: zonal_dask_weighted(
        z, r, o, "fraction"
    ),
    "zonal_dask_coverage_weighted_x4": lambda z, r, o: zonal_dask_weighted(
        z, r, o, "fraction", "_x4"
    ),
    "exactextract_weighted": exactextract_weighted,
    "rasterstats": lambda z, r, o: rasterstats_tool(z, r, o, boundless=True),
    "rasterstats_inside": lambda z, r, o: rasterstats_tool(z, r, o, boundless=False),
    "exactextract": lambda z, r, o: exactextract_tool(z, r, o, "feature-sequential"),
    "exactextract_rs": lambda z, r, o: exactextract_tool(z, r, o, "raster-sequential"),
    "xrspatial": xrspatial_tool,
    "flox": flox_tool,
    "gdal_loop": gdal_loop,
    "gdal_pool": gdal_pool,
    "floor_read": floor_read,
    "floor_read_1thread": lambda z, r, o: floor_read(z, r, o, threads=1),
    "floor_rasterize": floor_rasterize,
    "bands_mean_zonal_dask": lambda z, r, o: bands_mean(z, r, o, "zonal_dask"),
    "bands_mean_exactextract": lambda z, r, o: bands_mean(z, r, o, "exactextract"),
}

if __name__ == "__main__":
    main()
