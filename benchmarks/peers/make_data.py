"""Deterministic inputs for the peer benchmark (``benchmarks/peers/run.py``).

    python benchmarks/peers/make_data.py DIR [--size 4000] [--zones 50000 1000]
        [--overlapping] [--vrt-repeat 0] [--format gpkg|parquet] [--weights]

Writes into DIR (nothing is rewritten when it already exists):

* ``raster_{size}.tif``: a ``size`` x ``size`` float32 GeoTIFF, deflate,
  512-pixel tiles, nodata -9999 over a disc and a band of blocks; values are a
  smooth field plus noise, so statistics differ from zone to zone.
* ``zones_{size}_{n}.gpkg``: ``n`` adjacent Voronoi cells over the raster's
  extent (a partition: every pixel in exactly one zone). Every tenth cell has a
  hole; the hole's island is a second part of a neighbouring cell, which
  becomes a MultiPolygon, so the features still tile the plane. Field
  ``zone`` = 0..n-1.
* ``--overlapping``: ``zones_{size}_{n}_overlap.gpkg``, the same cells buffered
  by a third of the mean cell width, so most pixels are in two or three zones.
* ``--vrt-repeat R``: ``raster_{size}_x{R}.vrt`` repeating the GeoTIFF R x R
  times, and ``zones_{size}_x{R}_{n}.gpkg`` over its extent.
* ``--weights``: ``weights_{size}.tif``, a weights raster on the same grid
  (float32, positive, a smooth "population" field with noise, nodata -1 over
  a band of blocks), and ``weights_{size}_x4.tif``, the same field on a grid
  four times coarser (cells of 4 x 4 pixels), for weighted statistics.
* ``--format parquet``: the zone layers as GeoParquet (``.parquet``) instead
  of GeoPackage. A million zones (``--zones 1000000``, cells of 16 pixels) take
  about a minute either way.

The raster is written window by window (memory stays at one 512-row strip), so
16000 x 16000 (1 GiB of float32) is fine on a laptop. The helpers here
(``raster_profile``, ``write_strips``, ``voronoi_zones``, ``write_zones``) also
make the data of ``make_multiband.py`` and ``make_timeseries.py``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.windows import Window

CRS = "EPSG:32633"
PIXEL = 10.0
ORIGIN = (500_000.0, 5_000_000.0)
NODATA = -9999.0
BLOCK = 512


def raster_profile(
    height: int,
    width: int,
    *,
    count: int = 1,
    dtype: str = "float32",
    nodata: float | None = NODATA,
    transform: Affine | None = None,
    **extra,
) -> dict:
    """A tiled (``BLOCK``-pixel), deflate GeoTIFF profile in ``CRS``.

    Parameters
    ----------
    height, width
        Raster size in pixels.
    count, dtype, nodata
        Bands, data type and nodata value.
    transform
        Defaults to ``PIXEL``-metre pixels with their top-left corner at
        ``ORIGIN``.
    **extra
        More creation options (``predictor=3``, ``blockxsize=...``).

    Returns
    -------
    dict
        Keyword arguments for ``rasterio.open(path, "w", **profile)``.
    """
    if transform is None:
        transform = Affine(PIXEL, 0, ORIGIN[0], 0, -PIXEL, ORIGIN[1])
    profile = {
        "driver": "GTiff",
        "height": height,
        "width": width,
        "count": count,
        "dtype": dtype,
        "crs": CRS,
        "transform": transform,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": BLOCK,
        "blockysize": BLOCK,
        "compress": "deflate",
    }
    profile.update(extra)
    return profile


def write_strips(
    path: Path, profile: dict, strip: Callable[[int, int], np.ndarray]
) -> None:
    """Write a GeoTIFF one strip of ``BLOCK`` rows at a time, atomically.

    Parameters
    ----------
    path
        Destination; written under a temporary name and renamed into place.
    profile
        As ``raster_profile`` returns.
    strip
        ``strip(top, height)`` returns the rows ``top`` to ``top + height``
        of every band, shaped ``(count, height, width)``.
    """
    tmp = path.with_suffix(".tmp.tif")
    with rasterio.open(tmp, "w", **profile) as dst:
        for top in range(0, profile["height"], BLOCK):
            height = min(BLOCK, profile["height"] - top)
            window = Window(0, top, profile["width"], height)
            dst.write(strip(top, height), window=window)
    tmp.rename(path)


def write_raster(path: Path, size: int) -> None:
    """The peer benchmark's single-band float32 raster (module docstring)."""
    cols = np.arange(size, dtype=np.float64)

    def strip(top: int, height: int) -> np.ndarray:
        rows = np.arange(top, top + height, dtype=np.float64)[:, None]
        rng = np.random.default_rng(top)
        field = 100 + 50 * np.sin(rows / 97.0) * np.cos(cols / 131.0)
        values = (field + rng.normal(0, 5, (height, size))).astype("float32")
        # nodata: a disc in the first quadrant and a band of whole blocks
        disc = (rows - size / 4) ** 2 + (cols - size / 4) ** 2 < (size / 10) ** 2
        values[disc] = NODATA
        if top // BLOCK % 7 == 3:
            values[:, : min(size, 2 * BLOCK)] = NODATA
        return values[None]

    write_strips(path, raster_profile(size, size), strip)


