"""Zones as flat arrays, shipped once: the planning path of a million zones.

The arrays must be exactly what shapely's geometries hold (the burner's
GDAL-exact answers depend on every bit), the chunk tasks' zones exactly those
a spatial index of the geometries gives, and a graph must hold each zone once.
"""

from __future__ import annotations

import pickle
import subprocess
import sys

import cloudpickle
import numpy as np
import pytest
import shapely
from affine import Affine

import zonal_dask as zd
from zonal_dask.burn import rules
from zonal_dask.labels import chunk_tasks
from zonal_dask.zones import arrays as zone_arrays
from zonal_dask.zones import read, repair, wkb

from .synth import make_grid, special_zones, voronoi_zones, zones_frame

ODD = [
    shapely.box(0, 0, 1, 1),
    None,
    shapely.Polygon(),
    shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.box(2, 2, 3, 3)]),
    shapely.box(0, 0, 5, 5).difference(shapely.box(1, 1, 2, 2)),  # a hole
    shapely.LineString([(0, 0), (1, 2), (3, 3)]),
    shapely.MultiLineString([[(0, 0), (1, 1)], [(2, 2), (3, 1)]]),
    shapely.Point(1, 2),
    shapely.MultiPoint([(1, 2), (3, 4)]),
    shapely.Point(),
    shapely.LineString(),
    shapely.from_wkt("POLYGON Z ((0 0 1, 1 0 2, 1 1 3, 0 0 1))"),
    shapely.from_wkt("MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0)), EMPTY)"),
    shapely.box(1e8 + 0.1 + 0.2, -1e8, 1e8 + 0.3 + 1e-7, -1e8 + 1e-7),
]


def assert_flat_equal(a: rules.Flat, b: rules.Flat) -> None:
    for name, x, y in zip(rules.Flat._fields, a, b, strict=True):
        assert x.shape == y.shape and np.array_equal(x, y), name
        assert x.tobytes() == y.tobytes(), name  # every bit, -0.0 included


def test_wkb_is_flattened_as_shapely_flattens():
    geometries = np.array(ODD, object)
    parsed = wkb.flat_of_wkb(*wkb.wkb_buffers(geometries))
    assert parsed is not None
    assert_flat_equal(rules.Flat(*parsed[0]), rules.flatten(geometries))
    empty = [1, 2, 9, 10]  # None and empty geometries: no parts
    expected = shapely.get_type_id(geometries)
    expected[empty] = -1
    assert parsed[1].tolist() == expected.tolist()


def test_zone_bounds_are_shapelys_and_nan_without_coordinates():
    rng = np.random.default_rng(5)
    many = [
        shapely.Polygon(rng.normal(size=(k, 2)) * 10.0**e)
        for k, e in zip(rng.integers(3, 40, 300), rng.integers(-3, 9, 300), strict=True)
    ]
    geometries = np.array([*ODD, *many], object)
    arrays = zone_arrays.ZoneArrays.of(geometries)
    expected = shapely.bounds(geometries)  # NaN for None and empty
    assert arrays.bounds().tobytes() == expected.tobytes()
    # a NaN coordinate: that axis NaN (numpy.minimum's rule), the other kept
    flat = arrays.flat._replace(xy=arrays.flat.xy.copy())
    flat.xy[1, 0] = np.nan
    bounds = zone_arrays.ZoneArrays(flat, arrays.types).bounds()
    assert np.isnan(bounds[0, [0, 2]]).all()
    assert bounds[0, [1, 3]].tolist() == expected[0, [1, 3]].tolist()


def test_wkb_it_does_not_read_is_left_to_shapely():
    collection = np.array([shapely.GeometryCollection([shapely.Point(1, 1)])])
    assert wkb.flat_of_wkb(*wkb.wkb_buffers(collection)) is None
    big_endian = shapely.to_wkb(shapely.box(0, 0, 1, 1), byte_order=0)
    assert wkb.flat_of_wkb(np.frombuffer(big_endian, np.uint8), [0, 41]) is None
    truncated = shapely.to_wkb(shapely.box(0, 0, 1, 1))[:-8]
    assert wkb.flat_of_wkb(np.frombuffer(truncated, np.uint8), [0, 85]) is None


