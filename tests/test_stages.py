"""Each stage on its own: chunk choice, labels, plan, partials, graph, writing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from affine import Affine
from rasterio import features

import zonal_dask as zd
from zonal_dask import burn, finalize, labels, output, partials, raster, runtime, zones

from .reference import assert_tables_close, reference_stats
from .synth import make_grid, special_zones, voronoi_zones, zones_frame


@pytest.mark.parametrize(
    ("shape", "block", "expected"),
    [
        ((4000, 4000), (512, 512), (1024, 1024)),
        ((4000, 4000), (256, 256), (1024, 1024)),
        ((4000, 4000), (384, 384), (768, 1152)),  # area nearest the target
        ((100, 100), (16, 16), (100, 100)),
        ((5000, 3000), (1, 3000), (350, 3000)),  # strips: full width
        ((84, 78), (1, 78), (84, 78)),
    ],
)
def test_chunks_are_whole_blocks(shape, block, expected):
    assert raster.choose_chunks(shape, block) == expected


def test_huge_rasters_get_bigger_chunks():
    shape = (1_000_000, 1_000_000)  # a terapixel
    rows, cols = raster.choose_chunks(shape, (512, 512))
    assert rows % 512 == 0 and cols % 512 == 0
    n_chunks = -(-shape[0] // rows) * -(-shape[1] // cols)
    assert n_chunks <= 1.1 * raster.MAX_CHUNKS


def test_file_chunks_follow_its_tiles(tmp_path):
    grid = make_grid((100, 90))
    path = grid.write(tmp_path / "tiled.tif", blocksize=32)
    array = raster.open_raster(path, chunks=None)
    assert array.chunks == ((100,), (90,))  # small: one chunk
    array = raster.open_raster(path, chunks=(64, 32))
    assert array.chunks == ((64, 36), (32, 32, 26))
    assert array.rio.nodata == grid.nodata


GRID = make_grid((50, 70), seed=21)
GEOMETRIES = voronoi_zones(GRID, 15, seed=21) + special_zones(GRID)
FRAME = zones_frame(GEOMETRIES)


def test_label_array_has_the_raster_chunks_and_per_polygon_pixels():
    cells = voronoi_zones(GRID, 15, seed=21)
    blob = shapely.Point(*(GRID.transform @ (30, 20))).buffer(150)
    geometries = [*cells, blob]  # the blob overlaps cells, and has the top index
    raster = GRID.to_dataarray().chunk({"y": 13, "x": 17})
    labels = zd.rasterize_zones(zones_frame(geometries), raster)
    assert labels.chunks == raster.chunks
    values = labels.values

    def alone(geometry):
        return features.rasterize(
            [(geometry, 1)], out_shape=GRID.shape, transform=GRID.transform
        ).astype(bool)

    on_blob = alone(blob)
    assert on_blob.sum() > 50
    np.testing.assert_array_equal(values == len(cells), on_blob)
    for zone, geometry in enumerate(cells):
        np.testing.assert_array_equal(values == zone, alone(geometry) & ~on_blob)


def test_each_chunk_gets_only_the_zones_that_meet_it():
    transform = GRID.transform
    pixel = burn.to_pixel_space(np.array(GEOMETRIES, object), transform)
    chunks = ((10,) * 5, (14,) * 5)
    tasks = zones.plan_chunks(pixel, chunks, burn.orientation(transform))
    for t in tasks:
        (r0, c0), (h, w) = t.offset, t.shape
        box = shapely.box(c0, -(r0 + h), c0 + w, -r0)  # north-up: y is -row
        assert shapely.intersects(t.geometries, box).all()
        others = np.setdiff1d(np.arange(len(pixel)), t.zones)
        assert not shapely.intersects(pixel[others], box).any()
    assert len({t.block for t in tasks}) == len(tasks)


def test_chunks_no_zone_meets_are_never_read(tmp_path):
    grid = make_grid((64, 64), seed=22)
    path = grid.write(tmp_path / "g.tif")
    corner = shapely.box(
        *(grid.transform @ (1.2, 10.3)), *(grid.transform @ (10.1, 1.4))
    )
    lazy = zd.zonal_stats(zones_frame([corner]), path, chunks=16, compute=False)
    graph = dict(lazy.__dask_graph__())
    chunk_keys = [k for k in graph if isinstance(k, tuple) and "zonal-chunk" in k[0]]
    assert chunk_keys == [(chunk_keys[0][0], 0, 0)]
    # only the one block it needs is read: culling drops the other 15 reads
    culled = lazy.__dask_optimize__(lazy.__dask_graph__(), lazy.__dask_keys__())
    reads = [k for k in dict(culled) if isinstance(k, tuple) and len(k) == 3]
    assert len(reads) <= 3  # the chunk task and its block (through getitem)


def test_the_two_burn_path_for_crowded_chunks_agrees(monkeypatch):
    cells = voronoi_zones(GRID, 15, seed=23)
    blob = shapely.Point(*GRID.transform @ (35, 25)).buffer(200)
    geometries = [*cells, blob, blob]
    expected = reference_stats(geometries, GRID, zones_frame(geometries).index)
    monkeypatch.setattr(burn, "MAX_ENCODED_ZONES", 2)
    actual = zd.zonal_stats(zones_frame(geometries), GRID.to_dataarray(), chunks=16)
    assert_tables_close(actual, expected)


def partial(zone, values):
    values = np.asarray(values, float)
    shift = values[0]
    return partials.Moments(
        zone=np.array([zone]),
        weight=np.array([float(values.size)]),
        posinf=np.array([0.0]),
        neginf=np.array([0.0]),
        nodata=np.array([1.0]),
        sum=np.array([values.sum()]),
        carry=np.array([0.0]),
        shift=np.array([shift]),
        mean=np.array([(values - shift).mean()]),
        m2=np.array([((values - values.mean()) ** 2).sum()]),
        min=np.array([values.min()]),
        max=np.array([values.max()]),
    )


def test_merge_is_chan_and_ignores_empty_parts():
    rng = np.random.default_rng(0)
    pieces = [1e8 + rng.normal(0, 1, n) for n in (5, 1, 17, 3)]
    merged = partials.merge_moments(
        [
            partial(4, pieces[0]),
            partials.Moments.empty(),
            partial(2, pieces[1]),
            partial(4, pieces[2]),
            partial(4, pieces[3]),
        ]
    )
    assert merged.zone.tolist() == [2, 4]
    both = np.concatenate([pieces[0], pieces[2], pieces[3]])
    assert merged.weight.tolist() == [1, both.size]
    assert merged.nodata.tolist() == [1, 3]
    mean = merged.shift[1] + merged.mean[1]
    np.testing.assert_allclose(mean, both.mean(), rtol=1e-15)
    m2 = ((both - both.mean()) ** 2).sum()
    np.testing.assert_allclose(merged.m2[1], m2, rtol=1e-9)
    assert merged.min[1] == both.min() and merged.max[1] == both.max()


def test_finalize_gives_every_zone_a_row():
    layout = finalize.Layout(
        zd.stats.resolve([*zd.DEFAULT_STATS, "nodata_count"]),
        pd.Index([10, 20, 30], name="fid"),
    )
    table = finalize.table([partial(1, [2.0, 4.0])], [1], None, [], layout)
    assert table["count"].tolist() == [0, 2, 0]
    assert table["nodata_count"].tolist() == [0, 1, 0]
    assert table.loc[20, "mean"] == 3 and table.loc[20, "std"] == 1
    assert (
        table.loc[[10, 30]].drop(columns=["count", "nodata_count"]).isna().all().all()
    )


def test_unknown_and_repeated_statistics_fail_before_any_work():
    with pytest.raises(zd.StatisticError, match="valid names: count, nodata_count"):
        zd.zonal_stats("does-not-exist.shp", "nor-this.tif", stats=["mean", "q42"])
    with pytest.raises(zd.StatisticError, match="repeated"):
        zd.stats.resolve("mean,mean")


def test_rotated_rasters_are_refused():
    array = GRID.to_dataarray().rio.write_transform(
        GRID.transform @ Affine.rotation(10)
    )
    with pytest.raises(zd.RasterError, match="rotated or sheared"):
        zd.zonal_stats(FRAME, array)


def test_south_up_rasters_match_gdal_and_the_north_up_answer():
    t = GRID.transform
    rows = GRID.shape[0]
    south_up = type(GRID)(
        GRID.values[::-1].copy(),
        Affine(t.a, 0, t.c, 0, -t.e, t.f + t.e * rows),
        GRID.nodata,
    )
    actual = zd.zonal_stats(FRAME, south_up.to_dataarray(), chunks=9)
    assert_tables_close(actual, reference_stats(GEOMETRIES, south_up, FRAME.index))
    # the Voronoi cells have no edge exactly on a pixel centre: same pixels
    north_up = zd.zonal_stats(FRAME, GRID.to_dataarray())
    assert_tables_close(actual.iloc[:15], north_up.iloc[:15])


def test_inputs_are_not_modified():
    frame = FRAME.copy()
    array = GRID.to_dataarray()
    before = array.values.copy()
    zd.zonal_stats(frame, array, chunks=8)
    pd.testing.assert_frame_equal(frame, FRAME)
    np.testing.assert_array_equal(array.values, before)


def test_a_failed_write_leaves_nothing(tmp_path, monkeypatch):
    def broken(table, tmp):
        with open(tmp, "w") as f:
            f.write("half")
        raise OSError("disk full")

    monkeypatch.setitem(output._WRITERS, ".csv", broken)
    with pytest.raises(zd.OutputError, match=r"cannot write \(disk full\); nothing"):
        output.write_table(pd.DataFrame({"a": [1]}), tmp_path / "t.csv")
    assert list(tmp_path.iterdir()) == []


def test_invalid_geometries_are_repaired_with_a_warning():
    bowtie = shapely.Polygon(
        [
            GRID.transform @ (5, 5),
            GRID.transform @ (30, 30),
            GRID.transform @ (30, 5),
            GRID.transform @ (5, 30),
        ]
    )
    assert not bowtie.is_valid
    with pytest.warns(UserWarning, match="1 invalid geometries repaired"):
        table = zd.zonal_stats(zones_frame([bowtie]), GRID.to_dataarray())
    repaired = shapely.make_valid(bowtie)
    expected = reference_stats([repaired], GRID, table.index)
    assert_tables_close(table, expected)


def test_points_are_refused_with_their_type():
    point = shapely.Point(GRID.transform @ (5, 5))
    with pytest.raises(zd.ZonesError, match="found Point"):
        zd.zonal_stats(zones_frame([point]), GRID.to_dataarray())


def test_duplicate_zone_ids_are_refused():
    frame = FRAME.assign(name="same")
    with pytest.raises(zd.ZonesError, match="repeats the value 'same'"):
        zd.zonal_stats(frame, GRID.to_dataarray(), zone_id="name")


def test_tables_get_the_usual_file_permissions(tmp_path):
    table = output.write_table(pd.DataFrame({"a": [1]}), tmp_path / "t.csv")
    probe = tmp_path / "probe"
    probe.write_text("")
    assert table.stat().st_mode & 0o777 == probe.stat().st_mode & 0o777


def test_crowded_pixels_fall_back_to_two_burns(monkeypatch):
    # one layer holding overlapping zones: pixels with several claims
    pixel = burn.to_pixel_space(np.array(GEOMETRIES, object), GRID.transform)
    task = zones.ChunkTask.whole(pixel, GRID.shape, burn.orientation(GRID.transform))
    encoded = labels.polygon_labels(task)
    monkeypatch.setattr(burn, "MAX_CLAIMS", 1)
    plain = labels.polygon_labels(task)
    assert encoded.extra_pixels.size > 0  # the case is not vacuous
    for a, b in zip(encoded[:4], plain[:4], strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "transform",
    [
        Affine(10.0, 0.0, 500_003.7, 0.0, -12.5, 5_000_001.3),
        Affine(25.525, 0.0, 244300.6123, 0.0, -25.525, 1000868.8012),
        Affine(10.0, 0.0, 500_003.7, 0.0, 12.5, 5_000_001.3),  # south-up
        Affine(300.0379266750948, 0.0, 101985.0, 0.0, -300.041782729805, 2826915.0),
    ],
    ids=["odd", "slope", "south-up", "landsat"],
)
def test_edges_through_pixel_centres_get_gdals_pixels(transform):
    """Chunked labels equal GDAL's whole-raster, per-polygon answer bit for bit."""
    rng = np.random.default_rng(7)
    shape = (41, 53)
    orient = burn.orientation(transform)
    for _ in range(40):
        c0, c1 = np.sort(rng.choice(53, 2, replace=False))
        r0, r1 = np.sort(rng.choice(41, 2, replace=False))
        x0, y0 = transform @ (c0 + 0.5, r0 + 0.5)  # corners on pixel centres
        x1, y1 = transform @ (c1 + 0.5, r1 + 0.5)
        polygon = shapely.Polygon(
            [(x0, y0), (x1, y0 + (y1 - y0) * rng.random()), (x1, y1), (x0, y1)]
        )
        expected = features.rasterize(
            [(polygon, 1)], out_shape=shape, transform=transform
        ).astype(bool)
        pixel = burn.to_pixel_space(np.array([polygon], object), transform)
        chunks = ((13, 13, 15), (20, 33))
        got = np.zeros(shape, bool)
        for t in zones.plan_chunks(pixel, chunks, orient):
            chunk = labels.polygon_labels(t)
            (r, c), (h, w) = t.offset, t.shape
            got[r : r + h, c : c + w] |= labels.global_labels(chunk) == 0
        np.testing.assert_array_equal(got, expected)


