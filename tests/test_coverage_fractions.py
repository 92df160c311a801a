"""The coverage kernel against GEOS: each cell's fraction is the exact area of
the cell inside the polygon, and the same bits whatever the chunking.

Adversarial polygons: vertices on cell edges and corners (dyadic
coordinates), horizontal and vertical edges along cell edges, holes turning
the same way as their shell, parts beyond the grid, both axis orientations.
"""

from __future__ import annotations

import numpy as np
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zonal_dask.coverage.weights import NOISE, coverage_fractions

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
SHAPE = (13, 17)

# quarter cells and arbitrary floats, some beyond the grid (none so close to 0
# that GEOS's own overlay underflows: it then gets areas wrong)
coordinate = st.one_of(
    st.integers(-8, 80).map(lambda q: q / 4),
    st.floats(-2.0, 20.0, allow_nan=False).filter(lambda v: v == 0 or abs(v) > 1e-9),
)


@st.composite
def polygons(draw):
    """A (Multi)Polygon in pixel coordinates (column, row)."""
    pieces = []
    for _ in range(draw(st.integers(1, 3))):
        points = draw(
            st.lists(st.tuples(coordinate, coordinate), min_size=3, max_size=9)
        )
        ring = shapely.Polygon(points)
        if draw(st.booleans()):
            ring = shapely.box(*sorted(points[0][:1] + points[1][:1]), 0, 0)
            x0, x1 = sorted((points[0][0], points[1][0]))
            y0, y1 = sorted((points[0][1], points[1][1]))
            ring = shapely.box(x0, y0, x1, y1)
        pieces.append(shapely.make_valid(ring))
    with np.errstate(all="ignore"):  # GEOS's overlay of degenerate input
        shape = shapely.union_all(pieces)
        if draw(st.booleans()):  # a hole
            x, y, r = draw(coordinate), draw(coordinate), draw(st.floats(0.3, 4))
            shape = shapely.difference(shape, shapely.Point(x, y).buffer(r, 3))
    parts = [
        p for p in shapely.get_parts(shape) if isinstance(p, shapely.Polygon) and p.area
    ]
    if draw(st.booleans()):  # rings the other way round (holes as their shell)
        parts = [
            shapely.Polygon(p.exterior.coords[::-1], [h.coords for h in p.interiors])
            for p in parts
        ]
    return shapely.MultiPolygon(parts) if parts else shapely.box(1, 1, 2.5, 3.25)


def exact(geometry, shape):
    """GEOS's area of each cell inside ``geometry`` (pixel coordinates), part
    by part."""
    rows, cols = np.indices(shape)
    cells = shapely.box(cols, rows, cols + 1, rows + 1)
    parts = shapely.get_parts(geometry)
    return sum(shapely.area(shapely.intersection(part, cells)) for part in parts)


def oriented(geometry, orient):
    """``geometry`` in the oriented pixel space of an ``orient`` raster."""
    return shapely.transform(geometry, lambda xy: xy * np.asarray(orient, float))


def dense(pixels, fractions, shape):
    out = np.zeros(shape[0] * shape[1])
    out[pixels] = fractions
    return out.reshape(shape)


@SETTINGS
@given(
    st.lists(polygons(), min_size=1, max_size=3),
    st.sampled_from([(1, -1), (1, 1), (-1, -1), (-1, 1)]),
)
def test_each_fraction_is_the_exact_area(geometries, orient):
    pixel = np.array([oriented(g, orient) for g in geometries], dtype=object)
    pixels, zones, fractions = coverage_fractions(pixel, (0, 0), SHAPE, orient)
    for z, geometry in enumerate(geometries):
        ours = dense(pixels[zones == z], fractions[zones == z], SHAPE)
        area = exact(geometry, SHAPE)
        # slivers up to NOISE of a cell are taken as none
        area = np.where((ours == 0) & (area <= NOISE + 1e-12), 0.0, area)
        np.testing.assert_allclose(ours, area, rtol=0, atol=1e-12)
    assert (fractions > NOISE).all() and (fractions <= 1).all()


@SETTINGS
@given(
    st.lists(polygons(), min_size=1, max_size=3),
    st.integers(1, 13),
    st.integers(1, 17),
)
def test_fractions_do_not_depend_on_the_chunking(geometries, rows, cols):
    pixel = np.array([oriented(g, (1, -1)) for g in geometries], dtype=object)
    whole = coverage_fractions(pixel, (0, 0), SHAPE, (1, -1))
    expected = {(int(z), int(p)): f for p, z, f in zip(*whole, strict=True)}
    found = {}
    for r0 in range(0, SHAPE[0], rows):
        for c0 in range(0, SHAPE[1], cols):
            size = (min(rows, SHAPE[0] - r0), min(cols, SHAPE[1] - c0))
            for p, z, f in zip(
                *coverage_fractions(pixel, (r0, c0), size, (1, -1)), strict=True
            ):
                r, c = divmod(int(p), size[1])
                found[(int(z), (r + r0) * SHAPE[1] + c + c0)] = f
    assert found == expected  # the same cells, the same bits
