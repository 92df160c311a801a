"""Partial results: what a chunk of pixels says about its zones, and their merge.

Three families of partial results, each with its chunk step and its combine
step, in the manner of ``dask.array.reduction``; ``statistics/table.py`` names, for each
statistic, the fields it reads:

* ``moments``: per zone, the partial fields ``statistics/fields.py``
  declares: the weights of its valid and invalid pixels, the compensated
  weighted sum, the central moments around a shift, the minimum and the
  maximum and, when asked, where they first are (``moments.Moments``, from
  the compiled kernel); combined exactly, field by field. Its dense fields:
  ``statistics/fields.DENSE_FIELDS``. With a weights raster, the same pass
  gives a second set of moments weighing each pixel by its weight too
  (``ChunkResult.weighted``).
* ``classes``: per (zone, value), the weight of its pixels, and with a
  weights raster the weights' sum (``Classes``); combined by addition. For
  class rasters: memory grows with zones x classes. On a float raster, where
  that is nearly zones x pixels, the statistics with one column each are
  computed from the zone groups' values instead (``values`` below,
  ``statistics.table.classes_by_group``).
* ``values``: each zone's valid values and their weights (``ZoneValues``),
  split by zone group in the chunk step and gathered, for exact order
  statistics and user functions, by one task per group of nearby zones.

Every partial is sparse: it holds the zones present only, sorted. A block of
several bands or time steps gives moments of shape ``(zones, k)``, and classes
and values keyed by the virtual zone ``zone * n_planes + plane``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import NamedTuple

import numpy as np

from ..io.nodata import is_nan
from ..labels.sources import ChunkLabels, Labels, pieces
from ..statistics.fields import PARTIAL_FIELDS, layout_digest
from . import moment_kernel
from .moments import (
    Moments,
    chunk_moments,
    merge,
    valid_pixels,
)


class Classes(NamedTuple):
    """Weight of the valid pixels per (zone, value), sorted by zone then value;
    ``weighted``, when asked for, the same weights times the weights raster's
    (NaN where one is undefined)."""

    zone: np.ndarray
    value: np.ndarray
    weight: np.ndarray
    weighted: np.ndarray | None = None

    @classmethod
    def empty(cls, weighted: bool = False) -> Classes:
        return cls(
            np.empty(0, np.int64),
            np.empty(0),
            np.empty(0),
            np.empty(0) if weighted else None,
        )


class ZoneValues(NamedTuple):
    """Valid values of some zones, sorted by zone; ``weight`` None when all are
    1; ``raster`` the weights raster's value at each, when asked for."""

    zone: np.ndarray
    value: np.ndarray
    weight: np.ndarray | None
    raster: np.ndarray | None = None


@dataclass(frozen=True)
class Needs:
    """What a chunk step computes beyond the moments: the classes (with their
    weights-raster sums), the values (and the weights raster's value at
    each), the moments weighted by the weights raster, the extremes'
    positions, the third and fourth moments."""

    classes: bool = False
    values: bool = False
    weighted: bool = False
    weighted_classes: bool = False
    weighted_values: bool = False
    positions: bool = False
    higher: bool = False


@dataclass(frozen=True)
class ChunkSpec:
    """What a chunk step needs besides its blocks.

    ``nodata`` is the value left out (NaN always is); ``default_value``, when
    given, replaces every nodata or NaN value, which then counts (NaN: counts
    as a NaN value, as exactextract, on a float raster); ``groups``
    gives, for each of the chunk's zones, the zone group its values go to, or
    a number of groups to spread zones over by id (needed when
    ``needs.values``); a 3-D block holds planes ``planes[0]``, ... of
    ``planes[1]`` bands or time steps; ``origin`` is the block's first pixel
    (row, column) in the grid and the grid's width.
    """

    nodata: float | None = None
    needs: Needs = Needs()
    groups: np.ndarray | int | None = None
    planes: tuple[int, int] = (0, 1)
    origin: tuple[int, int, int] = (0, 0, 0)
    default_value: float | None = None


class ChunkResult(NamedTuple):
    """A chunk step's partials: moments, and classes, values and the moments
    weighted by the weights raster when needed."""

    moments: Moments
    classes: Classes | None
    values: dict[int, ZoneValues] | None
    weighted: Moments | None = None


# what a checkpoint's format is derived from: the partial fields, the
# partials' types and which partials a chunk holds for which statistics, so
# that any change to them makes old checkpoints refused (a float raster's
# chunks hold values, not classes, for majority since "classes by group")
LAYOUT = layout_digest(
    PARTIAL_FIELDS,
    *(
        f"{kind.__name__}{kind._fields}"
        for kind in (Moments, Classes, ZoneValues, ChunkResult, ChunkLabels)
    ),
    "classes by group",
)