def _pixel_geometries(geometries: list) -> np.ndarray:
    present = [g for g in geometries if not g.is_empty]
    return burn.to_pixel_space(np.array(present, object), GRID.transform)


@pytest.mark.parametrize(
    "kinds",
    ["polygons only", "polygons and multipolygons", "with a collection"],
)
def test_geojson_gives_gdal_the_same_coordinates(kinds):
    pixel = _pixel_geometries(GEOMETRIES)
    if kinds == "polygons only":
        pixel = pixel[shapely.get_type_id(pixel) == 3]
    elif kinds == "with a collection":
        pixel = np.append(pixel, shapely.GeometryCollection([pixel[0], pixel[1]]))
    shapes = burn.geojson(pixel)
    assert len(shapes) == len(pixel)
    if kinds == "with a collection":
        assert shapes[-1] is pixel[-1]  # passed through, for rasterio to convert
    transform = burn.window_transform((1, -1), 0, 0)
    for shape, geometry in zip(shapes, pixel, strict=True):
        ours, theirs = (
            features.rasterize(
                [(g, 1)], out_shape=GRID.shape, transform=transform, dtype="uint8"
            )
            for g in (shape, geometry)
        )
        np.testing.assert_array_equal(ours, theirs)
        assert shapely.equals(shapely.geometry.shape(shape), geometry)