TRANSFORMS = [
    Affine(30.0, 0, 500_000.1, 0, -30.0, 4_000_000.7),  # north-up
    Affine(0.1, 0, -180.0, 0, 0.1, -90.0),  # south-up
    Affine(-0.3, 0, 10.0, 0, -0.7, 5.0),  # east-left
]


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_pixel_space_arrays_are_the_transformed_geometries_bit_for_bit(transform):
    rng = np.random.default_rng(3)
    x0, y0 = transform.c, transform.f
    geometries = np.array(
        [
            shapely.Polygon(
                np.column_stack(
                    (x0 + rng.uniform(-1e3, 1e3, 4), y0 + rng.uniform(-1e3, 1e3, 4))
                )
            ).convex_hull
            for _ in range(50)
        ]
        + [None, shapely.LineString([(x0, y0), (x0 + 0.3, y0 - 0.1)])],
        object,
    )
    arrays = zone_arrays.ZoneArrays.of(geometries, transform)
    # GDAL's arithmetic, written out: -x0/dx + x * (1/dx), signs kept
    xy = shapely.get_coordinates(geometries)
    ox, sx = -transform.c / transform.a, 1.0 / transform.a
    oy, sy = -transform.f / transform.e, 1.0 / transform.e
    flip = rules.orientation(transform)
    expected = np.column_stack(
        (flip[0] * (ox + xy[:, 0] * sx), flip[1] * (oy + xy[:, 1] * sy))
    )
    assert arrays.flat.xy.tobytes() == expected.tobytes()
    moved = rules.to_pixel_space(geometries, transform)
    assert_flat_equal(arrays.flat, rules.flatten(moved))


def test_arrays_gather_concatenate_pickle_and_rebuild_exactly():
    geometries = np.array(ODD, object)
    arrays = zone_arrays.ZoneArrays.of(geometries)
    picked = np.array([12, 3, 0, 1, 7, 3])
    taken = arrays.take(picked)
    assert_flat_equal(taken.flat, rules.flatten(geometries[picked]))
    for picked in ([], [-1, -14], [5] * 3):  # none, from the end, repeated
        taken = arrays.take(np.array(picked, np.int64))
        assert_flat_equal(taken.flat, rules.flatten(geometries[picked]))
        assert taken.types.tolist() == arrays.types[picked].tolist()
    with pytest.raises(IndexError):
        arrays.take([len(ODD)])
    joined = zone_arrays.ZoneArrays.concat([arrays.take([0, 1]), arrays.take([4, 5])])
    assert_flat_equal(joined.flat, rules.flatten(geometries[[0, 1, 4, 5]]))
    back = pickle.loads(pickle.dumps(arrays))
    assert_flat_equal(back.flat, arrays.flat)
    assert back.types.tolist() == arrays.types.tolist()
    # a ring closed on -0.0 where it starts on 0.0 keeps its bits
    signed = zone_arrays.ZoneArrays.of([shapely.Polygon([(0, 0), (1, 0), (1, 1)])])
    signed.flat.xy[-1, 0] = -0.0
    assert signed.flat.xy[0, 0] == 0 and not np.signbit(signed.flat.xy[0, 0])
    back = pickle.loads(pickle.dumps(signed))
    assert back.flat.xy.tobytes() == signed.flat.xy.tobytes()
    rebuilt = arrays.geometries()
    for made, given in zip(rebuilt, geometries, strict=True):
        if given is None or given.is_empty:
            assert made is None
        else:
            # the same parts, rings and vertices (an empty part is dropped)
            assert_flat_equal(rules.flatten([made]), rules.flatten([given]))
            assert made.geom_type.replace("Multi", "") == given.geom_type.replace(
                "Multi", ""
            )


def test_the_digest_names_the_zones_in_any_process():
    geometries = np.array(voronoi_zones(make_grid((40, 50), seed=2), 30, seed=2))
    digest = zone_arrays.ZoneArrays.of(geometries).digest()
    code = (
        "import numpy as np, shapely, sys\n"
        "from zonal_dask.zones.arrays import ZoneArrays\n"
        "g = shapely.from_wkb(np.array(sys.stdin.read().split(), object))\n"
        "print(ZoneArrays.of(g).digest())\n"
    )
    text = "\n".join(shapely.to_wkb(geometries, hex=True))
    other = subprocess.run(
        [sys.executable, "-c", code],
        input=text,
        capture_output=True,
        check=True,
        text=True,
    )
    assert other.stdout.strip() == digest
    moved = geometries.copy()
    xy = shapely.get_coordinates(moved[:1])
    xy[1, 0] = np.nextafter(xy[1, 0], np.inf)  # one ulp of one vertex
    moved[0] = shapely.set_coordinates(moved[0], xy)
    assert zone_arrays.ZoneArrays.of(moved).digest() != digest