def chunk_step(
    values: np.ndarray,
    labels: Labels,
    weights: np.ndarray | None = None,
    spec: ChunkSpec = ChunkSpec(),
) -> ChunkResult:
    """The chunk step: the kernel's one pass, plus classes and values when asked.

    ``weights`` is the weights raster's block (float64, NaN where undefined),
    or None. Labels in several pieces (``labels.pieces``) are taken one piece
    at a time and their partials merged.
    """
    values = np.ascontiguousarray(values)
    nodata = spec.nodata
    needs = spec.needs
    options = moment_kernel.POSITIONS if needs.positions else 0
    options |= moment_kernel.HIGHER if needs.higher else 0
    if spec.default_value is not None and is_nan(spec.default_value):
        # refused for integer rasters before any work (labels/inputs.py)
        options |= moment_kernel.NAN_VALUES
    elif spec.default_value is not None:
        fill = np.asarray(spec.default_value).astype(values.dtype)
        values, nodata = np.where(valid_pixels(values, nodata), values, fill), None
    results = []
    for piece in pieces(labels):
        results.append(_piece_step(values, piece, weights, nodata, spec, options))
        del piece  # gone before the next piece is made: one in memory at a time
    if len(results) == 1:
        return results[0]
    by_group = None
    if needs.values:
        found = {g for r in results for g in (r.values or {})}
        by_group = {g: gather_values(results, g) for g in sorted(found)}
    return ChunkResult(
        merge_moments(results),
        merge_classes(results) if needs.classes else None,
        by_group,
        merge_weighted(results) if needs.weighted else None,
    )


def _piece_step(
    values: np.ndarray,
    labels: ChunkLabels,
    weights: np.ndarray | None,
    nodata: float | None,
    spec: ChunkSpec,
    options: int,
) -> ChunkResult:
    needs = spec.needs
    pixel_weights = weights if needs.weighted else None
    moments, weighted = chunk_moments(
        values, labels, nodata, pixel_weights, spec.origin, options
    )
    if not (needs.classes or needs.values):
        return ChunkResult(moments, None, None, weighted)
    planes = values if values.ndim == 3 else values[np.newaxis]
    offset, n_planes = spec.planes
    claims = [valid_claims(plane, labels, nodata) for plane in planes]
    # (zone, plane) pairs as virtual zones zone * n_planes + plane
    zone = np.concatenate(
        [z * n_planes + offset + p for p, (z, *_) in enumerate(claims)]
    )
    value = np.concatenate([c[1] for c in claims])
    weight = None if labels.unweighted else np.concatenate([c[2] for c in claims])
    raster = None  # the weights raster's value at each claim
    if needs.weighted_classes or needs.weighted_values:
        assert weights is not None
        raster = weights.reshape(-1)[np.concatenate([c[3] for c in claims])]
    classes = None
    if needs.classes:
        by_weights = None
        if needs.weighted_classes:
            assert raster is not None
            by_weights = raster if weight is None else raster * weight
        classes = count_classes(zone, value, weight, by_weights)
    by_group = None
    if needs.values:
        by_group = split_by_group(
            zone,
            value,
            weight,
            zone // n_planes,
            labels.zones,
            spec.groups,
            raster if needs.weighted_values else None,
        )
    return ChunkResult(moments, classes, by_group, weighted)


def split_by_group(
    zone: np.ndarray,
    value: np.ndarray,
    weight: np.ndarray | None,
    real: np.ndarray,
    zones: np.ndarray,
    groups: np.ndarray | int | None,
    raster: np.ndarray | None = None,
) -> dict[int, ZoneValues]:
    """The chunk's values by zone group, each sorted by (virtual) zone.

    ``real`` is each value's zone, ``zones`` the chunk's zones, ``groups``
    the group of each of them (or a number of groups to spread zones over
    by id, when the zones are unknown before reading); ``raster`` the
    weights raster's value at each, or None.
    """
    assert groups is not None
    order = np.argsort(zone, kind="stable")
    zone, value, real = zone[order], value[order], real[order]
    weight = None if weight is None else weight[order]
    raster = None if raster is None else raster[order]
    if isinstance(groups, np.ndarray):
        group = groups[np.searchsorted(zones, real)]
    else:
        group = real % groups
    return {
        int(g): ZoneValues(
            zone[group == g],
            value[group == g],
            None if weight is None else weight[group == g],
            None if raster is None else raster[group == g],
        )
        for g in np.unique(group)
    }


