"""Deterministic time-series data: one grid, one raster a day.

    python benchmarks/peers/make_timeseries.py DIR [--steps 10]
        [--zones 200000 1000] [--height 7800] [--width 8100]
        [--start 2024-01-01] [--skip zarr|tif ...]

A land-surface-temperature-like float32 grid of ``height`` x ``width``
pixels (30 m, EPSG:32633), ``steps`` daily steps (30 x 63 Mpixel of float32
would be 7.5 GB uncompressed, hence 10 by default), in two layouts with the
same values, and adjacent zones over it. Writes into DIR (nothing is rewritten
when it exists; the cube is written as ``lst.tmp.zarr`` and renamed when whole):

* ``lst.zarr``: a Zarr (format 2) cube, variable ``lst`` with dims
  (time, y, x), uncompressed, chunks 1 x 1024 x 1024, pixel-centre ``x``/``y``
  coordinates and a ``spatial_ref`` written by rioxarray (CRS, GeoTransform):
  ``xr.open_zarr(path, decode_coords="all").lst.rio.crs`` and
  ``.rio.transform()`` give the grid back (checked after writing).
* ``lst_YYYY-MM-DD.tif``: one GeoTIFF a day, 512-pixel tiles, deflate with the
  floating-point predictor, nodata NaN.
* ``lst_zones_{n}.gpkg``: ``n`` adjacent Voronoi cells over the grid
  (``make_data.voronoi_zones``: a tenth with holes, a tenth MultiPolygons).

Values are Kelvin in steps of 0.02 K (MODIS LST's scale, and what keeps
deflate effective): a smooth field, a daily offset, noise, and a few cloud
discs of NaN a day. The sizes on disk are printed at the end, with the
commands to measure, e.g.

    /usr/bin/time -v zonal-dask DIR/lst_zones_200000.gpkg \\
        DIR/lst_2024-01-01.tif DIR/out.parquet
"""

from __future__ import annotations

import argparse
import datetime
import shutil
import time
from pathlib import Path

import numpy as np
import rasterio.transform
import rioxarray  # noqa: F401  (the .rio accessor)
import xarray as xr
import zarr
from affine import Affine
from make_data import CRS, raster_profile, voronoi_zones, write_strips, write_zones

PIXEL = 30.0
ORIGIN = (300_000.0, 5_900_000.0)  # top-left corner, UTM 33N
CHUNK = 1024
ROWS_AT_ONCE = 1024


def grid(height: int, width: int) -> tuple[Affine, np.ndarray, np.ndarray]:
    """The grid of ``height`` x ``width`` pixels at ``ORIGIN``.

    Returns
    -------
    transform : affine.Affine
        ``PIXEL`` metres, north up.
    xs, ys : numpy.ndarray
        Pixel-centre coordinates of the columns and rows.
    """
    transform = Affine(PIXEL, 0, ORIGIN[0], 0, -PIXEL, ORIGIN[1])
    xs = ORIGIN[0] + (np.arange(width) + 0.5) * PIXEL
    ys = ORIGIN[1] - (np.arange(height) + 0.5) * PIXEL
    return transform, xs, ys


def day_values(step: int, height: int, width: int) -> np.ndarray:
    """One day's float32 values (module docstring), seeded by the step.

    Parameters
    ----------
    step
        Day number from 0: the seed, the daily offset and the clouds.
    height, width
        Grid size in pixels.

    Returns
    -------
    numpy.ndarray
        float32 (height, width), NaN under clouds.
    """
    out = np.empty((height, width), np.float32)
    cols = np.arange(width, dtype=np.float32)
    rng = np.random.default_rng([step, height, width])
    clouds = np.column_stack(  # centre row, centre column, radius
        [
            rng.uniform(0, height, 6),
            rng.uniform(0, width, 6),
            rng.uniform(0.03, 0.12, 6) * min(height, width),
        ]
    )
    offset = 8 * np.sin(2 * np.pi * step / 30)
    for top in range(0, height, ROWS_AT_ONCE):
        rows = np.arange(top, min(height, top + ROWS_AT_ONCE), dtype=np.float32)
        rows = rows[:, None]
        noise = np.random.default_rng([step, top]).standard_normal(
            (rows.size, width), dtype=np.float32
        )
        field = 290 + offset + 12 * np.sin(rows / 700) * np.cos(cols / 900)
        field += 4 * np.sin((rows - cols) / 150 + step) + 0.8 * noise
        block = np.round(field / 0.02) * np.float32(0.02)
        for r, c, radius in clouds:
            block[(rows - r) ** 2 + (cols - c) ** 2 < radius**2] = np.nan
        out[top : top + rows.size] = block
    return out


def no_compression() -> dict:
    """The Zarr encoding key for "uncompressed" in this zarr's API."""
    if int(zarr.__version__.split(".")[0]) >= 3:
        return {"compressors": None}
    return {"compressor": None}


