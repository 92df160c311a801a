"""The moments family: per-zone weighted moments of a chunk, and their merge.

``chunk_moments`` runs the compiled kernel (``kernels.moments``) over a block
and keeps the zones present; ``merge`` combines any number of partials
exactly (sums, Chan's formula for the weighted M2, the first position of an
extreme); ``dense_moments`` spreads them over all zones with numpy's answers
for infinities. ``partials.py`` holds the chunk step that calls them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from . import kernels
from .labels import ChunkLabels

MOMENT_FIELDS = (
    "count",
    "nodata",
    "sum",
    "mean",
    "variance",
    "min",
    "max",
    "undefined",
    "min_at",
    "max_at",
)


class Moments(NamedTuple):
    """Per-zone moments of some pixels, for the zones present only.

    ``zone`` is sorted and unique (int64 global zone index); the other fields
    are float64 and aligned with it: the weights (pixel counts, when
    unweighted) of the finite, +inf, -inf and invalid (nodata or NaN) pixels;
    the weighted ``sum`` of the finite values; ``shift`` (one of the zone's
    finite values), ``mean`` (the weighted mean of the finite values minus
    ``shift``) and ``m2`` (their weighted squared deviations from it);
    ``min`` and ``max`` of the valid values; ``undefined``, the weight of
    the valid pixels whose weight (in a weights raster) is undefined;
    ``min_at`` and ``max_at``, the grid position (``row * width + col``) of
    the first pixel in row-major order holding the minimum and the maximum.
    The shift keeps the deviations in Chan's merge exact for values near 1e8.
    """

    zone: np.ndarray
    weight: np.ndarray
    posinf: np.ndarray
    neginf: np.ndarray
    nodata: np.ndarray
    sum: np.ndarray
    shift: np.ndarray
    mean: np.ndarray
    m2: np.ndarray
    min: np.ndarray
    max: np.ndarray
    undefined: np.ndarray
    min_at: np.ndarray
    max_at: np.ndarray

    @classmethod
    def empty(cls, k: int | None = None) -> Moments:
        shape = (0,) if k is None else (0, k)
        return cls(np.empty(0, np.int64), *[np.empty(shape)] * 13)


_NO_PIXEL_WEIGHTS = np.empty((0, 0))


def chunk_moments(
    values: np.ndarray,
    labels: ChunkLabels,
    nodata: float | None,
    weights: np.ndarray | None = None,
    origin: tuple[int, int, int] = (0, 0, 0),
) -> Moments:
    """One pass of the compiled kernel over a 2-D block, or each plane of a 3-D one.

    A 3-D block ``(k, rows, cols)`` gives fields of shape ``(zones, k)``;
    every plane shares the labels. ``weights`` (a 2-D float64 block, NaN
    where undefined) multiplies every claim's weight.
    """
    has_nodata, nodata_value = nodata_in_dtype(nodata, values.dtype)
    planes = values if values.ndim == 3 else values[np.newaxis]
    pixel_weights = _NO_PIXEL_WEIGHTS
    if weights is not None:
        pixel_weights = np.ascontiguousarray(weights, dtype=np.float64)
    per_plane = [
        kernels.moments(
            np.ascontiguousarray(plane),
            labels.labels,
            labels.extra_pixels,
            labels.extra_zones,
            labels.extra_weights,
            len(labels.zones),
            nodata_value,
            has_nodata,
            pixel_weights,
            np.asarray(origin, np.int64),
        )
        for plane in planes
    ]
    fields = [np.stack(f, axis=1) for f in zip(*per_plane, strict=True)]
    weight, posinf, neginf, invalid = fields[:4]
    seen = weight + posinf + neginf + invalid + fields[10]
    keep = (seen.sum(axis=1) > 0) | (fields[11] >= 0).any(axis=1)
    order = np.argsort(labels.zones[keep], kind="stable")
    fields = [f[keep][order] for f in fields]
    if values.ndim == 2:
        fields = [f[:, 0] for f in fields]
    return Moments(labels.zones[keep][order], *fields)


def nodata_in_dtype(nodata: float | None, dtype: np.dtype) -> tuple[bool, float]:
    """The nodata value as the kernel compares it: cast to the raster's dtype.

    A value the dtype cannot hold (NaN for integers, 300 for uint8) matches no
    pixel. NaN needs no flag: the kernel always drops NaN.
    """
    if nodata is None or np.isnan(nodata):
        return False, 0.0
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        if not (info.min <= nodata <= info.max) or nodata != int(nodata):
            return False, 0.0
    return True, float(np.asarray(nodata).astype(dtype))


def valid_pixels(values: np.ndarray, nodata: float | None) -> np.ndarray:
    """Boolean mask of valid pixels: not NaN, not nodata (as the kernel decides)."""
    valid = np.ones(values.shape, bool)
    if np.issubdtype(values.dtype, np.floating):
        valid &= ~np.isnan(values)
    has_nodata, nodata_value = nodata_in_dtype(nodata, values.dtype)
    if has_nodata:
        valid &= values != nodata_value
    return valid


def merge(parts: Sequence[Moments | None]) -> Moments:
    """The combine step for moments (Chan et al. for the weighted M2)."""
    found = [p for p in parts if p is not None and len(p.zone)]
    if len(found) <= 1:
        return found[0] if found else Moments.empty()
    if found[0].weight.ndim == 2:  # bands or time steps: merge each column
        columns = [
            merge([Moments(p.zone, *(f[:, c] for f in p[1:])) for p in found])
            for c in range(found[0].weight.shape[1])
        ]
        fields = zip(*(c[1:] for c in columns), strict=True)
        return Moments(columns[0].zone, *(np.stack(f, axis=1) for f in fields))
    cat = Moments(*(np.concatenate(f) for f in zip(*found, strict=True)))
    order = np.argsort(cat.zone, kind="stable")
    cat = Moments(*(a[order] for a in cat))
    new = np.diff(cat.zone, prepend=-1) != 0
    starts = np.flatnonzero(new)
    group = np.cumsum(new) - 1
    weight = np.add.reduceat(cat.weight, starts)
    # shift of each group: the first finite part's, so deviations stay small
    has = cat.weight > 0
    first = np.full(starts.size, -1)
    hit = np.flatnonzero(has)
    _, at = np.unique(group[hit], return_index=True)
    first[group[hit[at]]] = hit[at]
    shift = np.where(first >= 0, cat.shift[np.maximum(first, 0)], 0.0)
    relative = np.where(has, (cat.shift - shift[group]) + cat.mean, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.add.reduceat(cat.weight * relative, starts) / weight
    deviation = np.where(has, relative - np.nan_to_num(mean)[group], 0.0)
    m2 = np.add.reduceat(cat.m2 + cat.weight * deviation * deviation, starts)
    low = np.minimum.reduceat(cat.min, starts)
    high = np.maximum.reduceat(cat.max, starts)
    return Moments(
        zone=cat.zone[starts],
        weight=weight,
        posinf=np.add.reduceat(cat.posinf, starts),
        neginf=np.add.reduceat(cat.neginf, starts),
        nodata=np.add.reduceat(cat.nodata, starts),
        sum=np.add.reduceat(cat.sum, starts),
        shift=shift,
        mean=np.nan_to_num(mean),
        m2=m2,
        min=low,
        max=high,
        undefined=np.add.reduceat(cat.undefined, starts),
        min_at=_first_at(cat.min, cat.min_at, low, group, starts),
        max_at=_first_at(cat.max, cat.max_at, high, group, starts),
    )


def _first_at(
    extreme: np.ndarray,
    at: np.ndarray,
    merged: np.ndarray,
    group: np.ndarray,
    starts: np.ndarray,
) -> np.ndarray:
    """The first position (smallest) among the parts holding the merged extreme."""
    candidates = np.where((extreme == merged[group]) & (at >= 0), at, np.inf)
    first = np.minimum.reduceat(candidates, starts)
    return np.where(np.isinf(first), -1.0, first)


def dense_moments(moments: Moments, n_zones: int) -> dict[str, np.ndarray]:
    """The moment fields over all zones, with numpy's answers for infinities.

    Arrays have shape ``(n_zones,)``, or ``(n_zones, k)`` for ``k`` planes;
    zones absent from ``moments`` get count 0 and NaN elsewhere.
    """
    z = moments.zone
    shape = (n_zones, *moments.weight.shape[1:])

    def spread(field: np.ndarray, fill: float) -> np.ndarray:
        out = np.full(shape, fill, dtype=np.float64)
        out[z] = field
        return out

    finite, posinf, neginf = (
        spread(f, 0.0) for f in (moments.weight, moments.posinf, moments.neginf)
    )
    count = finite + posinf + neginf
    with np.errstate(invalid="ignore", divide="ignore"):
        infinite = np.where(posinf > 0, np.inf, 0.0) + np.where(neginf > 0, -np.inf, 0)
        has = count > 0
        mean = spread(np.where(moments.weight > 0, moments.shift + moments.mean, 0), 0)
        return {
            "count": count,
            "nodata": spread(moments.nodata, 0.0),
            "sum": np.where(has, spread(moments.sum, 0.0) + infinite, np.nan),
            "mean": np.where(has, mean + infinite, np.nan),
            "variance": np.where(
                has & (finite == count), spread(moments.m2, np.nan) / finite, np.nan
            ),
            "min": np.where(has, spread(moments.min, np.nan), np.nan),
            "max": np.where(has, spread(moments.max, np.nan), np.nan),
            "undefined": spread(moments.undefined, 0.0),
            "min_at": np.where(has, spread(moments.min_at, -1.0), -1.0),
            "max_at": np.where(has, spread(moments.max_at, -1.0), -1.0),
        }


def warm_up(dtype: np.dtype) -> None:
    """Load the compiled kernels for a raster of ``dtype`` from numba's cache.

    The first call of a cached kernel in a process still costs about 0.3 s
    (numba sets up its compiler); running it on a thread while the zones are
    read overlaps that with I/O instead of delaying the first chunk. The
    arguments have the types the chunk step and the burner pass (any nodata
    gives the same types: a flag and a float).
    """
    has_nodata, nodata = nodata_in_dtype(None, dtype)
    labels = np.full((1, 1, 1), -1, np.int32)
    no_claims = np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0)
    origin = np.zeros(3, np.int64)
    kernels.moments(
        np.zeros((1, 1), dtype),
        labels,
        *no_claims,
        0,
        nodata,
        has_nodata,
        _NO_PIXEL_WEIGHTS,
        origin,
    )
    kernels.decode_claims(np.zeros((1, 1), np.int64), 16, 1)
