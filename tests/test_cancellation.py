"""Means exact when values cancel, against exact rational arithmetic.

Values of +-1e12 plus unit noise: the true mean is the noise's, a millionth
of a millionth of the values; any running mean loses it. ``fractions``
sums the float64 values exactly; ours must agree to 1e-9 relative on any
chunking and tree shape.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import zonal_dask as zd

from .reference import polygon_values
from .synth import Grid, voronoi_zones, zones_frame

SHAPE = (23, 29)


def _cancelling(seed: int) -> Grid:
    rng = np.random.default_rng(seed)
    sign = rng.choice([-1.0, 1.0], SHAPE)
    return Grid(sign * 1e12 + rng.normal(0, 1, SHAPE), nodata=None)


def _positive_weights(seed: int) -> Grid:
    rng = np.random.default_rng(seed + 1)
    return Grid(rng.uniform(0.1, 3.0, SHAPE), nodata=None)


def _exact_mean(values: np.ndarray, weights: np.ndarray | None = None) -> float:
    if weights is None:
        weights = np.ones(values.size)
    if values.size == 0:  # a zone with no pixel: no mean
        return float("nan")
    pairs = zip(values, weights, strict=True)
    total = sum(Fraction(float(w)) * Fraction(float(v)) for v, w in pairs)
    return float(total / sum(Fraction(float(w)) for w in weights))


def _relative_error(actual, exact) -> float:
    """The largest relative error; a zone without a mean must have none."""
    actual, exact = np.asarray(actual, float), np.asarray(exact, float)
    assert np.array_equal(np.isnan(actual), np.isnan(exact))
    defined = ~np.isnan(exact)
    return float(np.max(np.abs(actual - exact)[defined] / np.abs(exact[defined])))


@settings(
    max_examples=12,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    rows=st.integers(1, SHAPE[0]),
    cols=st.integers(1, SHAPE[1]),
    split_every=st.sampled_from([2, 8]),
    seed=st.integers(0, 2**16),
)
@example(rows=1, cols=1, split_every=2, seed=249)  # a zone holding no pixel
def test_mean_is_exact_when_values_cancel(rows, cols, split_every, seed):
    grid = _cancelling(seed)
    geometries = voronoi_zones(grid, 5, seed=seed)
    table = zd.zonal_stats(
        zones_frame(geometries),
        grid.to_dataarray(),
        ["mean", "sum", "count"],
        chunks=(rows, cols),
        split_every=split_every,
    )
    exact = [_exact_mean(polygon_values(g, grid, None)) for g in geometries]
    assert _relative_error(table["mean"], exact) < 1e-9


@pytest.mark.parametrize("chunks", [(23, 29), 4, (7, 3)])
def test_weighted_mean_is_exact_when_values_cancel(chunks):
    grid, weights = _cancelling(5), _positive_weights(5)
    geometries = voronoi_zones(grid, 5, seed=5)
    table = zd.zonal_stats(
        zones_frame(geometries),
        grid.to_dataarray(),
        ["mean", "weighted_mean"],
        weights=weights.to_dataarray(),
        chunks=chunks,
        split_every=2,
    )
    exact = [
        _exact_mean(polygon_values(g, grid, None), polygon_values(g, weights, None))
        for g in geometries
    ]
    assert _relative_error(table["weighted_mean"], exact) < 1e-9
