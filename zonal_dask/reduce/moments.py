"""The moments family: per-zone weighted moments of a chunk, and their merge.

``chunk_moments`` runs the compiled kernel (``moment_kernel.moments``) over a block
and keeps the zones present; ``merge`` combines any number of partials
exactly (sums, Chan's formula for the weighted M2, the first position of an
extreme); ``dense_moments`` spreads them over all zones with numpy's answers
for infinities. ``reduce/partials.py`` holds the chunk step that calls them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ..io.raster import is_nan
from ..labels.sources import ChunkLabels
from . import moment_kernel

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
    the weighted ``sum`` of the finite values and the rounding error it
    ``carry``-s (their sum is the sum: 1e308 - 1e308 + 3 stays 3 across
    chunks); ``shift`` (one of the zone's
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
    carry: np.ndarray
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
        return cls(np.empty(0, np.int64), *[np.empty(shape)] * 14)


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
    # a dtype of KERNEL_DTYPES: the kernels prepare_kernels compiles
    kernel = kernel_dtype(values.dtype)
    nodata_value = kernel.type(nodata_value)  # widening: exact
    pixel_weights = _NO_PIXEL_WEIGHTS
    if weights is not None:
        pixel_weights = kernel_array(weights, np.float64)
    per_plane = [
        moment_kernel.moments(
            kernel_array(plane, kernel),
            kernel_array(labels.labels, np.int32),
            kernel_array(labels.extra_pixels, np.int64),
            kernel_array(labels.extra_zones, np.int32),
            kernel_array(labels.extra_weights, np.float64),
            len(labels.zones),
            nodata_value,
            has_nodata,
            pixel_weights,
            np.asarray(origin, np.int64),
        )
        for plane in planes
    ]
    exact = weights is None and labels.unweighted
    if values.dtype.kind in "iu" and values.dtype.itemsize == 8 and exact:
        per_plane = [
            _exact_integer_sum(p, plane, labels, has_nodata, nodata_value)
            for p, plane in zip(per_plane, planes, strict=True)
        ]
    fields = [np.stack(f, axis=1) for f in zip(*per_plane, strict=True)]
    weight, posinf, neginf, invalid = fields[:4]
    seen = weight + posinf + neginf + invalid + fields[11]
    keep = (seen.sum(axis=1) > 0) | (fields[12] >= 0).any(axis=1)
    order = np.argsort(labels.zones[keep], kind="stable")
    fields = [f[keep][order] for f in fields]
    if values.ndim == 2:
        fields = [f[:, 0] for f in fields]
    return Moments(labels.zones[keep][order], *fields)


def kernel_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype the moments kernel reads a raster of ``dtype`` in: its own,
    float16 as float32 and booleans as uint8 (``run.kernels.KERNEL_DTYPES``).

    Widening every integer to int64 would leave one integer kernel to compile
    (seconds, once per machine) but costs every chunk a cast: +20-30% of the
    kernel's time and 8x a uint8 block's memory (benchmarks/README.md)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return np.dtype(np.uint8)
    if dtype.kind == "f" and dtype.itemsize < 4:
        return np.dtype(np.float32)
    return dtype


def kernel_array(array: np.ndarray, dtype: np.typing.DTypeLike) -> np.ndarray:
    """``array`` as the compiled kernels take it: C-contiguous, writeable (numba
    compiles read-only arrays, as a cluster's deserialized ones may be, apart)
    and of ``dtype``; copied only when it is not already so."""
    if array.dtype == dtype and array.flags.c_contiguous and array.flags.writeable:
        return array
    return np.array(array, dtype=dtype, order="C", copy=True)


def _exact_integer_sum(
    fields: tuple,
    plane: np.ndarray,
    labels: ChunkLabels,
    has_nodata: bool,
    nodata: np.generic,
) -> tuple:
    """The kernel's fields of a 64-bit integer plane, with each zone's sum
    recomputed exactly when a value is beyond 2**53 (the kernel adds values
    converted to float64, which drops their low bits: 2**62 + 1 and -2**62
    would sum to 0): the float64 nearest the exact sum, and what it misses as
    its carry."""
    if not plane.size or max(abs(int(plane.min())), abs(int(plane.max()))) <= 2**53:
        return fields
    valid = ~(plane == nodata) if has_nodata else np.ones(plane.shape, bool)
    flat, n = plane.reshape(-1), len(labels.zones)
    zone = [labels.extra_zones[valid.reshape(-1)[labels.extra_pixels]]]
    pixel = [labels.extra_pixels[valid.reshape(-1)[labels.extra_pixels]]]
    for layer in labels.labels:
        claimed = np.flatnonzero((layer.reshape(-1) >= 0) & valid.reshape(-1))
        zone.append(layer.reshape(-1)[claimed])
        pixel.append(claimed)
    zones, values = np.concatenate(zone), flat[np.concatenate(pixel)]
    # three 21-bit limbs, each summed exactly in float64 (< 2**53 for any chunk
    # under 2**31 pixels), then joined as Python integers
    limbs = [(values >> shift) & (2**21 - 1) for shift in (0, 21)]
    limbs.append(values >> 42)
    sums = [
        np.bincount(zones, weights=limb.astype(np.float64), minlength=n)
        for limb in limbs
    ]
    exact = [
        int(s0) + (int(s1) << 21) + (int(s2) << 42)
        for s0, s1, s2 in zip(*sums, strict=True)
    ]
    high = np.array([float(e) for e in exact])
    carry = np.array([float(e - int(h)) for e, h in zip(exact, high, strict=True)])
    return (*fields[:4], high, carry, *fields[6:])


def nodata_in_dtype(nodata: float | None, dtype: np.dtype) -> tuple[bool, np.generic]:
    """The nodata value as the kernel compares it: a scalar of the raster's dtype.

    A value the dtype cannot hold (NaN for integers, 300 for uint8) matches no
    pixel. NaN needs no flag: the kernel always drops NaN. Integers are never
    taken through float64, so nodata beyond 2**53 stays exact.
    """
    dtype = np.dtype(dtype)
    if nodata is None or is_nan(nodata):
        return False, dtype.type(0)
    if dtype.kind in "iu":
        if isinstance(nodata, (float, np.floating)):
            if not math.isfinite(nodata) or nodata != int(nodata):
                return False, dtype.type(0)
        info = np.iinfo(dtype)
        if not info.min <= int(nodata) <= info.max:
            return False, dtype.type(0)
        return True, dtype.type(int(nodata))
    return True, dtype.type(np.asarray(nodata).astype(dtype))


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
    # values further apart than the largest float overflow here: dense_moments
    # then takes the mean from the sum and the variance as infinite
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        relative = np.where(has, (cat.shift - shift[group]) + cat.mean, 0.0)
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
        **_add_sums(cat.sum, cat.carry, starts),
        shift=shift,
        mean=np.nan_to_num(mean),
        m2=m2,
        min=low,
        max=high,
        undefined=np.add.reduceat(cat.undefined, starts),
        min_at=_first_at(cat.min, cat.min_at, low, group, starts),
        max_at=_first_at(cat.max, cat.max_at, high, group, starts),
    )


def _add_sums(
    total: np.ndarray, carry: np.ndarray, starts: np.ndarray
) -> dict[str, np.ndarray]:
    """Each group's sum of ``total``, as a float and the error it carries:
    Neumaier's compensated sum, one part of every group at a time."""
    sizes = np.diff(np.append(starts, total.size))
    group = np.repeat(np.arange(starts.size), sizes)
    position = np.arange(total.size) - starts[group]
    out = total[starts].copy()
    error = np.add.reduceat(carry, starts)
    with np.errstate(invalid="ignore", over="ignore"):
        for k in range(1, int(sizes.max(initial=1))):
            at = position == k
            g, x = group[at], total[at]
            s = out[g] + x
            big = np.abs(out[g]) >= np.abs(x)
            error[g] += np.where(big, (out[g] - s) + x, (x - s) + out[g])
            out[g] = s
    # past the largest float the sum is ±inf (or NaN), and carries nothing
    return {"sum": out, "carry": np.where(np.isfinite(out), error, 0.0)}


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
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        infinite = np.where(posinf > 0, np.inf, 0.0) + np.where(neginf > 0, -np.inf, 0)
        has = count > 0
        mean = spread(np.where(moments.weight > 0, moments.shift + moments.mean, 0), 0)
        total = spread(moments.sum + moments.carry, 0.0)
        variance = spread(moments.m2, np.nan) / finite
        # finite values further apart than the largest float (1e308 and
        # -1e308): deviations from the shift overflow, so the mean is the
        # compensated sum's, and the variance is beyond any float
        apart = (finite == count) & np.isinf(
            spread(moments.max, np.nan) - spread(moments.min, np.nan)
        )
        mean = np.where(apart, total / finite, mean)
        variance = np.where(apart, np.inf, variance)
        return {
            "count": count,
            "nodata": spread(moments.nodata, 0.0),
            "sum": np.where(has, total + infinite, np.nan),
            "mean": np.where(has, mean + infinite, np.nan),
            "variance": np.where(has & (finite == count), variance, np.nan),
            "min": np.where(has, spread(moments.min, np.nan), np.nan),
            "max": np.where(has, spread(moments.max, np.nan), np.nan),
            "undefined": spread(moments.undefined, 0.0),
            "min_at": np.where(has, spread(moments.min_at, -1.0), -1.0),
            "max_at": np.where(has, spread(moments.max_at, -1.0), -1.0),
        }
