"""The merge of the moments' partials, compiled: one pass over the parts'
rows grouped by zone, each partial field merged as
``statistics/fields.PARTIAL_FIELDS`` declares it.

``reduce/moments.merge`` sorts the parts' zones and calls ``merge_sorted``.
The kernels give numpy's bits, those of the vectorised merge they replace
(``tests/numpy_merge.py``, held to them by ``tests/test_moment_merge.py``):
a group's sum is its first part plus numpy's pairwise sum of the others
(``np.add.reduceat``), and the powers of the deviations are numpy's own
(``e ** p``, computed between the two kernels: numpy's SIMD ``power`` and
libm's ``pow`` differ in the last bit). The kernel reads each field's merge
kind from ``FIELD_KINDS``: a field of an existing kind is one registry entry;
a new kind is one more branch here.
"""

from __future__ import annotations

import math

import numpy as np

from ..precompiled import njit
from ..statistics.fields import INDEX, MERGES, PARTIAL_FIELDS, PartialField

# merge kind -> the kernel's code for it (literals: numba caches compiled
# code by this file's content, so a change of code is a change of file)
KIND_CODES = {
    "add": 0,
    "compensated": 1,
    "carry": 2,
    "reference": 3,
    "central": 4,
    "min": 5,
    "max": 6,
    "first": 7,
}
if set(KIND_CODES) != set(MERGES):
    raise ImportError(f"merge kinds {MERGES} without a kernel code: {KIND_CODES}")

FIELD_KINDS = np.array([KIND_CODES[f.merge] for f in PARTIAL_FIELDS], np.int64)
"""Each partial field's merge kind, as the kernel's code."""


def _partner(f: PartialField) -> int:
    if f.merge == "compensated":
        return next(i for i, g in enumerate(PARTIAL_FIELDS) if g.merge == "carry")
    if f.merge == "first":
        return INDEX[f.of]
    if f.merge == "central":
        return f.order
    return -1


FIELD_PARTNERS = np.array([_partner(f) for f in PARTIAL_FIELDS], np.int64)
"""Per field: the carry column of a compensated sum, the extreme's column of
a ``first`` position, the order of a central moment; else -1."""

_CENTRAL = sorted(
    (f.order, INDEX[f.name]) for f in PARTIAL_FIELDS if f.merge == "central"
)
HIGHEST_ORDER = _CENTRAL[-1][0]
CENTRAL_COLUMNS = np.array([-1, *(i for _, i in _CENTRAL)], np.int64)
"""The column of the central moment of each order (index 0 unused)."""
BINOMIALS = np.array(
    [
        [math.comb(p, j) for j in range(HIGHEST_ORDER + 1)]
        for p in range(HIGHEST_ORDER + 1)
    ],
    np.float64,
)
WEIGHT = INDEX["weight"]
REFERENCE = next(i for i, f in enumerate(PARTIAL_FIELDS) if f.merge == "reference")


