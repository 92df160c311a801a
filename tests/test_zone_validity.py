"""Zones checked on flat arrays (``zones.validity``, ``zones.table``).

The compiled check may send a valid zone to GEOS, never let an invalid one
past: every zone it proves valid must be valid for ``shapely.is_valid``. And a
layer read without shapely objects must give the very zones, names and
repairs that the GeoDataFrame path gives.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import shapely

import zonal_dask as zd
from zonal_dask.burn import rules
from zonal_dask.errors import ZonesError
from zonal_dask.zones import read
from zonal_dask.zones.validity import needs_geos

from .package_copy import unbuilt_copy
from .synth import make_grid, special_zones, voronoi_zones, zones_frame

BOW_TIE = shapely.Polygon([(0, 0), (2, 2), (2, 0), (0, 2)])
SQUARE = [(0, 0), (4, 0), (4, 4), (0, 4)]
# each invalid for GEOS: the check must leave every one to it
INVALID = [
    BOW_TIE,
    shapely.Polygon([(0, 0), (4, 0), (4, 4), (2, 4), (2, 6), (2, 4), (0, 4)]),  # spike
    shapely.Polygon(SQUARE, [[(1, 1), (5, 1), (5, 2), (1, 2)]]),  # hole crosses
    shapely.Polygon(SQUARE, [[(5, 5), (6, 5), (6, 6), (5, 6)]]),  # hole outside
    shapely.Polygon(
        SQUARE,
        [[(1, 1), (3, 1), (3, 3), (1, 3)], [(1.5, 1.5), (2, 1.5), (2, 2)]],
    ),  # nested holes
    shapely.Polygon(SQUARE, [[(0, 0), (2, 0), (2, 2), (0, 2)]]),  # hole on the shell
    shapely.Polygon([(0, 0), (2, 0), (2, 2), (1, 0), (0, 2)]),  # touches itself
    shapely.MultiPolygon([shapely.box(0, 0, 2, 2), shapely.box(1, 1, 3, 3)]),
    shapely.MultiPolygon([shapely.box(0, 0, 4, 4), shapely.box(1, 1, 2, 2)]),
    shapely.MultiPolygon([shapely.box(0, 0, 2, 2), shapely.box(2, 0, 4, 2)]),
    shapely.Polygon([(0, 0), (1, 0), (2, 0), (0, 0)]),  # collinear
    shapely.Polygon([(0, 0), (1, 0), (np.nan, 1), (0, 1)]),
    # twice around a square, and a pentagram: the same turn at every vertex
    shapely.Polygon([*SQUARE, *SQUARE]),
    shapely.Polygon(
        [(np.cos(a), np.sin(a)) for a in np.arange(0, 4 * np.pi, 4 * np.pi / 5)]
    ),
]
# valid, but floating point cannot tell them from degenerate ones: left to GEOS
DOUBTFUL = [
    shapely.Polygon([(0, 0), (1, 0), (1, 1), (1, 1), (0, 1)]),  # repeated vertex
    shapely.Polygon([(0.1, 0.1), (0.3, 0.3), (0.7, 0.7), (0, 1)]),  # nearly straight
]
VALID = [
    shapely.box(0, 0, 1, 1),
    shapely.Polygon([(0, 0), (3, 0), (0, 3)]),
    shapely.Polygon(SQUARE, [[(1, 1), (2, 1), (2, 2), (1, 2)]]),
    shapely.Polygon(
        SQUARE, [[(0.5, 0.5), (1, 0.5), (1, 1)], [(2, 2), (3, 2), (3, 3), (2, 3)]]
    ),
    shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.box(2, 2, 3, 3)]),
    shapely.MultiPolygon(  # an island in the other part's hole
        [
            shapely.Polygon(SQUARE, [[(1, 1), (3, 1), (3, 3), (1, 3)]]),
            shapely.box(1.5, 1.5, 2, 2),
        ]
    ),
    shapely.Point(0, 0).buffer(1e6, 200),  # many segments: swept
    shapely.Polygon([(0, 0), (1e-30, 0), (0, 1e-30)]),  # tiny, not degenerate
]


def flagged(geometries: list) -> np.ndarray:
    return needs_geos(rules.flatten(np.array(geometries, object)))


def test_invalid_polygons_are_left_to_geos():
    assert not shapely.is_valid(np.array(INVALID, object)).any()
    assert flagged(INVALID).all()
    assert flagged(DOUBTFUL).all()


def test_common_valid_polygons_are_proven_without_geos():
    assert shapely.is_valid(np.array(VALID, object)).all()
    assert not flagged(VALID).any()
    lines_points = [shapely.LineString([(0, 0), (1, 1)]), shapely.Point(1, 2)]
    assert not flagged(lines_points).any()


def test_big_rings_crossing_far_apart_are_caught_by_the_sweep():
    angles = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    ring = np.c_[np.cos(angles), np.sin(angles)]
    ring[[100, 300]] = ring[[300, 100]]  # two far vertices swapped: it crosses
    star = shapely.Polygon(ring)
    assert not star.is_valid
    assert flagged([star]).all()


@pytest.mark.parametrize("seed", range(4))
def test_proven_zones_are_valid_for_geos(seed):
    rng = np.random.default_rng(seed)
    zones = []
    for i in range(3000):
        k = int(rng.integers(3, 9)) if i % 5 else int(rng.integers(40, 120))
        if i % 2:  # integer coordinates: collinear and touching cases
            points = rng.integers(0, 5, (k, 2)).astype(float)
        else:
            angles = np.sort(rng.random(k)) * 2 * np.pi
            radius = 1 + rng.random(k) * (3 if i % 4 else 0.2)
            points = np.c_[radius * np.cos(angles), radius * np.sin(angles)]
            points[rng.random(k) < 0.05] *= -1  # now and then a crossing
        holes = []
        if i % 3 == 0:
            holes = [rng.random((4, 2)) * 0.8 - 0.4]
        zone = shapely.Polygon(points, holes)
        if i % 7 == 0:
            zone = shapely.MultiPolygon([zone, shapely.box(*(rng.random(2) * 3), 4, 4)])
        zones.append(zone)
    zones = np.array(zones, object)
    zones = zones[~shapely.is_empty(zones)]
    proven = ~needs_geos(rules.flatten(zones))
    assert shapely.is_valid(zones[proven]).all()
    assert proven.sum() > 0.3 * shapely.is_valid(zones).sum()


def test_a_layer_read_as_arrays_gives_the_geodataframe_path_s_zones(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(read, "ARRAYS_FROM", 0)  # however few the zones
    grid = make_grid((40, 50), seed=3)
    x0, y0 = grid.transform.c, grid.transform.f
    tie = shapely.affinity.translate(
        shapely.affinity.scale(
            BOW_TIE, 3 * grid.transform.a, 3 * grid.transform.a, origin=(0, 0)
        ),
        x0 + 10 * grid.transform.a,
        y0 + 10 * grid.transform.e,
    )
    zones = [*voronoi_zones(grid, 30, seed=3), *special_zones(grid), tie, None]
    path = tmp_path / "zones.gpkg"
    zones_frame(zones).to_file(path, engine="pyogrio")
    array = grid.to_dataarray()
    with pytest.warns(UserWarning, match="1 invalid geometries repaired"):
        on_arrays = read.zones_on_grid(str(path), array, zone_id="name")
    frame = read.read_zones(str(path))
    with pytest.warns(UserWarning, match="1 invalid geometries repaired"):
        on_shapely = read.zones_on_grid(frame, array, zone_id="name")
    assert on_arrays.source_geometries is None  # never made shapely objects
    assert on_shapely.source_geometries is not None
    assert on_arrays.index.equals(on_shapely.index)
    a, b = on_arrays.arrays, on_shapely.arrays
    for x, y in zip(a.flat, b.flat, strict=True):
        assert np.array_equal(x, y, equal_nan=True)
    assert np.array_equal(a.types, b.types)
    assert np.array_equal(a.bounds(), b.bounds(), equal_nan=True)
    present = on_shapely.geometries != None  # noqa: E711
    assert np.array_equal(on_arrays.geometries != None, present)  # noqa: E711
    assert shapely.equals_exact(
        on_arrays.geometries[present], on_shapely.geometries[present], 0
    ).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        got = zd.zonal_stats(str(path), array, zone_id="name")
        want = zd.zonal_stats(frame, array, zone_id="name")
    assert got.equals(want)


def test_a_line_geos_cannot_build_is_refused_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(read, "ARRAYS_FROM", 0)
    import struct

    from pyogrio.raw import write

    grid = make_grid((20, 20), seed=1)
    x, y = grid.transform * (5, 5)
    line = struct.pack("<BII2d", 1, 2, 1, x, y)  # a LineString of one point
    good = shapely.to_wkb(shapely.LineString([(x, y), (x + 3, y + 3)]))
    path = tmp_path / "zones.gpkg"
    write(
        str(path),
        np.array([good, line], object),
        field_data=[np.array([1, 2])],
        fields=["n"],
        geometry_type="LineString",
        crs=grid.crs,
        driver="GPKG",
    )
    with pytest.raises(ZonesError, match=r"zones\.gpkg: cannot read zones"):
        zd.zonal_stats(str(path), grid.to_dataarray())


def test_a_layer_checked_on_several_threads_gives_the_same_answer(monkeypatch):
    from zonal_dask.zones import validity

    zones = np.array([*INVALID, *VALID, *DOUBTFUL] * 7, object)
    flat = rules.flatten(zones)
    alone = needs_geos(flat)
    monkeypatch.setattr(validity, "_ZONES_PER_THREAD", 5)
    monkeypatch.setattr(validity.os, "cpu_count", lambda: 4)
    assert np.array_equal(needs_geos(flat), alone)
    assert alone.sum() == 7 * (len(INVALID) + len(DOUBTFUL))


def test_a_small_layer_is_checked_through_shapely(tmp_path):
    """Below ``ARRAYS_FROM`` zones, compiling the array check would cost
    more than GEOS's: the zones are shapely geometries, checked by GEOS."""
    grid = make_grid((20, 30), seed=2)
    path = tmp_path / "zones.gpkg"
    zones_frame(voronoi_zones(grid, 5, seed=2)).to_file(path, engine="pyogrio")
    assert (
        read.zones_on_grid(str(path), grid.to_dataarray()).source_geometries is not None
    )


ARRAYS_FIRST_RUN = """
import sys
from zonal_dask.zones import table
from zonal_dask.zones.source import read_source
table_read = read_source(sys.argv[1])
table.table_arrays(table_read, sys.argv[1], "zones")
"""


@pytest.mark.slow  # two fresh processes, the first compiling
def test_a_first_run_announces_compiling_the_array_check(tmp_path):
    import os
    import subprocess
    import sys

    from zonal_dask.run.kernels import ANNOUNCEMENT

    grid = make_grid((20, 30), seed=4)
    path = tmp_path / "zones.gpkg"
    zones_frame(voronoi_zones(grid, 5, seed=4)).to_file(path, engine="pyogrio")
    env = {
        **os.environ,
        "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
        "PYTHONPATH": str(unbuilt_copy(tmp_path / "site")),  # nothing compiled
    }
    run = [sys.executable, "-c", ARRAYS_FIRST_RUN, str(path)]
    first = subprocess.run(run, env=env, capture_output=True, text=True, check=True)
    assert first.stderr.count(ANNOUNCEMENT) == 1
    second = subprocess.run(run, env=env, capture_output=True, text=True, check=True)
    assert ANNOUNCEMENT not in second.stderr
