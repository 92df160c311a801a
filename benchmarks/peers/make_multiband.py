"""Deterministic multi-band data like kadyb/raster-benchmark's "zonal" task.

    python benchmarks/peers/make_multiband.py DIR [--dtype uint16|float32]
        [--bands 10] [--buffers 2000] [--interleave pixel|band]

That benchmark takes the mean of each of the 10 bands of a Landsat 8 scene
(30 m, 7771 x 7871 pixels, UTM 33N) over 2,000 random points buffered by 50 to
500 m and dissolved. Writes into DIR (nothing is rewritten when it exists):

* ``multiband_{dtype}.tif``: 7771 columns x 7871 rows, ``bands`` bands, 30 m,
  EPSG:32633, 512-pixel tiles, deflate with a predictor. Like a Landsat scene,
  the valid data is a tilted rectangle (12.5 degrees); outside it is nodata (0
  for uint16 digital numbers, NaN for float32 reflectance). Each band is its
  own smooth field plus noise, so band means differ. Pixel-interleaved (GDAL's
  default: a tile holds every band); ``--interleave band`` writes
  ``multiband_{dtype}_band.tif`` with one tile per band instead.
* ``buffers_{n}.gpkg``: ``n`` random points inside the valid footprint, on
  the 30 m grid of pixel corners, buffered by 50, 100, ... or 500 m (30
  segments a quarter circle, as sf), then dissolved as ``st_union`` +
  ``st_cast("POLYGON")``: overlapping buffers merge into one Polygon; about
  ``n`` features remain. Field ``id``.

It prints the command to measure, e.g.

    /usr/bin/time -v zonal-dask DIR/buffers_2000.gpkg DIR/multiband_uint16.tif \\
        DIR/out.csv --band all --stats mean
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely
from affine import Affine
from make_data import CRS, raster_profile, write_strips, write_zones

WIDTH, HEIGHT = 7771, 7871
PIXEL = 30.0
ORIGIN = (543_885.0, 5_848_515.0)  # top-left corner, UTM 33N
TILT = np.deg2rad(12.5)
HALF = (0.40 * WIDTH, 0.40 * HEIGHT)  # the footprint's half sides, pixels
RADII = np.arange(50, 501, 50)


def transform() -> Affine:
    """The scene's geotransform: ``PIXEL`` metres, north up, at ``ORIGIN``."""
    return Affine(PIXEL, 0, ORIGIN[0], 0, -PIXEL, ORIGIN[1])


