"""Deterministic sample data for ``zonal-dask demo``.

:func:`make_sample` writes two files into a directory:

``raster.tif``
    A single-band float32 GeoTIFF (EPSG:32633, 30 m pixels, tiled 256x256,
    DEFLATE) holding a smooth terrain-like surface with values of roughly
    0..1000 plus a little seeded noise.  A circular "lake" and a thin diagonal
    band are set to nodata (-9999).

``zones.gpkg``
    A GeoPackage layer ``zones`` partitioning a rectangle slightly larger than
    the raster into Voronoi cells of seeded random points.  A few cells have a
    hole filled by a separate "island" feature and a few features are
    MultiPolygons made of two cells that do not touch, so the layer exercises
    interiors and multi-part geometries while staying a partition.

The same arguments always produce the same geometry coordinates and raster
values.
"""

from __future__ import annotations

import os
import pathlib

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from rasterio.transform import from_origin
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

__all__ = ["make_sample"]

CRS = "EPSG:32633"
PIXEL_SIZE = 30.0
X0 = 500_000.0
Y0 = 5_000_000.0
NODATA = -9999.0
BLOCK_SIZE = 256
ZONES_MARGIN = 0.03  # fraction of the raster extent added around the zones
ISLAND_RADIUS = 0.5  # island radius as a fraction of the centroid-edge distance
NOISE_SIGMA = 2.0


def make_sample(
    directory: str | os.PathLike[str],
    *,
    size: int = 2048,
    n_zones: int = 300,
    seed: int = 0,
) -> tuple[pathlib.Path, pathlib.Path]:
    """Write zones.gpkg and raster.tif into directory (created if missing).

    Parameters
    ----------
    directory
        Output directory; it is created (with parents) if missing.  Existing
        ``zones.gpkg`` and ``raster.tif`` files in it are overwritten.
    size
        Width and height of the raster in pixels (at least 16).
    n_zones
        Number of zone features to write (at least 8).
    seed
        Seed for :func:`numpy.random.default_rng`; the same arguments always
        give the same geometries and raster values.

    Returns
    -------
    tuple of pathlib.Path
        ``(zones_path, raster_path)``.

    Raises
    ------
    ValueError
        If ``size`` or ``n_zones`` is too small.
    """
    if size < 16:
        raise ValueError(f"size must be at least 16, got {size}")
    if n_zones < 8:
        raise ValueError(f"n_zones must be at least 8, got {n_zones}")
    out = pathlib.Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    zones_rng, raster_rng = np.random.default_rng(seed).spawn(2)
    zones_path = write_zones(out / "zones.gpkg", size, n_zones, zones_rng)
    raster_path = write_raster(out / "raster.tif", size, raster_rng)
    return zones_path, raster_path


# --------------------------------------------------------------------------- zones


def write_zones(
    path: pathlib.Path, size: int, n_zones: int, rng: np.random.Generator
) -> pathlib.Path:
    """Build the zone features and write them as the GeoPackage layer "zones"."""
    geoms = make_zone_geometries(size, n_zones, rng)
    frame = gpd.GeoDataFrame(
        {
            "name": [f"zone-{i:04d}" for i in range(1, len(geoms) + 1)],
            "area_km2": shapely.area(geoms) / 1e6,
        },
        geometry=geoms,
        crs=CRS,
    )
    if path.exists():
        path.unlink()
    frame.to_file(
        path,
        layer="zones",
        driver="GPKG",
        engine="pyogrio",
        promote_to_multi=False,
    )
    return path


