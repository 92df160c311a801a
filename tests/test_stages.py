"""Each stage on its own: chunk choice, labels, plan, partials, graph, writing."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
import shapely
from affine import Affine
from rasterio import features

import zonal_dask as zd
from zonal_dask.burn import rules
from zonal_dask.io import raster, writers
from zonal_dask.io.grid import MAX_CHUNKS, choose_chunks
from zonal_dask.labels import chunk_tasks, label_raster, sources
from zonal_dask.reduce import finalize, partials
from zonal_dask.run import process_state
from zonal_dask.statistics.fields import PARTIAL_FIELDS
from zonal_dask.statistics.names import resolve

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
    assert choose_chunks(shape, block) == expected


def test_huge_rasters_get_bigger_chunks():
    shape = (1_000_000, 1_000_000)  # a terapixel
    rows, cols = choose_chunks(shape, (512, 512))
    assert rows % 512 == 0 and cols % 512 == 0
    n_chunks = -(-shape[0] // rows) * -(-shape[1] // cols)
    assert n_chunks <= 1.1 * MAX_CHUNKS


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


def test_each_chunk_gets_only_the_zones_near_it():
    transform = GRID.transform
    pixel = rules.to_pixel_space(np.array(GEOMETRIES, object), transform)
    chunks = ((10,) * 5, (14,) * 5)
    tasks = chunk_tasks.plan_chunks(pixel, chunks, rules.orientation(transform))
    for t in tasks:
        (r0, c0), (h, w) = t.offset, t.shape
        box = shapely.box(c0, -(r0 + h), c0 + w, -r0)  # north-up: y is -row
        near = shapely.box(*np.add(box.bounds, (-0.1, -0.1, 0.1, 0.1)))
        assert shapely.intersects(t.geometries, near).all()
        others = np.setdiff1d(np.arange(len(pixel)), t.zones)
        assert not shapely.intersects(pixel[others], near).any()
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


def _exact_deviations(values):
    exact = [Fraction(float(v)) for v in values]
    mean = sum(exact) / len(exact)
    return np.array([v - mean for v in exact], dtype=object)


def _power_sum(deviations, p):
    return float(sum(d**p for d in deviations))


def partial(zone, values):
    values = np.asarray(values, float)
    shift = values[0]
    fields = {f.name: f.fill for f in PARTIAL_FIELDS}
    deviations = _exact_deviations(values)
    fields.update(
        weight=float(values.size),
        nodata=1.0,
        sum=values.sum(),
        shift=shift,
        mean=(values - shift).mean(),
        m2=_power_sum(deviations, 2),
        m3=_power_sum(deviations, 3),
        m4=_power_sum(deviations, 4),
        min=values.min(),
        max=values.max(),
        min_at=float(zone),
        max_at=float(zone),
    )
    return partials.Moments(np.array([zone]), np.array([list(fields.values())]))


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
    assert merged.field("weight").tolist() == [1, both.size]
    assert merged.field("nodata").tolist() == [1, 3]
    mean = merged.field("shift")[1] + merged.field("mean")[1]
    np.testing.assert_allclose(mean, both.mean(), rtol=1e-15)
    deviations = _exact_deviations(both)
    for p in (2, 3, 4):  # Chan's and Pébay's formulas over four parts
        expected = _power_sum(deviations, p)
        np.testing.assert_allclose(merged.field(f"m{p}")[1], expected, rtol=1e-9)
    assert merged.field("min")[1] == both.min()
    assert merged.field("max")[1] == both.max()


def test_finalize_gives_every_zone_a_row():
    layout = finalize.Layout(
        resolve([*zd.DEFAULT_STATS, "nodata_count"]),
        pd.Index([10, 20, 30], name="fid"),
    )
    block = finalize.block_table(partial(1, [2.0, 4.0]), None, 1, None, layout)
    table = finalize.table([block], None, None, [], layout)
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
        resolve("mean,mean")


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

    monkeypatch.setitem(writers._WRITERS, ".csv", broken)
    with pytest.raises(zd.OutputError, match=r"cannot write \(disk full\); nothing"):
        writers.write_table(pd.DataFrame({"a": [1]}), tmp_path / "t.csv")
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


def test_collections_of_mixed_dimensions_are_refused_naming_the_feature():
    point = shapely.Point(GRID.transform @ (5, 5))
    collection = shapely.GeometryCollection([point, point.buffer(30)])
    match = "feature 0 is a GeometryCollection of points and polygons"
    with pytest.raises(zd.ZonesError, match=match):
        zd.zonal_stats(zones_frame([collection]), GRID.to_dataarray())


def test_duplicate_zone_ids_are_refused():
    frame = FRAME.assign(name="same")
    with pytest.raises(zd.ZonesError, match="repeats the value 'same'"):
        zd.zonal_stats(frame, GRID.to_dataarray(), zone_id="name")


def test_tables_get_the_usual_file_permissions(tmp_path):
    table = writers.write_table(pd.DataFrame({"a": [1]}), tmp_path / "t.csv")
    probe = tmp_path / "probe"
    probe.write_text("")
    assert table.stat().st_mode & 0o777 == probe.stat().st_mode & 0o777


def _pixel_geometries(geometries: list) -> np.ndarray:
    present = [g for g in geometries if not g.is_empty]
    return rules.to_pixel_space(np.array(present, object), GRID.transform)


def _chunk(geometries: list, **kwargs) -> sources.ChunkLabels:
    pixel = _pixel_geometries(geometries)
    orient = rules.orientation(GRID.transform)
    task = chunk_tasks.ChunkTask.whole(pixel, GRID.shape, orient)
    return sources.polygon_labels(task, **kwargs)


def _claims(chunk: sources.ChunkLabels) -> set[tuple[int, int]]:
    """Every (pixel, zone) claim of a chunk, whatever its layers."""
    planes, pixels = np.nonzero(chunk.labels.reshape(chunk.labels.shape[0], -1) >= 0)
    zones = chunk.labels.reshape(chunk.labels.shape[0], -1)[planes, pixels]
    claims = set(zip(pixels.tolist(), zones.tolist(), strict=True))
    extra = zip(chunk.extra_pixels.tolist(), chunk.extra_zones.tolist(), strict=True)
    return claims | set(extra)


@pytest.mark.parametrize("all_touched", [False, True])
def test_deep_overlaps_are_burnt_in_pieces_with_the_same_claims(
    monkeypatch, all_touched
):
    centres = [GRID.transform @ (c, r) for r, c in [(20, 20), (25, 30), (30, 25)]]
    discs = [shapely.Point(xy).buffer(120) for xy in centres]
    geometries = voronoi_zones(GRID, 15, seed=24) + discs * 3
    monkeypatch.setattr(sources, "sparse_budget", lambda shape: 10**9)
    whole = _chunk(geometries, all_touched=all_touched)  # one piece
    assert isinstance(whole, sources.ChunkLabels) and whole.extra_pixels.size > 0
    monkeypatch.setattr(sources, "sparse_budget", lambda shape: 10)
    pieces = _chunk(geometries, all_touched=all_touched)
    assert isinstance(pieces, sources.BurntPieces)
    parts = list(sources.pieces(pieces))
    assert len(parts) > 3
    # every zone's claims are in one piece, and all pieces hold the same claims
    claims = [_claims(p) for p in parts]
    owners = [{zone for _, zone in c} for c in claims]
    assert all(not (a & b) for i, a in enumerate(owners) for b in owners[i + 1 :])
    assert set().union(*claims) == _claims(whole)
    np.testing.assert_array_equal(
        label_raster.global_labels(pieces), label_raster.global_labels(whole)
    )


def test_adjacent_zones_are_never_coloured(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("overlap_layers called for a partition")

    monkeypatch.setattr(rules, "overlap_layers", refuse)
    chunk = _chunk(voronoi_zones(GRID, 40, seed=25))
    assert chunk.labels.shape[0] == 1 and chunk.extra_pixels.size == 0


def test_gc_paused_nests_across_threads_and_restores_the_thresholds():
    import gc
    import threading

    before = gc.get_threshold()
    inside = []

    def work():
        with process_state.gc_paused():
            inside.append(gc.get_threshold()[0])

    with process_state.gc_paused():
        gc.enable()  # as dask's slicing does on its way out: no effect
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert gc.get_threshold()[0] == 0
    assert inside == [0, 0, 0, 0]
    assert gc.get_threshold() == before


def test_a_chunk_task_pickles_to_the_same_task():
    """Chunk tasks travel to workers as one WKB blob: every geometry (None,
    empty, multi-part, lines, points) and field comes back exactly."""
    import pickle

    geometries = np.array(
        [
            shapely.Polygon(
                [(0.1, 0.2), (3.3, 0.2), (1.7, 2.9)], [[(1, 1), (1.5, 1), (1.2, 1.4)]]
            ),
            None,
            shapely.Point(2.5, 7.25),
            shapely.from_wkt("MULTILINESTRING ((0 0, 1 1), (2 2, 3 3))"),
            shapely.Polygon(),
        ],
        dtype=object,
    )
    task = chunk_tasks.ChunkTask.whole(geometries, (9, 7), (1, -1), np.arange(5))
    back = pickle.loads(pickle.dumps(task))
    for a, b in zip(task.geometries, back.geometries, strict=True):
        assert (a is None and b is None) or shapely.equals_exact(a, b, 0)
    assert back.zones.dtype == np.int64
    np.testing.assert_array_equal(back.zones, task.zones)
    np.testing.assert_array_equal(back.layers, task.layers)
    assert (
        back.block,
        back.offset,
        back.shape,
        back.orientation,
        back.raster_shape,
    ) == (task.block, task.offset, task.shape, task.orientation, task.raster_shape)
