"""Geometries to pixels, one chunk at a time, under GDAL's pixel rules.

Geometries are moved once into the raster's pixel space with GDAL's own
arithmetic (``GDALInvGeoTransform``), keeping the axes' orientation, and each
chunk is burnt with a transform that is only a unit scale and an integer
offset. GDAL then sees, for every chunk, the pixel coordinates it computes
when it rasterizes a polygon over the whole raster with the raster's
transform: a pixel's zone does not depend on the chunking, and equals the
classic per-polygon recipe's answer even for pixel centres exactly on an edge.

Each chunk is burnt once with ``MergeAlg.add``, every zone adding
``(local index + 1) << 16 | 1``: a pixel's low bits count the zones that claim
it, its high bits name the zone when there is exactly one. Pixels claimed by
several zones (true overlaps, or a shared edge that GDAL's pixel-centre test
gives to both neighbours) are resolved by burning only the zones concerned
again, each alone, over the window of those pixels. So every zone gets exactly
the pixels it gets when rasterized on its own.

When many pixels of a chunk are claimed twice (overlapping zones, or shared
edges with ``all_touched``), resolving them one zone at a time would be slow:
the chunk's zones are then coloured into layers of mutually non-overlapping
zones (``overlap_layers``) and each layer is burnt once. The layers are chosen
per chunk, inside its task, so adjacent zones pay nothing for the possibility.
"""

from __future__ import annotations

import itertools
from functools import partial

import numpy as np
import shapely
from affine import Affine
from rasterio import features
from rasterio.enums import MergeAlg

from .errors import RasterError
from .kernels import decode_claims

NO_ZONE = -1
_COUNT_BITS = 16
# Burn values are doubles inside GDAL: a pixel's sum of (index+1) << 16 is exact
# below 2**53. Zones of one layer do not overlap, so only a few claim any pixel
# (on shared edges); with up to 2**26 zones and at most MAX_CLAIMS claims on a
# pixel the sum stays below 2**52. A pixel with more claims falls back to two
# plain burns.
MAX_ENCODED_ZONES = 1 << 26
MAX_CLAIMS = 1 << 10
# Above this many multiply claimed pixels in a chunk, colouring its zones into
# layers is cheaper than re-burning the claimants one by one.
MAX_RESOLVED_PIXELS = 4096
_POLYGONAL = (shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON)
ADD = MergeAlg.add


def orientation(transform: Affine) -> tuple[int, int]:
    """Signs of the pixel axes in the CRS: (1, -1) for a north-up raster."""
    return (1 if transform.a > 0 else -1), (1 if transform.e > 0 else -1)


def to_pixel_space(geometries: np.ndarray, transform: Affine) -> np.ndarray:
    """Map geometries from the raster's CRS to oriented pixel coordinates.

    A point at column ``c``, row ``r`` maps to ``(sx * c, sy * r)`` where
    ``(sx, sy) = orientation(transform)``. The arithmetic is GDAL's own
    (``-x0/dx + x * (1/dx)``); keeping the axes' signs keeps GDAL's tie-breaking
    for pixel centres that lie exactly on an edge.
    """
    if transform.b != 0 or transform.d != 0:
        raise RasterError(
            f"rotated or sheared geotransform {tuple(transform)[:6]} is not supported"
        )
    if transform.a == 0 or transform.e == 0:
        raise RasterError(f"degenerate geotransform {tuple(transform)[:6]}")
    ox, sx = -transform.c / transform.a, 1.0 / transform.a
    oy, sy = -transform.f / transform.e, 1.0 / transform.e
    flip_x, flip_y = orientation(transform)

    def forward(xy: np.ndarray) -> np.ndarray:
        columns, rows = ox + xy[:, 0] * sx, oy + xy[:, 1] * sy
        return np.column_stack((flip_x * columns, flip_y * rows))

    return shapely.transform(geometries, forward)


def window_transform(orient: tuple[int, int], row_off: int, col_off: int) -> Affine:
    """The transform GDAL burns a window at (row_off, col_off) with."""
    flip_x, flip_y = orient
    return Affine(flip_x, 0.0, flip_x * col_off, 0.0, flip_y, flip_y * row_off)


