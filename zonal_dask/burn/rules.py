"""Geometries to pixels, one chunk at a time, under GDAL's pixel rules.

Zones are moved once into the raster's pixel space with GDAL's own
arithmetic (``GDALInvGeoTransform``), keeping the axes' orientation
(``to_pixel_space``). Each chunk's zones are then burnt by
``claims.burn_claims``, GDAL's rasterization algorithms compiled with
numba (no GIL held), computing every pixel as GDAL computes it over the whole
raster. So a zone gets exactly the pixels GDAL gives it when it is rasterized
alone over the raster (``rasterio.features.rasterize``), whatever the
chunking, its neighbours or the scheduler. The rules:

* Polygons: a pixel belongs to a polygon when its centre is inside (with
  GDAL's rounding for centres exactly on an edge); with ``all_touched``,
  also every pixel its rings pass through.
* Lines: the pixels of Bresenham's line between the pixels holding the
  vertices; with ``all_touched``, every pixel the line passes through.
* Points: the pixel holding the point, under either rule.

GDAL splits a raster into strips of rows when its block cache is smaller than
the raster, and its all-touched rule then changes at each strip's edge; the
answer here is GDAL's in one window, as for any raster that fits its cache.

A chunk's claims are one label plane (a zone claiming the pixel) and sparse
(pixel, zone) claims for every further zone on a pixel: overlaps, nested
zones and shared edges cost only their extra claims. When the sparse claims
of a chunk would pass ``sparse_budget`` (very deep overlaps), the chunk is
burnt in pieces, each a plane and at most that many claims, so its memory
does not grow with the depth (``labels.polygon_labels``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import shapely
from affine import Affine

from ..errors import RasterError
from .prepare import LINE, POINT, POLYGON, burn_claims

NO_ZONE = -1
# shapely's type id to the kind of part burn/prepare.py burns (-1: not burnt)
_KINDS = np.full(8, -1, np.int8)
_KINDS[[0, 4]] = POINT
_KINDS[[1, 5]] = LINE
_KINDS[[3, 6]] = POLYGON
UNLIMITED = np.iinfo(np.int64).max
# How far (in pixels) from its geometry a zone can claim a pixel, with margin:
# GDAL's all-touched walk takes a segment within 0.01 pixel of a pixel edge as
# running along it; Bresenham's line joins the pixels holding a line's
# vertices (half a pixel from the line at most). A chunk's task holds every
# zone this near (``reach``).
REACH = 0.1
LINE_REACH = 2.0


def orientation(transform: Affine) -> tuple[int, int]:
    """Signs of the pixel axes in the CRS: (1, -1) for a north-up raster."""
    return (1 if transform.a > 0 else -1), (1 if transform.e > 0 else -1)


def to_pixel_space(geometries: np.ndarray, transform: Affine) -> np.ndarray:
    """Map geometries from the raster's CRS to oriented pixel coordinates.

    A point at column ``c``, row ``r`` maps to ``(sx * c, sy * r)`` where
    ``(sx, sy) = orientation(transform)``, by ``pixel_xy``. This copies every
    geometry: the burner reads ``zones.arrays.ZoneArrays``, which move the
    coordinates alone; shapely geometries in pixel space are for the stages
    that need them (areas, overlaps, coverage).
    """

    def forward(xy: np.ndarray) -> np.ndarray:
        return pixel_xy(np.array(xy, np.float64), transform)

    return shapely.transform(geometries, forward)


def pixel_xy(xy: np.ndarray, transform: Affine) -> np.ndarray:
    """Move (n, 2) coordinates in the raster's CRS to its oriented pixel space,
    in place, and return them.

    The arithmetic is GDAL's own (``GDALInvGeoTransform``: ``-x0/dx + x *
    (1/dx)``); keeping the axes' signs keeps each ring's orientation, which
    GDAL's rule for edges on pixel centres depends on.
    """
    if transform.b != 0 or transform.d != 0:
        raise RasterError(
            f"rotated or sheared geotransform {tuple(transform)[:6]} is not supported"
        )
    if transform.a == 0 or transform.e == 0:
        raise RasterError(f"degenerate geotransform {tuple(transform)[:6]}")
    origin = (-transform.c / transform.a, -transform.f / transform.e)
    scale = (1.0 / transform.a, 1.0 / transform.e)
    for axis, flip in enumerate(orientation(transform)):
        column = xy[:, axis]
        column *= scale[axis]
        column += origin[axis]  # origin + x * scale, as GDAL adds them
        if flip < 0:
            np.negative(column, out=column)
    return xy


class Flat(NamedTuple):
    """Geometries as flat arrays for the compiled burner.

    Zone ``z`` is parts ``zone_parts[z]:zone_parts[z + 1]``; part ``p`` has
    kind ``part_kind[p]`` (``claims.POLYGON``, ``LINE``, ``POINT``) and paths
    ``part_paths[p]:part_paths[p + 1]`` (a polygon's rings, exterior first; a
    line; a point); path ``q`` is the rows ``path_coords[q]:path_coords[q + 1]``
    of ``xy``.
    """

    zone_parts: np.ndarray
    part_kind: np.ndarray
    part_paths: np.ndarray
    path_coords: np.ndarray
    xy: np.ndarray


def flatten(geometries: np.ndarray) -> Flat:
    """``Flat`` arrays of (Multi)Polygons, (Multi)LineStrings and (Multi)Points
    (None and empty geometries have no parts), in a few vectorised calls."""
    geometries = np.asarray(geometries, dtype=object)
    parts, part_zone = shapely.get_parts(geometries, return_index=True)
    present = ~shapely.is_empty(parts)
    parts, part_zone = parts[present], part_zone[present]
    kind = _KINDS[shapely.get_type_id(parts)]
    if (kind < 0).any():
        raise TypeError("only polygons, lines and points can be burnt")
    polygons = np.flatnonzero(kind == POLYGON)
    rings, ring_of = shapely.get_rings(parts[polygons], return_index=True)
    others = np.flatnonzero(kind != POLYGON)
    path_part = np.concatenate([polygons[ring_of], others])
    order = np.argsort(path_part, kind="stable")  # rings keep their order
    paths = np.concatenate([rings, parts[others]])[order]
    xy, path_of = shapely.get_coordinates(paths, return_index=True)

    def starts(owner: np.ndarray, n: int) -> np.ndarray:
        return np.searchsorted(owner, np.arange(n + 1)).astype(np.int64)

    return Flat(
        zone_parts=starts(part_zone, len(geometries)),
        part_kind=kind.astype(np.int64),
        part_paths=starts(path_part[order], len(parts)),
        path_coords=starts(path_of, len(paths)),
        xy=np.ascontiguousarray(xy, dtype=np.float64),
    )


def reach(geometries: np.ndarray) -> np.ndarray:
    """How far (in pixels) beyond each geometry its zone may claim pixels."""
    lines = shapely.get_dimensions(geometries) == 1
    return np.where(lines, LINE_REACH, REACH)


def sparse_budget(shape: tuple[int, int]) -> int:
    """Sparse claims a piece of a chunk may hold before the next piece:
    half a claim per pixel, so a piece weighs at most about 26 bytes a pixel."""
    return max(1024, shape[0] * shape[1] // 2)


def burn_chunk(
    geometries: np.ndarray,
    offset: tuple[int, int],
    shape: tuple[int, int],
    raster_shape: tuple[int, int],
    orient: tuple[int, int] = (1, -1),
    all_touched: bool = False,
    layers: np.ndarray | None = None,
    first: int = 0,
    budget: int = UNLIMITED,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Burn one chunk's zones, from zone ``first`` until ``budget`` is spent.

    ``geometries`` are in the oriented pixel space of ``to_pixel_space``;
    ``offset`` and ``shape`` place the chunk in a raster of ``raster_shape``.
    ``layers`` puts each zone's pixels in a plane of its own layer when free
    (``overlap_layers``, for stored plans); by default every zone shares one
    plane.

    Returns
    -------
    labels
        int32 (planes, rows, cols): the local index (position in
        ``geometries``) of a zone claiming the pixel, or ``NO_ZONE``.
    extra_pixels, extra_zones
        int64 flat pixel index and int32 local zone of every further claim.
    next_zone
        The first zone left for a further piece, ``len(geometries)`` if none.
    """
    return burn_flat(
        flatten(geometries),
        offset,
        shape,
        raster_shape,
        orient,
        all_touched,
        layers,
        first,
        budget,
    )