def valid_claims(
    values: np.ndarray, labels: ChunkLabels, nodata: float | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """(global zone, float64 value, weight or None, flat pixel) of every valid
    weighted claim."""
    valid = valid_pixels(values, nodata)
    single = (labels.labels >= 0) & valid  # (layers, rows, cols)
    extra = valid.reshape(-1)[labels.extra_pixels]
    if not labels.unweighted:
        extra &= labels.extra_weights > 0
    layer_pixels = np.flatnonzero(single) % values.size
    extra_pixels = labels.extra_pixels[extra]
    zone = np.concatenate(
        [labels.zones[labels.labels[single]], labels.zones[labels.extra_zones[extra]]]
    )
    pixel = np.concatenate([layer_pixels, extra_pixels])
    value = values.reshape(-1)[pixel].astype(np.float64)
    if labels.unweighted:
        return zone, value, None, pixel
    weight = np.concatenate([np.ones(layer_pixels.size), labels.extra_weights[extra]])
    return zone, value, weight, pixel


def count_classes(
    zone: np.ndarray,
    value: np.ndarray,
    weight: np.ndarray | None,
    weighted: np.ndarray | None = None,
) -> Classes:
    """The weight of each (zone, value) pair, and its sum of ``weighted``."""
    if weight is None:
        weight = np.ones(zone.size)
    return _sum_by_pair(Classes(zone, value, weight, weighted))


def count_zone_classes(values: ZoneValues, bounds: np.ndarray) -> Classes:
    """``count_classes`` of values sorted by zone (a value group's; zone ``i``
    from ``bounds[i]`` to ``bounds[i + 1]``), each zone's values sorted on
    their own: the same order as one ``lexsort`` of the (zone, value) pairs,
    2-4x faster (benchmarks/README.md)."""
    zone = values.zone
    weight = np.ones(zone.size) if values.weight is None else values.weight
    if zone.size == 0:
        return Classes.empty()
    order = np.concatenate(
        [
            start + np.argsort(values.value[start:end], kind="stable")
            for start, end in pairwise(bounds)
        ]
    )
    return _sum_by_pair(Classes(zone, values.value, weight), order)


def _sum_by_pair(classes: Classes, order: np.ndarray | None = None) -> Classes:
    """The weights of equal (zone, value) pairs summed; ``order`` sorts the
    pairs (by default a stable sort by zone, then value)."""
    zone, value, weight, weighted = classes
    if zone.size == 0:
        return Classes.empty(weighted is not None)
    if order is None:
        order = np.lexsort((value, zone))
    zone, value = zone[order], value[order]
    new = np.ones(zone.size, bool)
    new[1:] = (zone[1:] != zone[:-1]) | (value[1:] != value[:-1])
    starts = np.flatnonzero(new)
    return Classes(
        zone[starts],
        value[starts],
        np.add.reduceat(weight[order], starts),
        None if weighted is None else np.add.reduceat(weighted[order], starts),
    )


def merge_classes(parts: Sequence[Classes | ChunkResult | None]) -> Classes:
    """The combine step for classes."""
    found = [
        p
        for p in (q.classes if isinstance(q, ChunkResult) else q for q in parts)
        if p is not None
    ]
    weighted = any(p.weighted is not None for p in found)
    found = [p for p in found if len(p.zone)]
    if len(found) <= 1:
        return found[0] if found else Classes.empty(weighted)
    columns = [np.concatenate(f) for f in zip(*(p[:3] for p in found), strict=True)]
    by_weights = None
    if weighted:
        by_weights = np.concatenate([p.weighted for p in found])
    return _sum_by_pair(Classes(columns[0], columns[1], columns[2], by_weights))


def merge_moments(parts: Sequence[Moments | ChunkResult | None]) -> Moments:
    """The combine step for moments (Chan et al. for the weighted M2)."""
    found = [p.moments if isinstance(p, ChunkResult) else p for p in parts]
    return merge(found)


def merge_weighted(parts: Sequence[Moments | ChunkResult | None]) -> Moments:
    """The combine step for the moments weighted by the weights raster."""
    found = [p.weighted if isinstance(p, ChunkResult) else p for p in parts]
    return merge(found)


def gather_values(results: Sequence[ChunkResult], group: int) -> ZoneValues:
    """The values of one group of zones from the chunk results, sorted by zone."""
    pieces = [
        r.values[group] for r in results if r.values is not None and group in r.values
    ]
    if not pieces:
        return ZoneValues(np.empty(0, np.int64), np.empty(0), None)
    zone = np.concatenate([p.zone for p in pieces])
    order = np.argsort(zone, kind="stable")
    value = np.concatenate([p.value for p in pieces])[order]
    weight = None
    if any(p.weight is not None for p in pieces):
        weight = np.concatenate(
            [np.ones(p.zone.size) if p.weight is None else p.weight for p in pieces]
        )[order]
    raster = None
    if any(p.raster is not None for p in pieces):
        raster = np.concatenate([p.raster for p in pieces if p.raster is not None])
        raster = raster[order]
    return ZoneValues(zone[order], value, weight, raster)