def write_day(
    cube: Path | None,
    tif: Path | None,
    values: np.ndarray,
    date: datetime.date,
    first: bool,
) -> None:
    """Append one day to the Zarr cube and write its GeoTIFF.

    Parameters
    ----------
    cube, tif
        Destinations; None skips that layout.
    values
        The day's float32 (height, width) values.
    date
        The day, the cube's ``time`` coordinate.
    first
        Create the cube (``mode="w"``) rather than append to it.
    """
    height, width = values.shape
    transform, xs, ys = grid(height, width)
    if cube is not None:
        day = xr.Dataset(
            {"lst": (("time", "y", "x"), values[None])},
            coords={"time": [np.datetime64(date, "ns")], "y": ys, "x": xs},
        )
        day = day.rio.write_crs(CRS).rio.write_transform(transform)
        day["lst"].attrs.update(units="K", long_name="land surface temperature")
        if first:  # into .encoding: an encoding= argument drops grid_mapping
            day["lst"].encoding.update(chunks=(1, CHUNK, CHUNK), **no_compression())
            day.to_zarr(cube, mode="w", zarr_format=2)
        else:
            day.to_zarr(cube, append_dim="time")
    if tif is not None:
        profile = raster_profile(
            height,
            width,
            nodata=float("nan"),
            transform=transform,
            predictor=3,
            num_threads="all_cpus",
        )
        write_strips(tif, profile, lambda top, h: values[None, top : top + h])


def check_cube(cube: Path, transform: Affine, steps: int) -> None:
    """Exit with a message unless rioxarray reads the grid back from ``cube``.

    Parameters
    ----------
    cube
        The Zarr store.
    transform
        The expected geotransform (the CRS expected is ``CRS``).
    steps
        The expected length of ``time``.
    """
    lst = xr.open_zarr(cube, decode_coords="all")["lst"]
    crs, got = lst.rio.crs, lst.rio.transform()
    if crs != CRS or got != transform:
        raise SystemExit(f"{cube}: rioxarray reads {crs}, {got}")
    if lst.sizes["time"] != steps or lst.dims != ("time", "y", "x"):
        raise SystemExit(f"{cube}: unexpected shape {dict(lst.sizes)}")


def size_on_disk(path: Path) -> float:
    """MB used by a file or a directory tree."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6
    return path.stat().st_size / 1e6


def make(
    directory: Path,
    steps: int,
    zones: list[int],
    height: int,
    width: int,
    start: datetime.date,
    skip: tuple[str, ...] = (),
) -> list[Path]:
    """Write what the module docstring describes.

    Parameters
    ----------
    directory
        Where to write; created if missing.
    steps
        Days, from ``start``.
    zones
        Sizes of the zone layers.
    height, width
        Grid size in pixels.
    start
        The first day.
    skip
        Layouts not to write: ``"zarr"``, ``"tif"``.

    Returns
    -------
    list of pathlib.Path
        The cube, the GeoTIFFs and the zone layers.
    """
    directory.mkdir(parents=True, exist_ok=True)
    transform, _, _ = grid(height, width)
    dates = [start + datetime.timedelta(days=i) for i in range(steps)]
    cube = directory / "lst.zarr"
    tifs = [directory / f"lst_{d.isoformat()}.tif" for d in dates]
    cube_todo = None  # written under a temporary name, renamed when complete
    if "zarr" not in skip and not cube.exists():
        cube_todo = directory / "lst.tmp.zarr"
        shutil.rmtree(cube_todo, ignore_errors=True)
    for i, (date, tif) in enumerate(zip(dates, tifs, strict=True)):
        tif_todo = None if "tif" in skip or tif.exists() else tif
        if cube_todo is None and tif_todo is None:
            continue
        started = time.perf_counter()
        values = day_values(i, height, width)
        write_day(cube_todo, tif_todo, values, date, first=i == 0)
        print(f"{date}: {time.perf_counter() - started:.1f} s", flush=True)
    if cube_todo is not None:
        check_cube(cube_todo, transform, steps)
        cube_todo.rename(cube)
    bounds = rasterio.transform.array_bounds(height, width, transform)
    layers = []
    for n in zones:
        path = directory / f"lst_zones_{n}.gpkg"
        if not path.exists():
            started = time.perf_counter()
            cells = voronoi_zones((bounds[0], bounds[1], bounds[2], bounds[3]), n)
            write_zones(path, cells)
            print(f"{path.name}: {time.perf_counter() - started:.1f} s")
        layers.append(path)
    outputs = ([] if "zarr" in skip else [cube]) + [
        t for t in tifs if "tif" not in skip
    ]
    return outputs + layers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--zones", type=int, nargs="+", default=[200_000, 1_000])
    parser.add_argument("--height", type=int, default=7800)
    parser.add_argument("--width", type=int, default=8100)
    parser.add_argument(
        "--start", type=datetime.date.fromisoformat, default=datetime.date(2024, 1, 1)
    )
    parser.add_argument("--skip", nargs="*", choices=["zarr", "tif"], default=[])
    args = parser.parse_args()
    paths = make(
        args.directory,
        args.steps,
        args.zones,
        args.height,
        args.width,
        args.start,
        tuple(args.skip),
    )
    total = 0.0
    for path in paths:
        size = size_on_disk(path)
        total += size
        print(f"{size:10.0f} MB  {path.name}")
    print(f"{total:10.0f} MB  in all")
    first = [p for p in paths if p.suffix == ".tif"][:1]
    for layer in [p for p in paths if p.suffix == ".gpkg"]:
        for raster in first:
            out = args.directory / "out.parquet"
            print(f"/usr/bin/time -v zonal-dask {layer} {raster} {out}")


if __name__ == "__main__":
    main()
