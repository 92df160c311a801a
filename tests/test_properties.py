"""Property-based tests: random inputs give the brute-force reference's answer.

Hypothesis draws the raster (shape, dtype, values, nodata and NaN masks), the
chunk shape and the polygons: boxes, triangles, convex hulls and snapped
shapes whose edges pass exactly through pixel centres, overlapping each other,
degenerate (zero area, smaller than a pixel) or touching and crossing the
raster's edges. zonal_dask's table must equal ``tests/reference.py``'s, which
rasterizes each polygon alone over the whole raster.
"""

from __future__ import annotations

import warnings

import numpy as np
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import zonal_dask as zd

from .reference import assert_tables_close, reference_stats
from .synth import TRANSFORM, Grid, zones_frame

SETTINGS = settings(
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
DTYPES = ["uint8", "int16", "int32", "float32", "float64"]


@st.composite
def grids(draw) -> Grid:
    rows, cols = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if dtype.kind == "f":
        values = rng.normal(draw(st.sampled_from([0.0, 1e3, 1e7])), 50, (rows, cols))
    else:
        info = np.iinfo(dtype)
        values = rng.integers(max(info.min, -5000), min(info.max, 5000), (rows, cols))
    values = values.astype(dtype)
    nodata = None
    if draw(st.booleans()):
        nodata = float(values.flat[0]) if dtype.kind != "f" else -9999.0
        values[rng.random((rows, cols)) < draw(st.floats(0, 1))] = nodata
    if dtype.kind == "f" and draw(st.booleans()):
        values[rng.random((rows, cols)) < draw(st.floats(0, 0.5))] = np.nan
    return Grid(values, TRANSFORM, nodata)


def coordinates(rows: int, cols: int):
    """Pixel coordinates around the raster; sometimes on half-pixel steps."""
    snapped = st.integers(-4, 2 * max(rows, cols) + 4).map(lambda k: k / 2)
    free = st.floats(-3, max(rows, cols) + 3, allow_nan=False, allow_infinity=False)
    return st.one_of(snapped, free)


@st.composite
def polygons(draw, rows: int, cols: int):
    xy = coordinates(rows, cols)
    kind = draw(st.sampled_from(["box", "triangle", "hull", "degenerate", "tiny"]))
    if kind == "box":
        x0, x1 = sorted((draw(xy), draw(xy)))
        y0, y1 = sorted((draw(xy), draw(xy)))
        return shapely.box(x0, y0, x1, y1)
    if kind == "triangle":
        return shapely.Polygon([(draw(xy), draw(xy)) for _ in range(3)])
    if kind == "hull":
        points = shapely.multipoints([(draw(xy), draw(xy)) for _ in range(6)])
        hull = shapely.convex_hull(points)
        # collinear or repeated points: a line or a point, so an empty polygon
        return hull if hull.geom_type == "Polygon" else shapely.Polygon()
    if kind == "degenerate":  # zero area: a flat box, or a bow-tie
        x, y = draw(xy), draw(xy)
        if draw(st.booleans()):
            return shapely.Polygon([(x, y), (x + 3, y), (x + 5, y), (x, y)])
        return shapely.Polygon([(x, y), (x + 4, y + 4), (x + 4, y), (x, y + 4)])
    centre = (draw(xy), draw(xy))  # smaller than a pixel
    return shapely.Point(centre).buffer(draw(st.floats(0.05, 0.6)))


@st.composite
def cases(draw):
    grid = draw(grids())
    rows, cols = grid.shape
    pixel = st.lists(polygons(rows, cols), min_size=1, max_size=6)
    geometries = [
        shapely.affinity.affine_transform(g, _gdal(grid)) for g in draw(pixel)
    ]
    chunks = (draw(st.integers(1, rows)), draw(st.integers(1, cols)))
    return grid, geometries, chunks


def _gdal(grid: Grid) -> list[float]:
    t = grid.transform
    return [t.a, t.b, t.d, t.e, t.c, t.f]


def _as_repaired(geometry):
    """The documented contract for invalid input: make_valid, polygonal parts."""
    if geometry.is_empty:
        return None
    if geometry.is_valid:
        return geometry
    parts = [
        p
        for p in shapely.get_parts(shapely.make_valid(geometry))
        if p.geom_type in ("Polygon", "MultiPolygon")
    ]
    return shapely.union_all(parts) if parts else None


@SETTINGS
@given(cases(), st.sampled_from([2, 8]))
def test_random_inputs_match_the_reference(case, split_every):
    grid, geometries, chunks = case
    frame = zones_frame(geometries)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # repaired geometries
        actual = zd.zonal_stats(
            frame, grid.to_dataarray(), chunks=chunks, split_every=split_every
        )
    repaired = [_as_repaired(g) for g in geometries]
    expected = reference_stats(repaired, grid, frame.index)
    assert_tables_close(actual, expected)


@SETTINGS
@given(cases())
def test_the_label_raster_agrees_with_the_counts(case):
    grid, geometries, chunks = case
    geometries = [g for g in geometries if g.is_valid and not g.is_empty] or [
        shapely.box(*grid.bounds())
    ]
    frame = zones_frame(geometries)
    labels = zd.rasterize_zones(frame, grid.to_dataarray(), chunks=chunks)
    values = labels.values
    assert values.shape == grid.shape and values.min() >= -1
    table = zd.zonal_stats(frame, grid.to_dataarray(), ["count"], chunks=chunks)
    nodata = grid.nodata
    valid = ~np.isnan(grid.values.astype("float64"))
    if nodata is not None:
        valid &= grid.values != nodata
    # pixels labelled with a zone are valid pixels of that zone: never more
    # than its count (overlaps hide pixels from the single-label view)
    for i, count in enumerate(table["count"]):
        assert ((values == i) & valid).sum() <= count
