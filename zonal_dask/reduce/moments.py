"""The moments family: per-zone weighted moments of a chunk, and their merge.

``chunk_moments`` runs the compiled kernel (``moment_kernel.moments``) over a
block, derives the central moments from its power sums, and keeps the zones
present; ``merge`` combines any number of partials exactly, field by field
as ``statistics/fields.PARTIAL_FIELDS`` declares (sums, Neumaier's
compensated sum, the binomial translation of central moments, the first
position of an extreme: the compiled ``moment_merge``); ``dense_moments``
spreads them over all zones with numpy's answers for infinities.
``reduce/partials.py`` holds the chunk step that calls them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ..io.nodata import is_nan
from ..labels.sources import ChunkLabels
from ..statistics.fields import INDEX, PARTIAL_FIELDS
from . import moment_kernel, moment_merge
from .integer_sums import exact_integer_sum

N_FIELDS = len(PARTIAL_FIELDS)
# the kernel's power sums become the central moments of the same order
_CENTRAL = {"s1": "mean", "s2": "m2", "s3": "m3", "s4": "m4"}
if [_CENTRAL.get(c, c) for c in moment_kernel.COLUMNS] != list(INDEX):
    raise ImportError(
        "moment_kernel.COLUMNS and statistics/fields.PARTIAL_FIELDS differ: "
        f"{moment_kernel.COLUMNS} vs {tuple(INDEX)}"
    )
_W, _SHIFT, _MEAN = INDEX["weight"], INDEX["shift"], INDEX["mean"]
_S1, _S2, _S3, _S4 = (INDEX[_CENTRAL[s]] for s in ("s1", "s2", "s3", "s4"))
# a zone whose power sums of order 2 (4) exceed its central moments this
# many times loses more than about log10 of it of its 16 digits to
# cancellation: the chunk is summed again around such zones' means. With
# unit weights S2 / M2 = 1 + z**2 (z: the shift's distance from the mean in
# standard deviations) and S4 / M4 about 1 + 2 z**2 + z**4 / 3: a threshold
# of 64 on S4 made one zone in 3,000 of normal data pay a second pass
_TOL2, _TOL4 = 1e3, 1e5


class Moments(NamedTuple):
    """Per-zone moments of some pixels, for the zones present only.

    ``zone`` is sorted and unique (int64 global zone index); ``data`` is
    float64 of shape ``(zones, N_FIELDS)`` (``(zones, N_FIELDS, k)`` for a
    block of ``k`` planes), one column per partial field of
    ``statistics/fields.PARTIAL_FIELDS``, in that order: ``field(name)``
    reads one.
    """

    zone: np.ndarray
    data: np.ndarray

    def field(self, name: str) -> np.ndarray:
        return self.data[:, INDEX[name]]

    @classmethod
    def empty(cls, k: int | None = None) -> Moments:
        shape = (0, N_FIELDS) if k is None else (0, N_FIELDS, k)
        return cls(np.empty(0, np.int64), np.empty(shape))


_NO_PIXEL_WEIGHTS = np.empty((0, 0))
_NO_SHIFTS = np.empty((0, 0))


def chunk_moments(
    values: np.ndarray,
    labels: ChunkLabels,
    nodata: float | None,
    weights: np.ndarray | None = None,
    origin: tuple[int, int, int] = (0, 0, 0),
    options: int = 0,
) -> tuple[Moments, Moments | None]:
    """One pass of the compiled kernel over a 2-D block, or each plane of a 3-D one.

    A 3-D block ``(k, rows, cols)`` gives data of shape ``(zones, N_FIELDS,
    k)``; every plane shares the labels. ``weights`` (a 2-D float64 block,
    NaN where undefined) gives, from the same pass, the moments weighted by
    it too (else None). ``options``: ``moment_kernel.POSITIONS | HIGHER |
    NAN_VALUES``.
    """
    has_nodata, nodata_value = nodata_in_dtype(nodata, values.dtype)
    planes = values if values.ndim == 3 else values[np.newaxis]
    # a dtype of KERNEL_DTYPES: the kernels prepare_kernels compiles
    kernel = kernel_dtype(values.dtype)
    nodata_value = kernel.type(nodata_value)  # widening: exact
    pixel_weights = _NO_PIXEL_WEIGHTS
    if weights is not None:
        pixel_weights = kernel_array(weights, np.float64)
    at = np.asarray(origin, np.int64)
    claims = (
        kernel_array(labels.labels, np.int32),
        kernel_array(labels.extra_pixels, np.int64),
        kernel_array(labels.extra_zones, np.int32),
        kernel_array(labels.extra_weights, np.float64),
    )
    per_plane = []
    for plane in planes:
        plane = kernel_array(plane, kernel)

        def sweep(shifts: np.ndarray, plane: np.ndarray = plane) -> np.ndarray:
            return moment_kernel.moments(
                plane,
                claims[0],
                claims[1],
                claims[2],
                claims[3],
                len(labels.zones),
                nodata_value,
                has_nodata,
                pixel_weights,
                at,
                shifts,
                options,
            )

        higher = bool(options & moment_kernel.HIGHER)
        data, ill = _central(sweep(_NO_SHIFTS), higher)
        if ill.any():  # summed again around the mean: exact central moments
            shifts = np.where(ill, data[..., _SHIFT] + data[..., _MEAN], np.nan)
            data, _ = _central(sweep(shifts), higher)
        if values.dtype.kind in "iu" and values.dtype.itemsize == 8:
            if labels.unweighted:
                data[:, 0] = exact_integer_sum(
                    data[:, 0], plane, labels, has_nodata, nodata_value
                )
        if data.shape[1] == 2:  # the weighted set: the extremes of the values
            extremes = [INDEX[n] for n in ("min", "max", "min_at", "max_at")]
            data[:, 1, extremes] = data[:, 0, extremes]
        per_plane.append(data)
    # (zones, sets, fields, planes), copied only where a copy changes
    # something: a stack, a filter and a reorder of every zone's columns were
    # a tenth of a chunk's step at 200,000 zones (thousands in each chunk)
    if len(per_plane) == 1:
        data = per_plane[0][..., np.newaxis]
    else:
        data = np.stack(per_plane, axis=-1)
    zone = labels.zones
    seen = data[:, :, _SEEN].sum(axis=(1, 2, 3)) > 0  # counts: never negative
    if not seen.all():
        zone, data = zone[seen], data[seen]
    if not (zone[1:] > zone[:-1]).all():
        order = np.argsort(zone, kind="stable")
        zone, data = zone[order], data[order]
    if values.ndim == 2:
        data = data[..., 0]
    sets = [
        Moments(zone, np.ascontiguousarray(data[:, s])) for s in range(data.shape[1])
    ]
    return sets[0], (sets[1] if weights is not None else None)


# the counters of a zone's pixels: it is in the chunk when one is not 0
_SEEN_FIELDS = ("weight", "posinf", "neginf", "nan", "nodata", "undefined")
_SEEN = slice(INDEX[_SEEN_FIELDS[0]], INDEX[_SEEN_FIELDS[-1]] + 1)
if [INDEX[n] for n in _SEEN_FIELDS] != list(range(_SEEN.start, _SEEN.stop)):
    raise ImportError(f"the fields {_SEEN_FIELDS} are not side by side")


def _central(data: np.ndarray, higher: bool) -> tuple[np.ndarray, np.ndarray]:
    """The kernel's columns, in place, with its power sums of ``value -
    shift`` turned into the mean of ``value - shift`` and the central moments;
    and which (zone, set) lost precision to cancellation (a shift far from
    the mean). The power sums are views of ``data``: every moment is derived
    before any is written."""
    w = data[..., _W]
    s1, s2, s3, s4 = (data[..., i] for i in (_S1, _S2, _S3, _S4))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        m = np.where(w > 0, s1 / np.where(w > 0, w, 1.0), 0.0)
        m2 = s2 - m * s1
        ill = np.isfinite(s2) & (s2 > _TOL2 * m2)
        if higher:
            m3 = s3 - 3 * m * s2 + 2 * w * m**3
            m4 = s4 - 4 * m * s3 + 6 * m * m * s2 - 3 * w * m**4
            ill |= np.isfinite(s4) & (s4 > _TOL4 * m4)
            data[..., _S3] = m3
            data[..., _S4] = np.maximum(m4, 0.0)
        else:  # no statistic reads them: 0, not derived
            data[..., _S3] = data[..., _S4] = 0.0
    data[..., _S1] = m
    data[..., _S2] = np.maximum(m2, 0.0)
    return data, ill & (w > 0)


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
    """The combine step for moments: each partial field merged as
    ``statistics/fields.PARTIAL_FIELDS`` declares, exactly (the compiled
    ``moment_merge.merge_sorted``), planes (bands, time steps) alike."""
    found = [p for p in parts if p is not None and len(p.zone)]
    if len(found) <= 1:
        return found[0] if found else Moments.empty()
    zone = np.concatenate([p.zone for p in found])
    order = np.argsort(zone, kind="stable")
    zone = zone[order]
    starts = np.flatnonzero(np.diff(zone, prepend=-1) != 0)
    data = np.concatenate([p.data for p in found]).astype(np.float64, copy=False)
    planes = data.ndim == 3
    if not planes:
        data = data[..., np.newaxis]
    out = moment_merge.merge_sorted(data, order, starts)
    return Moments(zone[starts], out if planes else out.reshape(out.shape[:2]))


def dense_moments(moments: Moments, n_zones: int) -> dict[str, np.ndarray]:
    """The dense fields (``statistics/fields.DENSE_FIELDS``) over all zones,
    with numpy's answers for infinities.

    Arrays have shape ``(n_zones,)``, or ``(n_zones, k)`` for ``k`` planes;
    zones absent from ``moments`` get count 0 and NaN elsewhere. A value
    counted as NaN (``default_value=NaN``) makes the sum, the mean and the
    central moments NaN, and is no minimum or maximum (as exactextract).
    """
    z = moments.zone
    shape = (n_zones, *moments.data.shape[2:])
    # field-major once: a field read from the (zones, fields) rows would pull
    # every row through the cache, once per field (3x the time at 200,000
    # zones)
    by_field = np.ascontiguousarray(np.moveaxis(moments.data, 1, 0))
    spread: dict[str, np.ndarray] = {}

    def part(name: str, fill: float = 0.0) -> np.ndarray:
        """The field over all zones (each field has one fill: spread once)."""
        if name not in spread:
            out = spread[name] = np.full(shape, fill, dtype=np.float64)
            out[z] = by_field[INDEX[name]]
        return spread[name]

    finite, posinf, neginf, nan = (
        part(n) for n in ("weight", "posinf", "neginf", "nan")
    )
    count = finite + posinf + neginf + nan
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        infinite = np.where(posinf > 0, np.inf, 0.0) + np.where(neginf > 0, -np.inf, 0)
        infinite = infinite + np.where(nan > 0, np.nan, 0.0)
        has, valued = count > 0, finite + posinf + neginf > 0
        shifted = part("shift") + part("mean")
        total = part("sum") + part("carry")
        # the compensated sum over the weight: exact when values cancel
        # (1e12 and -1e12 plus unit noise), where a running mean is not; the
        # shifted mean only where the sum overflows
        mean = np.where(np.isfinite(total), total / finite, shifted)
        mean = np.where(finite > 0, mean, 0.0)
        variance, moment3, moment4 = (
            part(n, np.nan) / finite for n in ("m2", "m3", "m4")
        )
        # finite values further apart than the largest float (1e308 and
        # -1e308): deviations from the shift overflow, so the variance is
        # beyond any float
        apart = (finite == count) & np.isinf(part("max", np.nan) - part("min", np.nan))
        mean = np.where(apart, total / finite, mean)
        variance = np.where(apart, np.inf, variance)
        pure = has & (finite == count)
        return {
            "count": count,
            "nodata": part("nodata"),
            "sum": np.where(has, total + infinite, np.nan),
            "mean": np.where(has, mean + infinite, np.nan),
            "variance": np.where(pure, variance, np.nan),
            "moment3": np.where(pure & ~apart, moment3, np.nan),
            "moment4": np.where(pure & ~apart, moment4, np.nan),
            "min": np.where(valued, part("min", np.nan), np.nan),
            "max": np.where(valued, part("max", np.nan), np.nan),
            "undefined": part("undefined"),
            "min_at": np.where(valued, part("min_at", -1.0), -1.0),
            "max_at": np.where(valued, part("max_at", -1.0), -1.0),
        }
