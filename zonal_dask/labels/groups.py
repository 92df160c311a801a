"""``group_by``: the features sharing a value pooled into one zone.

A zone is then the union of its features, without dissolving them: each
feature is burnt (or its coverage computed) as given, and each chunk maps its
features to their zones before any statistic is computed. A pixel claimed by
two features of one zone is claimed once; coverage fractions of a zone's
features are added cell by cell before exactextract's rules (threshold,
``coverage="none"``, areas) apply, so the numbers are those of the dissolved
zone. Features of one zone whose interiors overlap are united beforehand
(only those), since their fractions would not add up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
import shapely

from ..coverage.weights import LINE_TYPES
from ..errors import GeometryTypeError, IdFieldError, StatisticError, plain
from ..zones.densify import size
from ..zones.read import PixelZones
from .chunk_tasks import ChunkTask


def pool_zones(pixel: PixelZones, source: str) -> PixelZones:
    """``pixel``'s features as parts of the zones its index names.

    ``pixel.index`` holds each feature's group (``zones_on_grid`` with
    ``group_by``). Returns the parts (features, overlapping ones of a zone
    united) with ``zone_of`` giving each part's zone, the zones named by the
    sorted distinct groups.

    Raises
    ------
    IdFieldError
        If a feature has no key.
    """
    keys = pixel.index
    if keys.hasnans:
        position = int(np.flatnonzero(keys.isna())[0])
        raise IdFieldError(
            f"{source}: field {keys.name!r} is empty for feature {position} "
            "(0-based); every feature needs a group"
        )
    codes, names = pd.factorize(keys, sort=True)
    geometries = pixel.geometries.copy()
    present = np.flatnonzero(geometries != None)  # noqa: E711
    for members in _overlapping(geometries[present], codes[present]):
        first, *rest = present[members]
        geometries[first] = shapely.union_all(geometries[present[members]])
        geometries[rest] = None
    keep = np.flatnonzero(geometries != None)  # noqa: E711
    return replace(
        pixel,
        source_geometries=geometries[keep],
        transform=None,
        known=None,
        index=pd.Index(names, name=keys.name),
        zone_of=codes[keep].astype(np.int64),
        outside=None if pixel.outside is None else pixel.outside[keep],
    )


def _overlapping(geometries: np.ndarray, codes: np.ndarray) -> list[np.ndarray]:
    """Sets of features of one zone connected by overlapping interiors."""
    a, b = shapely.STRtree(geometries).query(geometries, predicate="intersects")
    keep = (a < b) & (codes[a] == codes[b])
    a, b = a[keep], b[keep]
    if a.size:
        inner = ~shapely.touches(geometries[a], geometries[b])
        a, b = a[inner], b[inner]
    if a.size == 0:
        return []
    parent = np.arange(len(geometries))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return int(i)

    for i, j in zip(a.tolist(), b.tolist(), strict=True):
        parent[root(i)] = root(j)
    roots = np.array([root(i) for i in np.unique(np.concatenate([a, b]))])
    members = np.unique(np.concatenate([a, b]))
    return [members[roots == r] for r in np.unique(roots)]


def require_one_kind(geometries: np.ndarray, groups: pd.Index, source: str) -> None:
    """Refuse a group of lines and polygons: its cells' weights would mix
    lengths and fractions (exactextract refuses such a geometry too)."""
    linear = pd.Series(np.isin(shapely.get_type_id(geometries), LINE_TYPES))
    kinds = linear.groupby(np.asarray(groups), dropna=True).nunique()
    if (kinds > 1).any():
        raise GeometryTypeError(
            f"{source}: group {plain(kinds.index[kinds > 1][0])!r} pools lines "
            "with polygons; coverage weighting takes one kind per zone"
        )


def pool_claims(
    pixels: np.ndarray,
    parts: np.ndarray,
    weights: np.ndarray | None,
    zone_of_part: np.ndarray,
    limit: np.ndarray | float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Claims of parts as claims of their zones: one per (pixel, zone).

    ``parts`` and the result's zones are local indices; ``zone_of_part``
    maps the first to the second. Weights (coverage fractions) of one
    zone's parts on a pixel are added, at most ``limit`` (1, or per zone:
    a line's lengths have none); without weights a pixel counts once.
    """
    zones = zone_of_part[parts]
    key = pixels * (int(zone_of_part.max(initial=0)) + 1) + zones
    unique, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    pooled = None
    if weights is not None:
        cap = limit if np.isscalar(limit) else np.asarray(limit)[zones[first]]
        pooled = np.minimum(np.bincount(inverse, weights=weights), cap)
    del unique
    return pixels[first], zones[first].astype(np.int32), pooled


def pool_layers(
    labels: np.ndarray,
    extra_pixels: np.ndarray,
    extra_parts: np.ndarray,
    zone_of_part: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Burnt layers and sparse claims of parts as those of their zones.

    Returns one layer of the pixels a single zone claims and the sparse
    claims of the pixels several zones claim (each zone once).
    """
    shape = labels.shape[1:]
    layer_pixels = np.flatnonzero(labels >= 0)
    pixels = np.concatenate([layer_pixels % (shape[0] * shape[1]), extra_pixels])
    parts = np.concatenate([labels.reshape(-1)[layer_pixels], extra_parts])
    pixels, zones, _ = pool_claims(pixels, parts, None, zone_of_part)
    claims = np.bincount(pixels, minlength=shape[0] * shape[1])
    single = claims[pixels] == 1
    layer = np.full(shape[0] * shape[1], -1, np.int32)
    layer[pixels[single]] = zones[single]
    return layer.reshape(1, *shape), pixels[~single], zones[~single]


def zone_fields(
    pixel: PixelZones,
    tasks: Sequence[ChunkTask],
    target: int,
    *,
    groups: bool = False,
    outside: bool = False,
) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
    """What is known per zone before reading pixels, for zones made of parts
    or not: the value group of each zone (``PixelZones.groups``; a zone of
    several parts takes its first part's) and the ``outside`` field."""
    zone_groups, fields = None, {}
    if pixel.zone_of is None:
        if groups:
            zone_groups = pixel.groups(tasks, target)
        if outside:
            fields["outside"] = pixel.outside_fraction()
        return zone_groups, fields
    n = len(pixel.index)
    if groups:
        zone_groups = np.zeros(n, np.int64)
        zone_groups[pixel.zone_of[::-1]] = pixel.groups(tasks, target)[::-1]
    if outside:
        if pixel.outside is not None and not np.isnan(pixel.outside).all():
            raise StatisticError(
                "outside_fraction with group_by: some zones were clipped to the "
                "raster's surroundings when reprojected, so the share of their "
                "groups beyond it is unknown; reproject the zones first"
            )
        area = np.bincount(
            pixel.zone_of, np.nan_to_num(size(pixel.geometries, pixel.pixel_size)), n
        )
        inside = np.bincount(pixel.zone_of, pixel.areas_inside(pixel.pixel_size), n)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = 1 - inside / area
        # as PixelZones.outside_fraction: a rounding residue is no share
        fields["outside"] = np.where(
            area > 0, np.where(np.abs(share) < 1e-9, 0.0, share), np.nan
        )
    return zone_groups, fields
