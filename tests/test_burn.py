"""The burner against GDAL: every zone gets exactly the pixels GDAL gives it
when rasterized alone over the whole raster (``rasterio.features.rasterize``),
bit for bit, under both pixel rules, whatever the chunking and the other zones.

The inputs are chosen where the rules are fragile: vertices on pixel corners,
half pixels and pixel centres, edges through pixel centres and along pixel
edges, chunk edges through all of those, overlapping and repeated zones,
north-up, south-up, mirrored and non-square pixels.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import shapely
from affine import Affine
from dask.array.core import normalize_chunks
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rasterio import features

from zonal_dask.burn import rules
from zonal_dask.labels import chunk_tasks, sources

TRANSFORMS = {
    "odd": Affine(10.0, 0.0, 500_003.7, 0.0, -12.5, 5_000_001.3),
    "slope": Affine(25.525, 0.0, 244300.6123, 0.0, -25.525, 1000868.8012),
    "south-up": Affine(10.0, 0.0, 500_003.7, 0.0, 12.5, 5_000_001.3),
    "landsat": Affine(
        300.0379266750948, 0.0, 101985.0, 0.0, -300.041782729805, 2826915.0
    ),
    "mirrored": Affine(-3.0, 0.0, 100.0, 0.0, -2.0, 50.0),
}


def gdal_masks(geometries, transform, shape, all_touched) -> np.ndarray:
    """GDAL's pixels of each geometry rasterized alone over the whole raster."""
    return np.array(
        [
            features.rasterize(
                [(g, 1)],
                out_shape=shape,
                transform=transform,
                all_touched=all_touched,
                dtype="uint8",
            ).astype(bool)
            for g in geometries
        ]
    )


def zone_masks(geometries, transform, shape, chunks, all_touched) -> np.ndarray:
    """Each zone's pixels as zonal_dask's chunk tasks claim them."""
    pixel = rules.to_pixel_space(np.array(geometries, object), transform)
    chunks = normalize_chunks(chunks, shape)
    masks = np.zeros((len(geometries), *shape), bool)
    for task in chunk_tasks.plan_chunks(pixel, chunks, rules.orientation(transform)):
        (r, c), w = task.offset, task.shape[1]
        for piece in sources.pieces(sources.polygon_labels(task, all_touched)):
            planes = piece.labels.reshape(piece.labels.shape[0], -1)
            plane, flat = np.nonzero(planes >= 0)
            owner = piece.zones[planes[plane, flat]]
            flat = np.concatenate([flat, piece.extra_pixels])
            owner = np.concatenate([owner, piece.zones[piece.extra_zones]])
            rows, cols = np.divmod(flat, w)
            # a zone claims a pixel once
            claims = np.stack([owner, rows, cols])
            assert np.unique(claims, axis=1).shape[1] == claims.shape[1]
            masks[owner, rows + r, cols + c] = True
    return masks


def untouched_cells(geometry, transform, shape) -> np.ndarray:
    """Cells farther than 1/100 pixel from ``geometry``."""
    rows, cols = np.indices(shape)
    x0, y0 = transform * (cols, rows)
    x1, y1 = transform * (cols + 1, rows + 1)
    cells = shapely.box(
        np.minimum(x0, x1), np.minimum(y0, y1), np.maximum(x0, x1), np.maximum(y0, y1)
    )
    reach = 0.01 * min(abs(transform.a), abs(transform.e))
    return shapely.distance(cells, geometry) > reach


def assert_gdal_pixels(geometries, transform, shape, chunks, all_touched):
    expected = gdal_masks(geometries, transform, shape, all_touched)
    actual = zone_masks(geometries, transform, shape, chunks, all_touched)
    if all_touched:
        # GDAL 3.10's all-touched fill claims, now and then, a cell the polygon
        # does not touch at all (rows away from it, when an edge leaves the
        # raster on the right): the burner does not copy that
        for k, geometry in enumerate(geometries):
            spurious = expected[k] & untouched_cells(geometry, transform, shape)
            assert not (actual[k] & spurious).any()
            expected[k] &= ~spurious
    for k, geometry in enumerate(geometries):
        np.testing.assert_array_equal(
            actual[k], expected[k], err_msg=f"zone {k}: {geometry.wkt[:300]}"
        )