GRID = make_grid((60, 80), seed=5)
GEOMETRIES = voronoi_zones(GRID, 40, seed=5) + special_zones(GRID)


@pytest.mark.parametrize(
    "chunks", [((60,), (80,)), ((7,) * 8 + (4,), (13,) * 6 + (2,))]
)
def test_planned_tasks_hold_the_zones_a_spatial_index_gives(chunks):
    pixel = rules.to_pixel_space(np.array(GEOMETRIES, object), GRID.transform)
    assert_tasks_as_a_spatial_index(pixel, chunks, rules.orientation(GRID.transform))


def test_zones_just_within_or_beyond_reach_of_a_chunk_edge():
    # north-up pixel space: x is the column, y minus the row; chunk edges at
    # columns 0, 10, 20 and rows 0, 10, 20
    reach, line_reach = rules.REACH, rules.LINE_REACH
    near = [10 - reach, 10 + reach, np.nextafter(10 - reach, 0), 10.0, 20 + reach]
    zones = [shapely.box(c - 3, -5, c, -4) for c in near]  # right edge at c
    zones += [shapely.box(c, -5, c + 3, -4) for c in near]  # left edge at c
    zones += [shapely.box(3, -(c - 3), 5, -c) for c in near]  # bottom edge at c
    zones += [
        shapely.LineString([(2, -2), (10 - line_reach, -3)]),
        shapely.LineString([(2, -2), (np.nextafter(10 - line_reach, 0), -3)]),
        shapely.Point(10, -10),
        shapely.Point(20 + reach, -5),
        shapely.box(-1, -21, 21, 1),  # everything
        shapely.Polygon([(-5, 5), (25, 5), (25, -25), (24, -25), (24, 4), (-5, 4)]),
    ]
    chunks = ((10, 10), (10, 10))
    assert_tasks_as_a_spatial_index(np.array(zones, object), chunks, (1, -1))


def assert_tasks_as_a_spatial_index(pixel, chunks, orient):
    tasks = chunk_tasks.plan_chunks(pixel, chunks, orient)
    # the former plan: an STRtree of the geometries queried with each chunk's
    # box grown by the zone's reach, each task holding its own geometries
    tree = shapely.STRtree(pixel)
    reaches = rules.reach(pixel)
    row_edges, col_edges = np.cumsum((0, *chunks[0])), np.cumsum((0, *chunks[1]))
    expected = {}
    for i in range(len(chunks[0])):
        for j in range(len(chunks[1])):
            xs = orient[0] * col_edges[j], orient[0] * col_edges[j + 1]
            ys = orient[1] * row_edges[i], orient[1] * row_edges[i + 1]
            found = []
            for m in np.unique(reaches):
                box = shapely.box(min(xs) - m, min(ys) - m, max(xs) + m, max(ys) + m)
                hits = tree.query(box, predicate="intersects")
                found.extend(hits[reaches[hits] == m])
            if found:
                expected[(i, j)] = np.sort(found)
    assert {t.block: t.zones.tolist() for t in tasks} == {
        b: z.tolist() for b, z in expected.items()
    }
    for t in tasks:
        gathered = t.with_zones()
        assert gathered.zones.tolist() == t.zones.tolist()
        assert_flat_equal(gathered.arrays.flat, rules.flatten(pixel[t.zones]))


def test_each_zone_travels_once_in_the_graph(tmp_path):
    grid = make_grid((300, 400), seed=8)
    geometries = voronoi_zones(grid, 600, seed=8)
    frame = zones_frame(geometries)
    path = tmp_path / "raster.tif"
    grid.to_dataarray().rio.to_raster(path, tiled=True, blockxsize=64, blockysize=64)
    lazy = zd.zonal_stats(frame, str(path), chunks=64, compute=False)
    graph = dict(lazy.__dask_graph__())
    shards = [v for k, v in graph.items() if str(k[0]).startswith("zonal-zones-")]
    ids = np.concatenate([s.ids for s in shards])
    assert np.unique(ids).size == ids.size  # no zone twice
    inside = shapely.intersects(np.array(geometries), shapely.box(*grid.bounds()))
    assert set(ids.tolist()) == set(np.flatnonzero(inside).tolist())
    chunk_count = sum(str(k[0]).startswith("zonal-chunk-") for k in graph)
    assert chunk_count == 35  # many chunks, zones straddling their edges
    layer_wkb = sum(len(w) for w in shapely.to_wkb(np.array(geometries)))
    shipped = len(cloudpickle.dumps(graph, protocol=5))
    in_shards = sum(len(cloudpickle.dumps(s, protocol=5)) for s in shards)
    # the zones once, no heavier than their WKB, and what a graph of 35
    # chunks costs besides (reads, merges, the final table's layout)
    assert in_shards <= layer_wkb
    assert shipped - in_shards <= 20_000