def make_zone_geometries(
    size: int, n_zones: int, rng: np.random.Generator
) -> np.ndarray:
    """Return ``n_zones`` valid (Multi)Polygons partitioning the zones rectangle.

    Each holed cell adds an island feature and each MultiPolygon merges two
    cells into one feature; as many of each are made, so ``n_zones`` Voronoi
    cells give exactly ``n_zones`` features.
    """
    n_special = min(10, max(1, n_zones // 50))
    cells = voronoi_cells(zones_box(size), n_zones, rng)
    candidates = shuffled_inner_first(cells, size, rng)
    holed, candidates = candidates[:n_special], candidates[n_special:]
    pairs = pick_disjoint_pairs(cells, candidates, n_special)
    holed = holed[: len(pairs)]  # keep the feature count at exactly n_zones
    used = set(holed) | {i for pair in pairs for i in pair}
    geoms: list[BaseGeometry] = [cell for i, cell in enumerate(cells) if i not in used]
    for i in holed:
        geoms.extend(punch_island(cells[i]))
    geoms.extend(MultiPolygon([cells[a], cells[b]]) for a, b in pairs)
    return sort_by_position(shapely.orient_polygons(np.array(geoms, dtype=object)))


def raster_box(size: int) -> Polygon:
    """Return the footprint of the raster."""
    extent = size * PIXEL_SIZE
    return shapely.box(X0, Y0 - extent, X0 + extent, Y0)


def zones_box(size: int) -> Polygon:
    """Return the raster footprint enlarged by ``ZONES_MARGIN`` on every side."""
    extent = size * PIXEL_SIZE
    margin = ZONES_MARGIN * extent
    return shapely.box(
        X0 - margin, Y0 - extent - margin, X0 + extent + margin, Y0 + margin
    )


def voronoi_cells(box: Polygon, n: int, rng: np.random.Generator) -> np.ndarray:
    """Return Voronoi cells of ``n`` random points clipped to ``box``.

    The cells keep the order of the points, which are drawn uniformly in the
    box, so every clipped cell is a non-empty convex polygon.
    """
    xmin, ymin, xmax, ymax = box.bounds
    xy = rng.uniform((xmin, ymin), (xmax, ymax), size=(n, 2))
    points = shapely.multipoints(xy)
    diagram = shapely.voronoi_polygons(points, extend_to=box, ordered=True)
    return shapely.intersection(shapely.get_parts(diagram), box)


def shuffled_inner_first(
    cells: np.ndarray, size: int, rng: np.random.Generator
) -> list[int]:
    """Return cell indices in random order, cells inside the raster first."""
    inner = shapely.contains_properly(raster_box(size), cells)
    order = [int(i) for i in rng.permutation(len(cells))]
    return sorted(order, key=lambda i: not inner[i])


def pick_disjoint_pairs(
    cells: np.ndarray, candidates: list[int], n_pairs: int
) -> list[tuple[int, int]]:
    """Greedily pair candidate cells that do not touch each other."""
    pairs: list[tuple[int, int]] = []
    free = list(candidates)
    while free and len(pairs) < n_pairs:
        first = free.pop(0)
        partner = next(
            (j for j in free if shapely.distance(cells[first], cells[j]) > 0), None
        )
        if partner is not None:
            free.remove(partner)
            pairs.append((first, partner))
    return pairs


def punch_island(cell: Polygon) -> tuple[Polygon, Polygon]:
    """Split a convex cell into a holed polygon and the island filling the hole."""
    centroid = cell.centroid
    radius = ISLAND_RADIUS * cell.exterior.distance(centroid)
    island = centroid.buffer(radius, quad_segs=8)
    holed = Polygon(cell.exterior.coords, [island.exterior.coords])
    return holed, island


def sort_by_position(geoms: np.ndarray) -> np.ndarray:
    """Order geometries north to south, then west to east, by centroid."""
    centroids = shapely.centroid(geoms)
    order = np.lexsort((shapely.get_x(centroids), -shapely.get_y(centroids)))
    return geoms[order]


# -------------------------------------------------------------------------- raster


def write_raster(
    path: pathlib.Path, size: int, rng: np.random.Generator
) -> pathlib.Path:
    """Write the sample surface as a tiled, DEFLATE-compressed GeoTIFF."""
    data = terrain(size) + noise(size, rng)
    np.clip(data, 0.0, 1000.0, out=data)
    data[nodata_mask(size)] = NODATA
    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": 1,
        "dtype": "float32",
        "crs": CRS,
        "transform": from_origin(X0, Y0, PIXEL_SIZE, PIXEL_SIZE),
        "nodata": NODATA,
        "tiled": True,
        "blockxsize": BLOCK_SIZE,
        "blockysize": BLOCK_SIZE,
        "compress": "deflate",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
    return path


def pixel_centres(size: int) -> np.ndarray:
    """Return pixel-centre positions normalised to 0..1 across the raster."""
    return (np.arange(size, dtype=np.float64) + 0.5) / size


def terrain(size: int) -> np.ndarray:
    """Return a smooth float32 surface with values of roughly 70..975.

    The surface is a sum of separable sine/cosine products of the normalised
    column (``u``) and row (``v``) positions plus a gentle north-south slope,
    so it looks alike at every ``size``.
    """
    u = pixel_centres(size)[np.newaxis, :]
    v = pixel_centres(size)[:, np.newaxis]
    tau = 2.0 * np.pi
    surface = (
        470.0
        + 265.0 * np.sin(tau * (1.3 * u + 0.2)) * np.cos(tau * 0.9 * v)
        + 155.0 * np.cos(tau * 2.7 * u) * np.sin(tau * (2.1 * v + 0.3))
        + 85.0 * np.sin(tau * 5.3 * u + 1.0) * np.sin(tau * 4.7 * v)
        + 145.0 * (0.5 - v)
    )
    return surface.astype(np.float32)


def noise(size: int, rng: np.random.Generator) -> np.ndarray:
    """Return small seeded Gaussian float32 noise."""
    return NOISE_SIGMA * rng.standard_normal((size, size), dtype=np.float32)


def nodata_mask(size: int) -> np.ndarray:
    """Return a boolean mask of a circular lake plus a thin diagonal band.

    Together they cover about 3 % of the pixels.
    """
    rows = np.arange(size)[:, np.newaxis]
    cols = np.arange(size)[np.newaxis, :]
    lake_row, lake_col, lake_radius = 0.30 * size, 0.68 * size, 0.09 * size
    lake = (rows - lake_row) ** 2 + (cols - lake_col) ** 2 <= lake_radius**2
    half_width = size // 400
    band = np.abs(cols - rows - size // 8) <= half_width
    return lake | band
