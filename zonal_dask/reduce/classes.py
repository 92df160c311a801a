"""Per-zone tables of values and their weights, and what is computed on them.

The ``classes`` statistics read a ``ClassTable`` (the weight of each (zone,
value) pair, merged over the chunks); the weighted ``values`` statistics
read a zone's distinct values and their summed weights. Both are finished
here: the most or least weighty value, one column per value, and
exactextract's weighted quantile.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np


class ClassTable(NamedTuple):
    """Weight per zone and value (pixel count, or sum of coverage weights),
    sorted by zone then value; ``zone`` is the row position 0..n_zones-1;
    ``weighted`` the sums of weight times the weights raster's (None unless
    asked for); ``coverage`` tells whether the weights are coverage weights."""

    zone: np.ndarray
    value: np.ndarray
    weight: np.ndarray
    n_zones: int
    weighted: np.ndarray | None = None
    coverage: bool = False


def ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return a / b


def extreme_class(c: ClassTable, pick: np.ufunc, largest: bool) -> np.ndarray:
    """Per zone, the value whose weight is ``pick`` (max or min); on ties the
    largest value if ``largest``, else the smallest."""
    out = np.full(c.n_zones, np.nan)
    if c.zone.size == 0:
        return out
    new = np.diff(c.zone, prepend=-1) != 0
    group = np.cumsum(new) - 1
    best = pick.reduceat(c.weight, np.flatnonzero(new))[group]
    hits = np.flatnonzero(c.weight == best)
    if largest:  # values are sorted within a zone: take the last hit
        hits = hits[::-1]
    _, first = np.unique(group[hits], return_index=True)
    out[c.zone[hits[first]]] = c.value[hits[first]]
    return out


def distinct_values(c: ClassTable) -> np.ndarray:
    """Per zone, its distinct values (weight above 0), ascending: an object
    array of 1-D float64 arrays, empty for a zone without any."""
    kept = c.weight > 0
    zone, value = c.zone[kept], c.value[kept]
    bounds = np.searchsorted(zone, np.arange(c.n_zones + 1))
    out = np.empty(c.n_zones, dtype=object)
    for z in range(c.n_zones):
        out[z] = value[bounds[z] : bounds[z + 1]]
    return out


def class_name(value: float) -> int | float:
    """How a class value names its column: 3 for 3.0, else the float."""
    return int(value) if float(value).is_integer() else float(value)


def per_class(
    c: ClassTable, weight: np.ndarray, prefix: str, share: bool
) -> dict[Any, np.ndarray]:
    """One column per class (named ``prefix`` + its name): the zone's
    ``weight`` of that class, or with ``share`` its share of the zone's total
    (0 for a class absent from a zone that has pixels, NaN for a zone
    without any)."""
    classes = np.unique(c.value)
    table = np.zeros((c.n_zones, classes.size))
    table[c.zone, np.searchsorted(classes, c.value)] = weight
    if share:
        total = np.zeros(c.n_zones)
        np.add.at(total, c.zone, weight)
        seen = np.bincount(c.zone, minlength=c.n_zones) > 0
        table = np.where(
            seen[:, np.newaxis], ratio(table, total[:, np.newaxis]), np.nan
        )
    names: list[Any] = [class_name(v) for v in classes]
    if prefix:
        names = [f"{prefix}{n}" for n in names]
    return dict(zip(names, table.T, strict=True))


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """exactextract's weighted quantile of the distinct values.

    With the distinct values ``v_0 < ... < v_{n-1}``, their summed weights
    ``w_i``, total ``S`` and ``P_i = w_0 + ... + w_i``: ``s_0 = 0``,
    ``s_i = i w_i + (n - 1) P_{i-1}``, ``t = q (n - 1) S``; with ``k`` the last
    ``i`` with ``s_i <= t``, the quantile is ``v_{n-1}`` if ``k = n - 1``, else
    the linear interpolation between ``v_k`` and ``v_{k+1}``. With equal
    weights it is numpy's linear quantile of the distinct values.

    ``values`` are already sorted and distinct, ``weights`` their summed
    weights (``finalize.values_step`` makes them once per zone).
    """
    distinct, w = values, weights
    n = distinct.size
    cumulative = np.cumsum(w)
    s = np.zeros(n)
    s[1:] = np.arange(1, n) * w[1:] + (n - 1) * cumulative[:-1]
    target = q * (n - 1) * cumulative[-1]
    k = int(np.searchsorted(s, target, side="right")) - 1
    if k >= n - 1:
        return float(distinct[-1])
    step = (distinct[k + 1] - distinct[k]) / (s[k + 1] - s[k])
    return float(distinct[k] + (target - s[k]) * step)