def burn_chunk(
    geometries: np.ndarray,
    offset: tuple[int, int],
    shape: tuple[int, int],
    orient: tuple[int, int] = (1, -1),
    all_touched: bool = False,
    layers: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Burn one chunk's zones: their labels per layer, and the sparse claims.

    ``geometries`` are in the oriented pixel space of ``to_pixel_space``;
    ``offset`` is the chunk's (row, column) in the raster; ``layers`` gives each
    zone's overlap layer (``overlap_layers``); when None, all zones are burnt
    in one layer and coloured into layers only if that leaves more than
    ``MAX_RESOLVED_PIXELS`` pixels claimed several times. A pixel belongs
    to a zone when its centre is inside, or with ``all_touched`` when the zone
    touches it at all (GDAL's two rules).

    Returns
    -------
    labels
        int32 (layers, rows, cols): the local index (position in
        ``geometries``) of the one zone of the layer that claims the pixel,
        or ``NO_ZONE`` when none or several do.
    extra_pixels, extra_zones
        int64 flat pixel index and int32 local zone of each claim on a pixel
        that several zones of one layer claim.
    """
    transform = window_transform(orient, *offset)
    shapes = geojson(geometries)
    burnt_once = None
    if layers is None:
        burnt_once = _burn(shapes, shape, transform, all_touched)
        layers = np.zeros(len(geometries), np.int64)
        if burnt_once[1].size > MAX_RESOLVED_PIXELS:
            layers = overlap_layers(geometries, all_touched)
    present = np.unique(layers)
    labels = np.full((max(1, present.size), *shape), NO_ZONE, np.int32)
    pixel_parts, zone_parts = [np.empty(0, np.int64)], [np.empty(0, np.int32)]
    for plane, layer in enumerate(present):
        members = np.flatnonzero(layers == layer)
        member_shapes = [shapes[m] for m in members]
        if burnt_once is not None and present.size == 1:
            local, claimed = burnt_once
        else:
            local, claimed = _burn(member_shapes, shape, transform, all_touched)
        if members.size == len(geometries):  # one layer: local indices are the zones'
            labels[plane] = local
        else:
            labels[plane] = np.where(local >= 0, members[np.maximum(local, 0)], NO_ZONE)
        pixels, owners = _resolve_overlaps(
            geometries[members],
            member_shapes,
            claimed,
            shape,
            offset,
            orient,
            all_touched,
        )
        pixel_parts.append(pixels)
        zone_parts.append(members[owners].astype(np.int32))
    return labels, np.concatenate(pixel_parts), np.concatenate(zone_parts)


def geojson(geometries: np.ndarray) -> list:
    """GeoJSON-like dicts of polygonal geometries, built in bulk for rasterio.

    rasterio asks each shapely geometry for its ``__geo_interface__``, which
    builds the coordinate tuples one geometry at a time in Python: for many
    small zones that was most of the rasterizing time. Slicing one list of all
    coordinates gives GDAL the same coordinates about 3 times faster. Anything
    other than (Multi)Polygons is passed through for rasterio to convert.
    """
    types = shapely.get_type_id(geometries)
    if len(geometries) == 0 or not np.isin(types, _POLYGONAL).all():
        return list(geometries)
    kind, coords, offsets = shapely.to_ragged_array(geometries)
    xy = coords.tolist()
    ring_ends = offsets[0].tolist()
    rings = [xy[a:b] for a, b in itertools.pairwise(ring_ends)]
    polygon_ends = offsets[1].tolist()
    polygons = [rings[a:b] for a, b in itertools.pairwise(polygon_ends)]
    if kind == shapely.GeometryType.POLYGON:
        return [{"type": "Polygon", "coordinates": p} for p in polygons]
    part_ends = offsets[2].tolist()
    return [
        {"type": "MultiPolygon", "coordinates": polygons[a:b]}
        for a, b in itertools.pairwise(part_ends)
    ]


def _burn(
    shapes: list,
    shape: tuple[int, int],
    transform: Affine,
    all_touched: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Labels of the singly claimed pixels, and the flat indices of the others.

    ``shapes`` are ``geojson`` dicts (or anything rasterio rasterizes).
    """
    k = len(shapes)
    if k == 0:
        return np.full(shape, NO_ZONE, np.int32), np.empty(0, np.int64)
    burn = partial(
        features.rasterize,
        out_shape=shape,
        transform=transform,
        all_touched=all_touched,
    )
    if k <= MAX_ENCODED_ZONES:
        codes = [((z + 1) << _COUNT_BITS) | 1 for z in range(k)]
        added = burn(zip(shapes, codes, strict=True), merge_alg=ADD, dtype="int64")
        labels, claimed, exact = decode_claims(added, _COUNT_BITS, MAX_CLAIMS)
        if exact:
            return labels, claimed
    # Too many zones or claims for the one-burn encoding: a label and a count burn.
    labels = burn(zip(shapes, range(k), strict=True), fill=NO_ZONE, dtype="int32")
    count = burn(((g, 1) for g in shapes), merge_alg=ADD, dtype="int32")
    labels[count > 1] = NO_ZONE
    return labels, np.flatnonzero(count > 1)


def _resolve_overlaps(
    geometries: np.ndarray,
    shapes: list,
    pixels: np.ndarray,
    shape: tuple[int, int],
    offset: tuple[int, int],
    orient: tuple[int, int],
    all_touched: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Every (pixel, zone) claim on pixels that several zones cover.

    Only the zones whose bounds hold one of those pixels are burnt again, each
    alone and only over the window of its candidate pixels.
    """
    if pixels.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int32)
    rows, cols = np.divmod(pixels, shape[1])
    rows_abs, cols_abs = rows + offset[0], cols + offset[1]
    # candidates: zones whose bounds meet the pixel's square (not only its centre:
    # with all_touched a zone can claim a pixel whose centre is outside its bounds)
    xs = np.sort([orient[0] * cols_abs, orient[0] * (cols_abs + 1)], axis=0)
    ys = np.sort([orient[1] * rows_abs, orient[1] * (rows_abs + 1)], axis=0)
    squares = shapely.box(xs[0], ys[0], xs[1], ys[1])
    point_index, zone_index = shapely.STRtree(geometries).query(squares)
    order = np.argsort(zone_index, kind="stable")
    point_index, zone_index = point_index[order], zone_index[order]
    starts = np.flatnonzero(np.diff(zone_index, prepend=-1))
    found_pixels, found_zones = [], []
    for zone, candidates in zip(
        zone_index[starts], np.split(point_index, starts[1:]), strict=True
    ):
        r, c = rows_abs[candidates], cols_abs[candidates]
        r0, c0 = int(r.min()), int(c.min())
        mask = features.rasterize(
            [(shapes[zone], 1)],
            out_shape=(int(r.max()) + 1 - r0, int(c.max()) + 1 - c0),
            transform=window_transform(orient, r0, c0),
            fill=0,
            all_touched=all_touched,
            dtype="uint8",
        )
        hit = candidates[mask[r - r0, c - c0] == 1]
        found_pixels.append(pixels[hit])
        found_zones.append(np.full(hit.size, zone, np.int32))
    if not found_pixels:
        return np.empty(0, np.int64), np.empty(0, np.int32)
    return np.concatenate(found_pixels), np.concatenate(found_zones)


def overlap_layers(
    pixel_geometries: np.ndarray, all_touched: bool = False
) -> np.ndarray:
    """Colour zones into layers of mutually non-overlapping zones (greedy).

    Two zones conflict when their interiors meet, or with ``all_touched`` when
    they touch at all (they then share the pixels along their common edge).
    Zones in conflict with none, usually nearly all, go to layer 0 without a
    look; the rest take, in order, the lowest layer none of their neighbours
    holds. Each layer is burnt once per chunk, so the rasterizer's cost grows
    with the number of layers, not with the number of overlapping zones.
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