@pytest.mark.parametrize("all_touched", [False, True], ids=["centre", "all-touched"])
@pytest.mark.parametrize("name", [n for n in TRANSFORMS if n != "mirrored"])
def test_edges_through_pixel_centres_get_gdals_pixels(name, all_touched):
    """Quads with corners on pixel centres, burnt in several chunkings."""
    transform = TRANSFORMS[name]
    rng = np.random.default_rng(7)
    shape = (41, 53)
    quads = []
    for _ in range(40):
        c0, c1 = np.sort(rng.choice(53, 2, replace=False))
        r0, r1 = np.sort(rng.choice(41, 2, replace=False))
        x0, y0 = transform @ (c0 + 0.5, r0 + 0.5)  # corners on pixel centres
        x1, y1 = transform @ (c1 + 0.5, r1 + 0.5)
        quads.append(
            shapely.Polygon(
                [(x0, y0), (x1, y0 + (y1 - y0) * rng.random()), (x1, y1), (x0, y1)]
            )
        )
    for chunks in [((13, 13, 15), (20, 33)), (41, 53), (5, 7), (1, 53)]:
        assert_gdal_pixels(quads, transform, shape, chunks, all_touched)


def _lattice(rows: int, cols: int):
    """Pixel coordinates around the raster on corners, half pixels or centres,
    or anywhere."""
    top = 2 * max(rows, cols) + 6
    corner = st.integers(-3, top // 2).map(float)
    half = st.integers(-6, top).map(lambda k: k / 2)
    centre = st.integers(-3, top // 2).map(lambda k: k + 0.5)
    free = st.floats(-3, top / 2, allow_nan=False, allow_infinity=False)
    return st.one_of(corner, half, centre, free)


@st.composite
def _zone(draw, rows: int, cols: int, kind: str):
    xy = _lattice(rows, cols)
    if kind == "point":
        points = draw(st.lists(st.tuples(xy, xy), min_size=1, max_size=3))
        return (
            shapely.Point(points[0]) if len(points) == 1 else shapely.MultiPoint(points)
        )
    if kind == "line":
        parts = draw(
            st.lists(
                st.lists(st.tuples(xy, xy), min_size=2, max_size=5),
                min_size=1,
                max_size=2,
            )
        )
        if len(parts) == 1:
            return shapely.LineString(parts[0])
        return shapely.MultiLineString(parts)
    shape = draw(st.sampled_from(["box", "hull", "ring", "holed", "two"]))
    if shape == "box":
        (x0, x1), (y0, y1) = sorted((draw(xy), draw(xy))), sorted((draw(xy), draw(xy)))
        polygon = shapely.box(x0, y0, x1, y1)
    else:
        points = draw(st.lists(st.tuples(xy, xy), min_size=3, max_size=8))
        if shape == "ring":  # any ring, repaired as zonal_dask repairs zones
            polygon = shapely.make_valid(shapely.Polygon(points))
        else:
            polygon = shapely.convex_hull(shapely.MultiPoint(points))
        if shape == "holed":
            polygon = polygon.difference(polygon.centroid.buffer(1, cap_style="square"))
        elif shape == "two":
            x, y = draw(xy), draw(xy)
            polygon = shapely.union(polygon, shapely.box(x, y, x + 3, y + 2))
    polygon = shapely.normalize(polygon) if draw(st.booleans()) else polygon
    parts = [p for p in shapely.get_parts(polygon) if p.geom_type == "Polygon"]
    if not parts:
        return shapely.box(0, 0, 1.5, 2.5)
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


def _to_crs(geometry, t: Affine):
    """A geometry drawn in pixel coordinates, in the raster's CRS."""
    return shapely.affinity.affine_transform(geometry, [t.a, t.b, t.d, t.e, t.c, t.f])


@st.composite
def _cases(draw, kinds: list[str]):
    rows, cols = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    transform = TRANSFORMS[draw(st.sampled_from(sorted(TRANSFORMS)))]
    kind = draw(st.sampled_from(kinds))
    pixel = draw(st.lists(_zone(rows, cols, kind), min_size=1, max_size=5))
    pixel += [pixel[0]] * draw(st.integers(0, 2))  # repeated zones overlap exactly
    geometries = [_to_crs(g, transform) for g in pixel]
    chunks = (draw(st.integers(1, rows)), draw(st.integers(1, cols)))
    return geometries, transform, (rows, cols), chunks, draw(st.booleans())


SETTINGS = settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@SETTINGS
@given(_cases(["polygon"]))
def test_polygons_get_gdals_pixels_whatever_the_chunking(case):
    assert_gdal_pixels(*case)


@SETTINGS
@given(_cases(["line", "point"]))
def test_lines_and_points_get_gdals_pixels_whatever_the_chunking(case):
    assert_gdal_pixels(*case)


def test_far_vertices_are_burnt_as_gdal_burns_them():
    """Vertices beyond the int range of pixels: GDAL's C conversions, exactly."""
    transform, shape = TRANSFORMS["odd"], (17, 19)
    far = shapely.Polygon([(-3e9, 5), (12.5, -4e9), (14, 9.5), (6, 3e10)])
    near = shapely.Polygon([(-1e6, 5.5), (12.5, -4e6), (14, 9.5), (6, 3e6)])
    line = shapely.LineString([(-2e4, 3.5), (9.5, 4.5), (2e4, 14.5)])
    geometries = [_to_crs(g, transform) for g in (far, near, line)]
    for all_touched in (False, True):
        assert_gdal_pixels(geometries, transform, shape, (5, 4), all_touched)


CRASH_PROBE = """
import json, sys
import zonal_dask as zd
out = {}
for name, chunks in (("file", None), ("one-pixel", 1), ("thin", (1, 3))):
    raster = sys.argv[1] if name == "file" else sys.argv[2]
    table = zd.zonal_stats(
        sys.argv[3], raster, ["count"], all_touched=True, chunks=chunks
    )
    out[name] = table["count"].tolist()
print(json.dumps(out))
"""


@pytest.mark.slow
def test_tiny_and_one_pixel_chunks_burn_all_touched_in_a_sound_process(tmp_path):
    """A 1025 x 1025 tiled file (a 1 x 1 corner chunk) and 1-pixel chunks,
    all_touched, in a process of their own: it ends normally with GDAL's
    per-polygon counts (GDAL once corrupted its heap on such chunks)."""
    from .reference import reference_table
    from .synth import make_grid, voronoi_zones, zones_frame

    big = make_grid((1025, 1025), seed=41, nodata=None)
    small = make_grid((23, 19), seed=41)
    t = big.transform
    corner = shapely.box(*(t @ (1020, 1025)), *(t @ (1025, 1020)))  # on corners
    geometries = [*voronoi_zones(big, 6, seed=41), corner]
    frame = zones_frame(geometries)
    frame.to_file(tmp_path / "zones.gpkg", engine="pyogrio")
    big_path = big.write(tmp_path / "big.tif", blocksize=512)
    small_grid = type(small)(small.values, big.transform, small.nodata)
    small_path = small_grid.write(tmp_path / "small.tif")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            CRASH_PROBE,
            big_path,
            small_path,
            tmp_path / "zones.gpkg",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    counts = json.loads(done.stdout.splitlines()[-1])
    for name, grid in (("file", big), ("one-pixel", small_grid), ("thin", small_grid)):
        expected = reference_table(
            geometries, grid, frame.index, ["count"], all_touched=True
        )
        assert counts[name] == expected["count"].tolist(), name
    assert counts["file"][-1] == 25


MEMORY_PROBE = """
import resource, sys
import numpy as np, shapely, geopandas as gpd, xarray as xr, rioxarray
from affine import Affine
import zonal_dask as zd

side = 768
values = np.random.default_rng(0).normal(size=(side, side)).astype("float32")
raster = xr.DataArray(values, dims=("y", "x")).rio.write_crs("EPSG:32633")
raster = raster.rio.write_transform(Affine(1, 0, 0, 0, -1, 0))
disc = shapely.Point(side / 2, -side / 2).buffer(side * 0.45)
peaks = []
for depth in (1, int(sys.argv[1])):
    frame = gpd.GeoDataFrame(geometry=[disc] * depth, crs="EPSG:32633")
    table = zd.zonal_stats(frame, raster, ["count", "mean"], chunks=side)
    assert table["count"].nunique() == 1
    peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print(peaks[1] - peaks[0])
"""


@pytest.mark.slow
def test_memory_does_not_grow_with_overlap_depth():
    """150 identical discs over one 768 x 768 chunk: one plane per overlap
    layer would add 150 x 2.4 MB; the chunk is burnt in pieces instead."""
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, "150"],
        capture_output=True,
        text=True,
        check=True,
    )
    growth_mb = float(done.stdout.splitlines()[-1])
    assert growth_mb < 100, growth_mb


