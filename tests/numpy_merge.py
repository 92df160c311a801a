"""The moments' merge as numpy computed it before the compiled one
(``reduce/moment_merge.py``): the reference whose bits the kernel keeps
(``tests/test_moment_merge.py``). Kept as it was, reading the registry."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from zonal_dask.reduce.moments import N_FIELDS, Moments
from zonal_dask.statistics.fields import INDEX, PARTIAL_FIELDS

_W, _SHIFT, _MEAN = INDEX["weight"], INDEX["shift"], INDEX["mean"]


def numpy_merge(parts: Sequence[Moments | None]) -> Moments:
    """The combine step for moments: each partial field merged as
    ``statistics/fields.PARTIAL_FIELDS`` declares, exactly."""
    found = [p for p in parts if p is not None and len(p.zone)]
    if len(found) <= 1:
        return found[0] if found else Moments.empty()
    if found[0].data.ndim == 3:  # bands or time steps: merge each plane
        planes = [
            numpy_merge([Moments(p.zone, p.data[..., c]) for p in found])
            for c in range(found[0].data.shape[2])
        ]
        return Moments(planes[0].zone, np.stack([p.data for p in planes], axis=-1))
    zone = np.concatenate([p.zone for p in found])
    order = np.argsort(zone, kind="stable")
    zone, data = zone[order], np.concatenate([p.data for p in found])[order]
    new = np.diff(zone, prepend=-1) != 0
    starts = np.flatnonzero(new)
    group = np.cumsum(new) - 1
    out = np.empty((starts.size, N_FIELDS))
    by_kind: dict[str, list[int]] = {}
    for i, f in enumerate(PARTIAL_FIELDS):
        by_kind.setdefault(f.merge, []).append(i)
    for kind, reduce in (("add", np.add), ("min", np.minimum), ("max", np.maximum)):
        columns = by_kind.get(kind, [])
        out[:, columns] = reduce.reduceat(data[:, columns], starts, axis=0)
    (s,), (c,) = by_kind["compensated"], by_kind["carry"]
    out[:, s], out[:, c] = _add_sums(data[:, s], data[:, c], starts)
    _merge_central(data, out, group, starts)
    for i in by_kind.get("first", []):
        of = INDEX[PARTIAL_FIELDS[i].of]
        out[:, i] = _first_at(data[:, of], data[:, i], out[:, of], group, starts)
    return Moments(zone[starts], out)


def _merge_central(
    data: np.ndarray, out: np.ndarray, group: np.ndarray, starts: np.ndarray
) -> None:
    """The shift and central moments of each group of parts, into ``out``.

    The shift is the first part's with finite values, so deviations stay
    small; each part's central moments are translated to the group's mean by
    the binomial expansion (for order 2, Chan et al.; for 3 and 4, Pébay's
    formulas, over any number of parts):
    ``M_p = sum_i sum_j C(p, j) e_i**j M_{p-j, i}``, with ``M_0 = weight``,
    ``M_1 = 0`` and ``e_i`` part i's mean minus the group's.
    """
    weight = data[:, _W]
    has = weight > 0
    first = np.full(starts.size, -1)
    hit = np.flatnonzero(has)
    _, at = np.unique(group[hit], return_index=True)
    first[group[hit[at]]] = hit[at]
    shift = np.where(first >= 0, data[np.maximum(first, 0), _SHIFT], 0.0)
    central = sorted(
        (f.order, INDEX[f.name]) for f in PARTIAL_FIELDS if f.merge == "central"
    )
    column = dict(central)
    # values further apart than the largest float overflow here: dense_moments
    # then takes the mean from the sum and the variance as infinite
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        relative = np.where(has, (data[:, _SHIFT] - shift[group]) + data[:, _MEAN], 0)
        total = np.add.reduceat(weight, starts)
        mean = np.nan_to_num(np.add.reduceat(weight * relative, starts) / total)
        e = np.where(has, relative - mean[group], 0.0)
        for p, i in central[1:]:
            term = data[:, i] + weight * e**p
            for j in range(1, p - 1):
                term = term + math.comb(p, j) * e**j * data[:, column[p - j]]
            out[:, i] = np.add.reduceat(term, starts)
    out[:, _SHIFT] = shift
    out[:, _MEAN] = mean


def _add_sums(
    total: np.ndarray, carry: np.ndarray, starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
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
    return out, np.where(np.isfinite(out), error, 0.0)


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