def merge_sorted(data: np.ndarray, order: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The merged partial fields of each group of rows.

    Parameters
    ----------
    data
        float64 ``(rows, N_FIELDS, planes)``, C-contiguous: the parts' rows.
    order
        int64 ``(rows,)``: ``data``'s rows in zone order (a stable sort).
    starts
        int64 ``(groups,)``: where each zone's rows start in ``order``.

    Returns
    -------
    numpy.ndarray
        float64 ``(groups, N_FIELDS, planes)``.
    """
    out = np.empty((starts.size, data.shape[1], data.shape[2]))
    deviation = np.empty((order.size, data.shape[2]))
    merge_rows(
        data,
        order,
        starts,
        FIELD_KINDS,
        FIELD_PARTNERS,
        WEIGHT,
        REFERENCE,
        out,
        deviation,
    )
    # numpy's powers, as the former merge's ``e ** p`` (its square is e * e),
    # of the deviations not zero only: a zone inside one chunk has none
    flat = np.empty((max(HIGHEST_ORDER - 2, 0), deviation.size))
    moved = np.flatnonzero(deviation)
    with np.errstate(invalid="ignore", over="ignore"):
        for p in range(3, HIGHEST_ORDER + 1):
            flat[p - 3, moved] = deviation.ravel()[moved] ** p
    powers = flat.reshape((-1, *deviation.shape))
    merge_central(
        data, order, starts, CENTRAL_COLUMNS, BINOMIALS, WEIGHT, deviation, powers, out
    )
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def _block(a: np.ndarray, lo: int, n: int) -> float:
    """numpy's ``pairwise_sum`` of ``a[lo:lo + n]`` for ``n`` <= 128."""
    if n < 8:
        res = -0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    while i < n - n % 8:
        k = lo + i
        r0 += a[k]
        r1 += a[k + 1]
        r2 += a[k + 2]
        r3 += a[k + 3]
        r4 += a[k + 4]
        r5 += a[k + 5]
        r6 += a[k + 6]
        r7 += a[k + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@njit(cache=True, nogil=True, error_model="numpy")
def _pairwise(a: np.ndarray, lo: int, n: int) -> float:
    """numpy's pairwise sum of ``a[lo:lo + n]``: blocks of at most 128 added
    as its recursion halves (at a multiple of 8), evaluated with a stack
    (numba's cache does not hold recursive functions safely)."""
    if n <= 128:
        return _block(a, lo, n)
    tasks = np.empty((192, 3), np.int64)  # (lo, n, 1 when its halves are summed)
    values = np.empty(96)
    tasks[0, 0], tasks[0, 1], tasks[0, 2] = lo, n, 0
    pending, held = 1, 0
    while pending:
        pending -= 1
        at, size, joined = tasks[pending, 0], tasks[pending, 1], tasks[pending, 2]
        if size <= 128:
            values[held] = _block(a, at, size)
            held += 1
        elif joined:
            values[held - 2] = values[held - 2] + values[held - 1]
            held -= 1
        else:
            half = size // 2
            half -= half % 8
            tasks[pending, 0], tasks[pending, 1], tasks[pending, 2] = at, size, 1
            tasks[pending + 1, 0], tasks[pending + 1, 1] = at + half, size - half
            tasks[pending + 1, 2] = 0
            tasks[pending + 2, 0], tasks[pending + 2, 1], tasks[pending + 2, 2] = (
                at,
                half,
                0,
            )
            pending += 3
    return values[0]


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _total(a: np.ndarray, n: int) -> float:
    """``np.add.reduceat``'s sum of ``a[:n]``: the first plus the others'."""
    if n == 1:
        return a[0]
    return a[0] + _pairwise(a, 1, n - 1)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _longest(starts: np.ndarray, rows: int) -> int:
    """The most parts of any group (at least 1): a buffer's length."""
    longest = 1
    for g in range(starts.size):
        end = starts[g + 1] if g + 1 < starts.size else rows
        longest = max(longest, end - starts[g])
    return longest


@njit(cache=True, nogil=True, error_model="numpy")
def merge_rows(
    data: np.ndarray,
    order: np.ndarray,
    starts: np.ndarray,
    kinds: np.ndarray,
    partners: np.ndarray,
    weight: int,
    reference: int,
    out: np.ndarray,
    deviation: np.ndarray,
) -> None:
    """Every field but the central moments of order 2 and more, into ``out``;
    each row's deviation from its group's mean into ``deviation``."""
    rows, fields, planes = data.shape
    groups = starts.size
    buffer = np.empty(_longest(starts, rows))
    for c in range(planes):
        for g in range(groups):
            lo = starts[g]
            n = (starts[g + 1] if g + 1 < groups else rows) - lo
            if n == 1:  # most zones lie inside one chunk
                deviation[lo, c] = _merge_one(
                    data, order[lo], g, c, kinds, partners, weight, reference, out
                )
                continue
            shift = 0.0  # the first part with values: small deviations
            for r in range(lo, lo + n):
                if data[order[r], weight, c] > 0:
                    shift = data[order[r], reference, c]
                    break
            for f in range(fields):
                kind = kinds[f]
                if kind == 0:  # add
                    for i in range(n):
                        buffer[i] = data[order[lo + i], f, c]
                    out[g, f, c] = _total(buffer, n)
                elif kind == 1:  # compensated, with its carry: Neumaier
                    carry = partners[f]
                    for i in range(n):
                        buffer[i] = data[order[lo + i], carry, c]
                    error = _total(buffer, n)
                    total = data[order[lo], f, c]
                    for i in range(1, n):
                        x = data[order[lo + i], f, c]
                        s = total + x
                        if abs(total) >= abs(x):
                            error += (total - s) + x
                        else:
                            error += (x - s) + total
                        total = s
                    out[g, f, c] = total
                    # past the largest float the sum carries nothing
                    out[g, carry, c] = error if np.isfinite(total) else 0.0
                elif kind == 3:  # reference
                    out[g, f, c] = shift
                elif kind == 4 and partners[f] == 1:  # the mean, about shift
                    for i in range(n):
                        row = order[lo + i]
                        w = data[row, weight, c]
                        relative = 0.0
                        if w > 0:
                            relative = (data[row, reference, c] - shift) + data[
                                row, f, c
                            ]
                        deviation[lo + i, c] = relative
                        buffer[i] = w * relative
                    mean = _total(buffer, n)
                    for i in range(n):
                        buffer[i] = data[order[lo + i], weight, c]
                    mean = mean / _total(buffer, n)
                    if np.isnan(mean):  # np.nan_to_num
                        mean = 0.0
                    elif np.isinf(mean):
                        mean = (
                            1.7976931348623157e308
                            if mean > 0
                            else -1.7976931348623157e308
                        )
                    out[g, f, c] = mean
                    for i in range(n):
                        has = data[order[lo + i], weight, c] > 0
                        deviation[lo + i, c] = (
                            deviation[lo + i, c] - mean if has else 0.0
                        )
                elif kind == 5 or kind == 6:  # min, max: numpy's ties and NaN
                    m = data[order[lo], f, c]
                    for i in range(1, n):
                        x = data[order[lo + i], f, c]
                        if kind == 5:
                            keep = m < x or np.isnan(m)
                        else:
                            keep = m > x or np.isnan(m)
                        if not keep:
                            m = x
                    out[g, f, c] = m
            for f in range(fields):
                if kinds[f] == 7:  # first: the smallest position of the extreme
                    of = partners[f]
                    best = np.inf
                    for i in range(n):
                        row = order[lo + i]
                        at = data[row, f, c]
                        if data[row, of, c] == out[g, of, c] and at >= 0 and at < best:
                            best = at
                    out[g, f, c] = -1.0 if np.isinf(best) else best


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _power(e: float, j: int, powers: np.ndarray, row: int, c: int) -> float:
    if j == 1:
        return e
    if j == 2:
        return e * e
    if e == 0:  # numpy's power of a signed zero (not computed)
        return e if j % 2 else 0.0
    return powers[j - 3, row, c]


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _merge_one(
    data: np.ndarray,
    row: int,
    g: int,
    c: int,
    kinds: np.ndarray,
    partners: np.ndarray,
    weight: int,
    reference: int,
    out: np.ndarray,
) -> float:
    """``merge_rows`` for a group of one row (the same operations, without
    the loops), into ``out[g]``; returns the row's deviation from the mean."""
    w = data[row, weight, c]
    shift = data[row, reference, c] if w > 0 else 0.0
    deviation = 0.0
    for f in range(data.shape[1]):
        kind = kinds[f]
        x = data[row, f, c]
        if kind == 1:  # compensated, with its carry
            out[g, f, c] = x
            out[g, partners[f], c] = (
                data[row, partners[f], c] if np.isfinite(x) else 0.0
            )
        elif kind == 3:
            out[g, f, c] = shift
        elif kind == 4 and partners[f] == 1:
            relative = (data[row, reference, c] - shift) + x if w > 0 else 0.0
            mean = (w * relative) / w
            if np.isnan(mean):
                mean = 0.0
            elif np.isinf(mean):
                mean = 1.7976931348623157e308 if mean > 0 else -1.7976931348623157e308
            out[g, f, c] = mean
            deviation = relative - mean if w > 0 else 0.0
        elif kind == 0 or kind == 5 or kind == 6:
            out[g, f, c] = x
    for f in range(data.shape[1]):
        if kinds[f] == 7:
            of = partners[f]
            at = data[row, f, c]
            found = data[row, of, c] == out[g, of, c] and at >= 0 and at < np.inf
            out[g, f, c] = at if found else -1.0
    return deviation


@njit(cache=True, nogil=True, error_model="numpy")
def merge_central(
    data: np.ndarray,
    order: np.ndarray,
    starts: np.ndarray,
    columns: np.ndarray,
    binomials: np.ndarray,
    weight: int,
    deviation: np.ndarray,
    powers: np.ndarray,
    out: np.ndarray,
) -> None:
    """The central moments of order 2 and more, translated to each group's
    mean: ``M_p = sum_i (M_p,i + w_i e_i**p + sum_j C(p, j) e_i**j M_p-j,i)``
    (``e``: ``deviation``; ``powers[j - 3]``: numpy's ``e ** j``, j >= 3)."""
    rows, _, planes = data.shape
    groups = starts.size
    buffer = np.empty(_longest(starts, rows))
    for c in range(planes):
        for g in range(groups):
            lo = starts[g]
            n = (starts[g + 1] if g + 1 < groups else rows) - lo
            for p in range(2, columns.size):
                for i in range(n):
                    row = order[lo + i]
                    e = deviation[lo + i, c]
                    term = data[row, columns[p], c] + data[row, weight, c] * _power(
                        e, p, powers, lo + i, c
                    )
                    for j in range(1, p - 1):
                        term = (
                            term
                            + binomials[p, j]
                            * _power(e, j, powers, lo + i, c)
                            * data[row, columns[p - j], c]
                        )
                    buffer[i] = term
                # most zones lie inside one chunk: a group of one row
                out[g, columns[p], c] = buffer[0] if n == 1 else _total(buffer, n)