def test_decode_claims_splits_single_and_shared_pixels():
    from zonal_dask.kernels import decode_claims

    def claim(zone: int) -> int:
        return ((zone + 1) << 16) | 1

    burn = np.array([[0, claim(0), claim(4)], [claim(1) + claim(2), claim(7), 0]])
    labels, shared, exact = decode_claims(burn, 16, 4)
    assert exact
    np.testing.assert_array_equal(labels, [[-1, 0, 4], [-1, 7, -1]])
    np.testing.assert_array_equal(shared, [3])
    *_, exact = decode_claims(burn, 16, 1)  # two claims exceed a limit of one
    assert not exact


def _chunk(geometries: list, **kwargs) -> labels.ChunkLabels:
    pixel = _pixel_geometries(geometries)
    orient = burn.orientation(GRID.transform)
    task = zones.ChunkTask.whole(pixel, GRID.shape, orient)
    return labels.polygon_labels(task, **kwargs)


def _claims(chunk: labels.ChunkLabels) -> set[tuple[int, int]]:
    """Every (pixel, zone) claim of a chunk, whatever its layers."""
    planes, pixels = np.nonzero(chunk.labels.reshape(chunk.labels.shape[0], -1) >= 0)
    zones = chunk.labels.reshape(chunk.labels.shape[0], -1)[planes, pixels]
    claims = set(zip(pixels.tolist(), zones.tolist(), strict=True))
    extra = zip(chunk.extra_pixels.tolist(), chunk.extra_zones.tolist(), strict=True)
    return claims | set(extra)