def burn_flat(
    flat: Flat,
    offset: tuple[int, int],
    shape: tuple[int, int],
    raster_shape: tuple[int, int],
    orient: tuple[int, int] = (1, -1),
    all_touched: bool = False,
    layers: np.ndarray | None = None,
    first: int = 0,
    budget: int = UNLIMITED,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``burn_chunk`` of zones given as ``Flat`` arrays."""
    n = len(flat.zone_parts) - 1
    if layers is None:
        plane, n_planes = np.zeros(n, np.int64), 1
    else:
        present, plane = np.unique(layers, return_inverse=True)
        plane, n_planes = plane.astype(np.int64), max(1, present.size)
    labels, pixels, zones, next_zone = burn_claims(
        *flat,
        np.array(orient, np.float64),
        raster_shape,
        (*offset, *shape),
        all_touched,
        plane,
        n_planes,
        first,
        budget,
    )
    return labels, pixels, zones, int(next_zone)


def overlap_layers(
    pixel_geometries: np.ndarray, all_touched: bool = False
) -> np.ndarray:
    """Colour zones into layers of mutually non-overlapping zones (greedy).

    Two zones conflict when their interiors meet, or with ``all_touched`` when
    they touch at all (they then share the pixels along their common edge).
    Zones in conflict with none, usually nearly all, go to layer 0 without a
    look; the rest take, in order, the lowest layer none of their neighbours
    holds. A stored plan keeps one plane per layer (``labels/plan.py``); a pixel two
    zones of one layer claim keeps the second as a sparse claim.
    """
    n = len(pixel_geometries)
    tree = shapely.STRtree(pixel_geometries)
    a, b = tree.query(pixel_geometries, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    if not all_touched and a.size:
        touching = shapely.touches(pixel_geometries[a], pixel_geometries[b])
        a, b = a[~touching], b[~touching]
    layers = np.zeros(n, np.int64)
    if a.size == 0:
        return layers
    neighbours: dict[int, list[int]] = {}
    for i, j in zip(a.tolist(), b.tolist(), strict=True):
        neighbours.setdefault(i, []).append(j)
        neighbours.setdefault(j, []).append(i)
    for zone in sorted(neighbours):
        taken = {int(layers[other]) for other in neighbours[zone] if other < zone}
        layer = 0
        while layer in taken:
            layer += 1
        layers[zone] = layer
    return layers
