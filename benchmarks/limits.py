"""Inputs for the two scale-limit runs of benchmarks/README.md ("Scale").

    python benchmarks/limits.py many-zones DIR [--zones 1000000] [--size 4000]
    python benchmarks/limits.py huge-raster DIR [--tiles 30] [--tile 1024]

``many-zones`` writes a ``size`` x ``size`` float32 GeoTIFF (deflate, 512-pixel
tiles) and ``zones`` small squares (about 3 x 3 pixels each, on a regular
lattice with a random jitter) as GeoParquet. ``huge-raster`` writes one
``tile`` x ``tile`` float32 GeoTIFF and a VRT repeating it ``tiles`` x ``tiles``
times (30 x 1024 = 30,720 pixels a side, 944 Mpixel), with four huge disjoint
polygons, one per quadrant (a disc, a ring, a thin diagonal band, a box reaching
past the raster's edges); ``--overlapping`` adds a fifth covering everything.
Each prints the command to measure, e.g.

    /usr/bin/time -v zonal-dask DIR/zones.parquet DIR/raster.tif DIR/out.parquet
"""

from __future__ import annotations

import argparse
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from affine import Affine

CRS = "EPSG:32633"
PIXEL = 10.0
ORIGIN = (500_000.0, 5_000_000.0)


def many_zones(directory: Path, n_zones: int, size: int) -> None:
    rng = np.random.default_rng(0)
    transform = Affine(PIXEL, 0, ORIGIN[0], 0, -PIXEL, ORIGIN[1])
    profile = {
        "driver": "GTiff",
        "height": size,
        "width": size,
        "count": 1,
        "dtype": "float32",
        "crs": CRS,
        "transform": transform,
        "nodata": -9999.0,
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "deflate",
    }
    with rasterio.open(directory / "raster.tif", "w", **profile) as dst:
        for _, window in dst.block_windows(1):
            shape = (window.height, window.width)
            dst.write(rng.normal(100, 30, shape).astype("float32"), 1, window=window)
    side = int(np.ceil(np.sqrt(n_zones)))
    step = size / side  # pixels between lattice points
    ij = np.stack(np.divmod(np.arange(n_zones), side), axis=1).astype(float)
    centres = (ij + 0.5) * step + rng.uniform(-0.25, 0.25, (n_zones, 2)) * step
    x = ORIGIN[0] + centres[:, 1] * PIXEL
    y = ORIGIN[1] - centres[:, 0] * PIXEL
    half = 1.5 * PIXEL
    boxes = shapely.box(x - half, y - half, x + half, y + half)
    gpd.GeoDataFrame(geometry=boxes, crs=CRS).to_parquet(directory / "zones.parquet")
    print(
        f"/usr/bin/time -v zonal-dask {directory}/zones.parquet "
        f"{directory}/raster.tif {directory}/out.parquet"
    )


def huge_raster(directory: Path, tiles: int, tile: int, overlapping: bool) -> None:
    rng = np.random.default_rng(0)
    transform = Affine(PIXEL, 0, ORIGIN[0], 0, -PIXEL, ORIGIN[1])
    profile = {
        "driver": "GTiff",
        "height": tile,
        "width": tile,
        "count": 1,
        "dtype": "float32",
        "crs": CRS,
        "transform": transform,
        "nodata": -9999.0,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
    }
    source = directory / "tile.tif"
    with rasterio.open(source, "w", **profile) as dst:
        dst.write(rng.normal(100, 30, (tile, tile)).astype("float32"), 1)
    size = tiles * tile
    sources = "\n".join(
        f"""    <SimpleSource>
      <SourceFilename relativeToVRT="1">{source.name}</SourceFilename>
      <SourceBand>1</SourceBand>
      <SrcRect xOff="0" yOff="0" xSize="{tile}" ySize="{tile}"/>
      <DstRect xOff="{j * tile}" yOff="{i * tile}" xSize="{tile}" ySize="{tile}"/>
    </SimpleSource>"""
        for i in range(tiles)
        for j in range(tiles)
    )
    wkt = rasterio.crs.CRS.from_string(CRS).to_wkt()
    gt = ", ".join(map(repr, transform.to_gdal()))
    vrt = f"""<VRTDataset rasterXSize="{size}" rasterYSize="{size}">
  <SRS>{wkt}</SRS>
  <GeoTransform>{gt}</GeoTransform>
  <VRTRasterBand dataType="Float32" band="1" blockXSize="1024" blockYSize="1024">
    <NoDataValue>-9999</NoDataValue>
{sources}
  </VRTRasterBand>
</VRTDataset>
"""
    (directory / "raster.vrt").write_text(vrt)
    w = size * PIXEL
    x0, y1 = ORIGIN
    y0 = y1 - w
    h = w / 2  # one quadrant's side; each quadrant holds one huge polygon
    disc = shapely.Point(x0 + h / 2, y1 - h / 2).buffer(0.48 * h, quad_segs=256)
    ring_centre = shapely.Point(x0 + 1.5 * h, y1 - h / 2)
    ring = ring_centre.buffer(0.48 * h).difference(ring_centre.buffer(0.3 * h))
    band = shapely.LineString([(x0, y0), (x0 + h, y0 + h)]).buffer(0.02 * h)
    band = band.intersection(shapely.box(x0, y0, x0 + h, y0 + h))
    beyond = shapely.box(x0 + h + 1, y0 - w, x0 + 2 * w, y0 + h)  # past the edges
    zones = [disc, ring, band, beyond]
    if overlapping:  # and one more over everything: every pixel claimed twice
        zones.append(shapely.box(x0 - w, y0 - w, x0 + 2 * w, y1 + w))
    gpd.GeoDataFrame(geometry=zones, crs=CRS).to_file(directory / "zones.gpkg")
    print(
        f"/usr/bin/time -v zonal-dask {directory}/zones.gpkg "
        f"{directory}/raster.vrt {directory}/out.csv"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", choices=["many-zones", "huge-raster"])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--zones", type=int, default=1_000_000)
    parser.add_argument("--size", type=int, default=4000)
    parser.add_argument("--tiles", type=int, default=30)
    parser.add_argument("--tile", type=int, default=1024)
    parser.add_argument("--overlapping", action="store_true")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    if args.case == "many-zones":
        many_zones(args.dir, args.zones, args.size)
    else:
        huge_raster(args.dir, args.tiles, args.tile, args.overlapping)


if __name__ == "__main__":
    main()