@pytest.mark.parametrize("all_touched", [False, True])
def test_chunks_with_many_shared_pixels_are_burnt_in_layers(monkeypatch, all_touched):
    centres = [GRID.transform @ (c, r) for r, c in [(20, 20), (25, 30), (30, 25)]]
    discs = [shapely.Point(xy).buffer(120) for xy in centres]
    geometries = voronoi_zones(GRID, 15, seed=24) + discs
    resolved = _chunk(geometries, all_touched=all_touched)  # few: one by one
    assert resolved.labels.shape[0] == 1 and resolved.extra_pixels.size > 0
    monkeypatch.setattr(burn, "MAX_RESOLVED_PIXELS", 10)
    layered = _chunk(geometries, all_touched=all_touched)
    assert layered.labels.shape[0] > 1
    assert _claims(layered) == _claims(resolved)


def test_adjacent_zones_are_never_coloured(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("overlap_layers called for a partition")

    monkeypatch.setattr(burn, "overlap_layers", refuse)
    chunk = _chunk(voronoi_zones(GRID, 40, seed=25))
    assert chunk.labels.shape[0] == 1 and chunk.extra_pixels.size == 0


def test_gc_paused_nests_across_threads_and_restores_the_thresholds():
    import gc
    import threading

    before = gc.get_threshold()
    inside = []

    def work():
        with runtime.gc_paused():
            inside.append(gc.get_threshold()[0])

    with runtime.gc_paused():
        gc.enable()  # as dask's slicing does on its way out: no effect
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert gc.get_threshold()[0] == 0
    assert inside == [0, 0, 0, 0]
    assert gc.get_threshold() == before