def test_lines_and_points_are_zones_with_their_share_outside():
    from zonal_dask import zonal_stats

    from .reference import assert_tables_close, reference_table
    from .synth import make_grid, zones_frame

    grid = make_grid((31, 43), seed=52)
    t = grid.transform
    geometries = [
        shapely.LineString([t @ (-5.5, 3.2), t @ (20.5, 9.5), t @ (12.2, 30.7)]),
        shapely.MultiLineString(
            [[t @ (1, 1), t @ (40, 29)], [t @ (3, 28), t @ (9, 2)]]
        ),
        shapely.Point(t @ (7.5, 4.5)),  # a pixel centre
        shapely.MultiPoint([t @ (10, 12), t @ (30.25, 7.75), t @ (50, 5)]),
        shapely.box(*(t @ (4, 20)), *(t @ (14, 11))),
    ]
    frame = zones_frame(geometries)
    stats = ["count", "mean", "min", "max", "median"]
    for all_touched in (False, True):
        table = zonal_stats(
            frame,
            grid.to_dataarray(),
            [*stats, "outside_fraction"],
            all_touched=all_touched,
            chunks=(7, 9),
        )
        expected = reference_table(
            geometries, grid, frame.index, stats, all_touched=all_touched
        )
        assert_tables_close(table[stats], expected)
        assert (table["count"] > 0).all()
    inside = shapely.box(*grid.bounds())
    line = geometries[0]
    np.testing.assert_allclose(
        table["outside_fraction"].to_numpy(),
        [1 - line.intersection(inside).length / line.length, 0, 0, 1 / 3, 0],
        atol=1e-12,
    )


def test_a_cell_gdal_claims_untouched_is_not_copied():
    """GDAL 3.10 (all touched) claims row 9 of a one-column raster for this
    triangle, which spans rows 0 and 1 only: the burner claims the touched
    cell alone."""
    transform = TRANSFORMS["odd"]
    triangle = shapely.from_wkt(
        "POLYGON ((500013.7 5000013.8, 500003.7 5000001.3, "
        "500183.7 4999988.8, 500013.7 5000013.8))"
    )
    actual = zone_masks([triangle], transform, (15, 1), (15, 1), True)[0]
    assert np.argwhere(actual).tolist() == [[0, 0]]
    assert_gdal_pixels([triangle], transform, (15, 1), (4, 1), True)