def test_zones_read_keep_their_wkb_and_repairs_are_flattened_again(tmp_path):
    bow_tie = shapely.Polygon([(0, 0), (2, 2), (2, 0), (0, 2), (0, 0)])
    grid = make_grid((40, 50), seed=9)
    x0, y0, x1, y1 = grid.bounds()
    cells = voronoi_zones(grid, 12, seed=9)
    tie = shapely.affinity.scale(bow_tie, (x1 - x0) / 8, (y1 - y0) / 8, origin=(0, 0))
    tie = shapely.affinity.translate(tie, x0 + 3, y0 + 3)
    path = tmp_path / "zones.gpkg"
    zones_frame([*cells, tie]).to_file(path, engine="pyogrio")
    frame, kept = read.read_zones_and_wkb(str(path))
    assert kept is not None
    assert np.array_equal(
        wkb.flat_of_wkb(*kept)[0][4], rules.flatten(frame.geometry.values)[4]
    )
    with pytest.warns(UserWarning, match="1 invalid geometries repaired"):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(read, "ARRAYS_FROM", 0)  # checked on arrays, however few
            pixel = read.zones_on_grid(str(path), grid.to_dataarray())
    assert pixel.source_geometries is None  # checked on arrays, never shapely
    with pytest.warns(UserWarning, match="1 invalid geometries repaired"):
        repaired = repair.make_valid(np.asarray(frame.geometry.values), "zones")
    fresh = zone_arrays.ZoneArrays.of(repaired, pixel.transform)
    assert_flat_equal(pixel.arrays.flat, fresh.flat)
    assert np.array_equal(pixel.arrays.types, fresh.types)
    assert (
        pixel.arrays.flat.xy.shape
        != zone_arrays.ZoneArrays.of(
            frame.geometry.values, pixel.transform
        ).flat.xy.shape
    )  # the repaired bow tie has other vertices than the one read


def test_geoparquet_zones_keep_their_wkb(tmp_path):
    frame = zones_frame(voronoi_zones(make_grid((30, 40), seed=4), 20, seed=4))
    frame.to_parquet(tmp_path / "zones.parquet")
    read_frame, kept = read.read_zones_and_wkb(str(tmp_path / "zones.parquet"))
    assert kept is not None
    parsed = wkb.flat_of_wkb(*kept)
    assert parsed is not None
    assert_flat_equal(rules.Flat(*parsed[0]), rules.flatten(read_frame.geometry.values))


def test_validity_is_checked_in_parts_as_a_whole():
    bow_tie = shapely.Polygon([(0, 0), (2, 2), (2, 0), (0, 2)])
    geometries = np.array([shapely.box(0, 0, 1, 1)] * 120_001, object)
    geometries[[0, 60_000, 120_000]] = bow_tie
    valid = read._is_valid(geometries)
    assert np.array_equal(valid, shapely.is_valid(geometries))
    assert np.flatnonzero(~valid).tolist() == [0, 60_000, 120_000]


def test_geometries_are_read_a_slice_at_a_time_in_order():
    import pyarrow as pa

    from zonal_dask.zones import arrow_read

    geometries = np.array([*ODD[:2], *voronoi_zones(GRID, 9, seed=1)], object)
    column = pa.array(shapely.to_wkb(geometries), pa.binary())
    sliced = arrow_read._geometries(column, step=3)
    assert [g is None for g in sliced] == [g is None for g in geometries]
    present = np.array([g is not None for g in geometries])
    assert shapely.equals_exact(sliced[present], geometries[present], 0).all()


def test_wkb_in_pieces_is_flattened_as_when_joined():
    import pyarrow as pa

    geometries = np.array([*ODD, *voronoi_zones(GRID, 30, seed=5)], object)
    wkb_values = shapely.to_wkb(geometries)
    column = pa.chunked_array(
        [pa.array(list(part), pa.binary()) for part in np.array_split(wkb_values, 4)]
    )
    pieces = wkb.wkb_pieces(column)
    assert len(pieces) == 4
    joined = wkb.flat_of_wkb(*wkb.wkb_of_arrow(column))
    split = wkb.flat_of_wkb_pieces(pieces)
    assert joined is not None and split is not None
    assert_flat_equal(rules.Flat(*split[0]), rules.Flat(*joined[0]))
    assert np.array_equal(split[1], joined[1])