def voronoi_zones(
    bounds: tuple[float, float, float, float], n: int
) -> gpd.GeoDataFrame:
    """``n`` adjacent Voronoi cells tiling ``bounds``, seeded by ``n``.

    Parameters
    ----------
    bounds
        (xmin, ymin, xmax, ymax) in ``CRS``.
    n
        Number of cells (and the random seed).

    Returns
    -------
    geopandas.GeoDataFrame
        Field ``zone`` = 0..n-1; every tenth cell has a hole whose island is
        a part of a neighbouring cell (module docstring).
    """
    rng = np.random.default_rng(n)
    xmin, ymin, xmax, ymax = bounds
    frame = shapely.box(xmin, ymin, xmax, ymax)
    points = shapely.multipoints(rng.uniform((xmin, ymin), (xmax, ymax), (n, 2)))
    cells = shapely.get_parts(shapely.voronoi_polygons(points, extend_to=frame))
    cells = shapely.intersection(cells, frame)
    # Every tenth cell: a hole whose island becomes a second part of a cell
    # next to it (a MultiPolygon whose parts are near each other, as parcels
    # and districts are), so the features still tile the plane.
    tree = shapely.STRtree(cells)
    taken = np.zeros(len(cells), bool)
    for i in range(0, len(cells), 10):
        neighbours = [j for j in tree.query(cells[i], "touches") if not taken[j]]
        if not neighbours or taken[i]:
            continue
        j = int(min(neighbours))
        taken[[i, j]] = True
        centre = shapely.centroid(cells[i])
        island = shapely.affinity.scale(cells[i], 0.4, 0.4, origin=centre)
        cells[i] = shapely.difference(cells[i], island)
        cells[j] = shapely.MultiPolygon([*shapely.get_parts(cells[j]), island])
    return gpd.GeoDataFrame({"zone": np.arange(len(cells))}, geometry=cells, crs=CRS)


def write_zones(path: Path, zones: gpd.GeoDataFrame) -> None:
    """Write zones atomically: GeoParquet for ``.parquet``, else GeoPackage."""
    tmp = path.with_suffix(".tmp" + path.suffix)
    tmp.unlink(missing_ok=True)
    if path.suffix == ".parquet":
        zones.to_parquet(tmp)
    else:
        zones.to_file(tmp, driver="GPKG", engine="pyogrio")
    tmp.rename(path)


def read_zones(path: Path) -> gpd.GeoDataFrame:
    """Read what ``write_zones`` wrote."""
    if path.suffix == ".parquet":
        return gpd.read_parquet(path)
    return gpd.read_file(path, engine="pyogrio")


def write_vrt(path: Path, tile: Path, size: int, repeat: int) -> None:
    total = size * repeat
    sources = []
    for i in range(repeat):
        for j in range(repeat):
            sources.append(
                f"""    <ComplexSource>
      <SourceFilename relativeToVRT="1">{tile.name}</SourceFilename>
      <SourceBand>1</SourceBand>
      <SrcRect xOff="0" yOff="0" xSize="{size}" ySize="{size}"/>
      <DstRect xOff="{j * size}" yOff="{i * size}" xSize="{size}" ySize="{size}"/>
      <NODATA>{NODATA}</NODATA>
    </ComplexSource>"""
            )
    with rasterio.open(tile) as src:
        srs = src.crs.to_wkt()
    gt = ", ".join(str(v) for v in (ORIGIN[0], PIXEL, 0.0, ORIGIN[1], 0.0, -PIXEL))
    newline = "\n"
    text = f"""<VRTDataset rasterXSize="{total}" rasterYSize="{total}">
  <SRS>{srs}</SRS>
  <GeoTransform>{gt}</GeoTransform>
  <VRTRasterBand dataType="Float32" band="1" blockXSize="{BLOCK}" blockYSize="{BLOCK}">
    <NoDataValue>{NODATA}</NoDataValue>
{newline.join(sources)}
  </VRTRasterBand>
</VRTDataset>
"""
    path.write_text(text)


