"""Zones in a raster's oriented pixel space: what every later stage reads.

``PixelZones`` holds the zones as flat arrays (``zones.arrays``) and makes
shapely geometries of them only for the stages that ask (areas, overlaps,
coverage); what is known of a zone before any pixel is read lives here too:
the share of it beyond the raster, and its value group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import shapely

from ..burn.rules import to_pixel_space
from ..labels.chunk_tasks import ChunkTask
from .arrays import ZoneArrays
from .densify import size

if TYPE_CHECKING:
    from affine import Affine


@dataclass(frozen=True)
class PixelZones:
    """Zones in a raster's oriented pixel space, one per input feature.

    ``source_geometries[i]`` is zone ``i`` (None for a null or empty
    geometry) in the raster's CRS, moved to pixel space by ``transform``
    (None: they are in pixel space already): as flat arrays for the burner
    (``arrays``, one affine on one array) and, only for the stages that ask,
    as shapely geometries (``geometries``). Zones read without shapely
    objects (``zones.table``) have no ``source_geometries`` (None): only
    ``known``, their arrays in pixel space. ``index`` names the zones,
    ``shape`` and ``orient`` are the raster's (``burn.orientation``),
    ``pixel_size`` its pixels' width and height in the CRS (lines' lengths
    are measured there); ``outside`` holds, for zones
    clipped when they were reprojected, the share of them beyond the raster
    (NaN for the others). With ``zone_of``, the geometries are parts of the
    zones instead (``pooling.pool_zones``): part ``i`` of zone ``zone_of[i]``.
    """

    source_geometries: np.ndarray | None
    index: pd.Index
    shape: tuple[int, int]
    orient: tuple[int, int]
    pixel_size: tuple[float, float] = (1.0, 1.0)
    outside: np.ndarray | None = None
    zone_of: np.ndarray | None = None
    transform: Affine | None = None
    known: ZoneArrays | None = None

    @cached_property
    def arrays(self) -> ZoneArrays:
        """The zones in pixel space as flat arrays (``zones.arrays``; made
        when they were read, ``known``)."""
        if self.known is not None:
            return self.known
        assert self.source_geometries is not None
        return ZoneArrays.of(self.source_geometries, self.transform)

    @cached_property
    def geometries(self) -> np.ndarray:
        """The zones in pixel space as shapely geometries (copies them all:
        for areas, overlaps and coverage, not for burning)."""
        if self.source_geometries is None:
            return self.arrays.geometries()
        if self.transform is None:
            return self.source_geometries
        return to_pixel_space(self.source_geometries, self.transform)

    @cached_property
    def _inside(self) -> np.ndarray:
        """Each zone clipped to the raster (outside fractions and value groups
        both measure it: clipped once)."""
        xs = sorted((0, self.orient[0] * self.shape[1]))
        ys = sorted((0, self.orient[1] * self.shape[0]))
        return shapely.intersection(
            self.geometries, shapely.box(xs[0], ys[0], xs[1], ys[1])
        )

    def any_meets(self) -> bool:
        """Whether any zone's bounding box meets the raster (a zone none of
        whose box does holds no pixel under any rule)."""
        xs = sorted((0, self.orient[0] * self.shape[1]))
        ys = sorted((0, self.orient[1] * self.shape[0]))
        b = self.arrays.bounds()  # NaN for None and empty
        meets = (b[:, 0] <= xs[1]) & (b[:, 2] >= xs[0])
        return bool((meets & (b[:, 1] <= ys[1]) & (b[:, 3] >= ys[0])).any())

    def areas_inside(self, scale: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
        """Size of each zone inside the raster (0 for none): the area of a
        polygon in pixels, the length of a line in pixels scaled by ``scale``,
        the number of points."""
        return np.nan_to_num(size(self._inside, scale))

    def outside_fraction(self) -> np.ndarray:
        """Share of each zone beyond the raster, by area, length in the CRS
        or number of points (NaN for empty zones)."""
        area = np.nan_to_num(size(self.geometries, self.pixel_size))
        with np.errstate(invalid="ignore", divide="ignore"):
            share = 1 - self.areas_inside(self.pixel_size) / area
        # a zone inside the raster gives a rounding residue, not a share
        share = np.where(area > 0, np.where(np.abs(share) < 1e-9, 0.0, share), np.nan)
        if self.outside is None:
            return share
        return np.where(np.isnan(self.outside), share, self.outside)

    def groups(self, tasks: Sequence[ChunkTask], target: int) -> np.ndarray:
        """Value groups: nearby zones, about ``target`` pixels per group.

        Zones are taken in the order of the first chunk they meet, so a group
        spans few chunks and its task holds about ``target`` values (or one
        zone's, when that zone alone is bigger).
        """
        n = len(self.arrays)
        first = np.full(n, len(tasks))
        for k, t in enumerate(tasks):
            first[t.zones] = np.minimum(first[t.zones], k)
        pixels = self.areas_inside()
        order = np.lexsort((np.arange(n), first))
        cumulative = np.cumsum(pixels[order])
        groups = np.empty(n, np.int64)
        groups[order] = ((cumulative - pixels[order]) // max(target, 1)).astype(
            np.int64
        )
        return groups