def in_footprint(cols: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Whether pixel-space points are inside the tilted valid-data rectangle.

    Parameters
    ----------
    cols, rows
        Pixel coordinates (broadcastable), e.g. pixel centres ``c + 0.5``.

    Returns
    -------
    numpy.ndarray
        Boolean, the broadcast shape.
    """
    dx, dy = cols - WIDTH / 2, rows - HEIGHT / 2
    u = dx * np.cos(TILT) + dy * np.sin(TILT)
    v = -dx * np.sin(TILT) + dy * np.cos(TILT)
    return (np.abs(u) <= HALF[0]) & (np.abs(v) <= HALF[1])


def write_scene(path: Path, bands: int, dtype: str, interleave: str) -> None:
    """Write the multi-band GeoTIFF described in the module docstring.

    Parameters
    ----------
    path
        Destination (written under a temporary name, then renamed).
    bands, dtype
        Band count; ``uint16`` digital numbers or ``float32`` reflectance.
    interleave
        ``pixel`` or ``band`` (GeoTIFF ``INTERLEAVE``).
    """
    integer = dtype == "uint16"
    nodata = 0 if integer else float("nan")
    profile = raster_profile(
        HEIGHT,
        WIDTH,
        count=bands,
        dtype=dtype,
        nodata=nodata,
        transform=transform(),
        predictor=2 if integer else 3,
        num_threads="all_cpus",
        interleave=interleave,
    )
    cols = np.arange(WIDTH, dtype=np.float64)

    def strip(top: int, height: int) -> np.ndarray:
        rows = np.arange(top, top + height, dtype=np.float64)[:, None]
        outside = ~in_footprint(cols + 0.5, rows + 0.5)
        out = np.empty((bands, height, WIDTH), dtype)
        for b in range(bands):
            rng = np.random.default_rng([top, b])
            # digital numbers; the last two bands thermal-like, higher
            thermal = b - (bands - 2)
            base = 21_000 + 2_000 * thermal if thermal >= 0 else 7_000 + 900 * b
            wave = np.sin(rows / (310 + 37 * b)) * np.cos(cols / (420 + 53 * b))
            wave += 0.5 * np.sin((rows + 2 * cols) / (900 + 71 * b))
            noise = rng.standard_normal((height, WIDTH), dtype=np.float32)
            dn = base + (1_500 + 150 * b) * wave + 60 * noise
            dn = np.clip(np.round(dn), 1, 65_535)
            values = dn if integer else dn * 2.75e-5 - 0.2  # Landsat C2 scaling
            out[b] = values
            out[b][outside] = nodata
        return out

    write_strips(path, profile, strip)


def dissolved_buffers(n: int, seed: int = 1) -> gpd.GeoDataFrame:
    """``n`` buffered random points in the footprint, dissolved (docstring).

    Parameters
    ----------
    n
        Number of points before dissolving.
    seed
        Random seed.

    Returns
    -------
    geopandas.GeoDataFrame
        One Polygon per group of overlapping buffers, ordered by centroid
        (x, then y), field ``id``, in ``CRS``.
    """
    rng = np.random.default_rng(seed)
    picked = np.empty((0, 2))
    while len(picked) < n:  # pixel corners, kept when inside the footprint
        cand = rng.integers(0, (WIDTH + 1, HEIGHT + 1), (2 * n, 2)).astype(float)
        picked = np.vstack([picked, cand[in_footprint(cand[:, 0], cand[:, 1])]])
    xs, ys = transform() * (picked[:n, 0], picked[:n, 1])
    radii = rng.choice(RADII, n).astype(float)
    buffers = shapely.buffer(shapely.points(xs, ys), radii, quad_segs=30)
    parts = shapely.get_parts(shapely.union_all(buffers))
    centres = shapely.centroid(parts)
    parts = parts[np.lexsort((shapely.get_y(centres), shapely.get_x(centres)))]
    return gpd.GeoDataFrame({"id": np.arange(len(parts))}, geometry=parts, crs=CRS)


def make(
    directory: Path, bands: int, dtype: str, buffers: int, interleave: str = "pixel"
) -> None:
    """Write the raster and the buffers, printing sizes and the command.

    Parameters
    ----------
    directory
        Where to write; created if missing.
    bands, dtype
        The raster's band count and data type (``uint16`` or ``float32``).
    buffers
        Points to buffer before dissolving.
    interleave
        ``pixel`` or ``band``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    suffix = "" if interleave == "pixel" else f"_{interleave}"
    raster = directory / f"multiband_{dtype}{suffix}.tif"
    zones = directory / f"buffers_{buffers}.gpkg"
    for path, write in (
        (raster, lambda p: write_scene(p, bands, dtype, interleave)),
        (zones, lambda p: write_zones(p, dissolved_buffers(buffers))),
    ):
        if not path.exists():
            start = time.perf_counter()
            write(path)
            took = time.perf_counter() - start
            print(f"{path.name}: {path.stat().st_size / 1e6:.0f} MB, {took:.1f} s")
    n = pyogrio.read_info(zones)["features"]
    print(f"{zones.name}: {n} features after dissolving {buffers} buffers")
    print(
        f"/usr/bin/time -v zonal-dask {zones} {raster} {directory}/out.csv "
        "--band all --stats mean"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--dtype", choices=["uint16", "float32"], default="uint16")
    parser.add_argument("--bands", type=int, default=10)
    parser.add_argument("--buffers", type=int, default=2000)
    parser.add_argument("--interleave", choices=["pixel", "band"], default="pixel")
    args = parser.parse_args()
    make(args.directory, args.bands, args.dtype, args.buffers, args.interleave)


if __name__ == "__main__":
    main()