def write_weights(path: Path, size: int, factor: int = 1) -> None:
    """A positive float32 weights raster over the benchmark's extent, with
    cells ``factor`` times the raster's (module docstring)."""
    cells = size // factor
    cols = (np.arange(cells, dtype=np.float64) + 0.5) * factor

    def strip(top: int, height: int) -> np.ndarray:
        rows = (np.arange(top, top + height, dtype=np.float64)[:, None] + 0.5) * factor
        rng = np.random.default_rng(10_000 + top)
        field = np.exp(2 + np.sin(rows / 211.0) + np.cos(cols / 173.0))
        values = (field * rng.uniform(0.5, 1.5, (height, cells))).astype("float32")
        if top // BLOCK % 5 == 2:  # undefined weights: a band of blocks
            values[:, BLOCK : 2 * BLOCK] = -1
        return values[None]

    x0, y1 = ORIGIN
    transform = Affine(PIXEL * factor, 0, x0, 0, -PIXEL * factor, y1)
    write_strips(
        path, raster_profile(cells, cells, nodata=-1, transform=transform), strip
    )


def bounds_of(size: int) -> tuple[float, float, float, float]:
    """(xmin, ymin, xmax, ymax) of a ``size`` x ``size`` raster_profile grid."""
    x0, y1 = ORIGIN
    return x0, y1 - size * PIXEL, x0 + size * PIXEL, y1


def make(
    directory: Path,
    size: int,
    zones: list[int],
    overlapping: bool = False,
    vrt_repeat: int = 0,
    fmt: str = "gpkg",
    weights: bool = False,
) -> None:
    """Write the rasters and zone layers described in the module docstring."""
    directory.mkdir(parents=True, exist_ok=True)
    raster = directory / f"raster_{size}.tif"
    if not raster.exists():
        write_raster(raster, size)
    for factor, name in ((1, f"weights_{size}.tif"), (4, f"weights_{size}_x4.tif")):
        if weights and not (directory / name).exists():
            write_weights(directory / name, size, factor)
    for n in zones:
        path = directory / f"zones_{size}_{n}.{fmt}"
        cells = None
        if not path.exists():
            cells = voronoi_zones(bounds_of(size), n)
            write_zones(path, cells)
        overlap = directory / f"zones_{size}_{n}_overlap.{fmt}"
        if overlapping and not overlap.exists():
            if cells is None:
                cells = read_zones(path)
            width = np.sqrt(size * size * PIXEL * PIXEL / n)
            grown = cells.copy()
            grown["geometry"] = cells.buffer(width / 3, quad_segs=4)
            write_zones(overlap, grown)
    if vrt_repeat:
        vrt = directory / f"raster_{size}_x{vrt_repeat}.vrt"
        if not vrt.exists():
            write_vrt(vrt, raster, size, vrt_repeat)
        for n in zones:
            path = directory / f"zones_{size}_x{vrt_repeat}_{n}.{fmt}"
            if not path.exists():
                write_zones(path, voronoi_zones(bounds_of(size * vrt_repeat), n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--size", type=int, default=4000)
    parser.add_argument("--zones", type=int, nargs="+", default=[50_000, 1_000])
    parser.add_argument("--overlapping", action="store_true")
    parser.add_argument("--vrt-repeat", type=int, default=0)
    parser.add_argument("--format", choices=["gpkg", "parquet"], default="gpkg")
    parser.add_argument("--weights", action="store_true")
    args = parser.parse_args()
    make(
        args.directory,
        args.size,
        args.zones,
        args.overlapping,
        args.vrt_repeat,
        args.format,
        args.weights,
    )


if __name__ == "__main__":
    main()
