"""Coverage weighting under zones nested many deep (issue 24): the chunk's
claims come in pieces (``CoveragePieces``), so that its memory is bounded by
the chunk, not by the zones' depth, with the same results to the bit."""

from __future__ import annotations

import pickle
import tracemalloc

import dask
import numpy as np
import pandas as pd
import pytest
import shapely
from exactextract import exact_extract

import zonal_dask as zd
from zonal_dask.labels import coverage_source
from zonal_dask.labels.chunk_tasks import ChunkTask
from zonal_dask.labels.coverage_source import CoveragePieces, coverage_labels
from zonal_dask.labels.sources import persisted, pieces, polygon_labels
from zonal_dask.reduce.partials import chunk_step

from .synth import make_grid, zones_frame

EE_STATS = ["count", "sum", "mean", "min", "max", "stdev"]


def nested(centre: tuple[float, float], radius: float, n: int) -> list:
    """``n`` discs, each inside the previous, and off the grid's lines."""
    point = shapely.Point(centre)
    return [point.buffer(radius * (1 - k / n), quad_segs=24) for k in range(n)]


def nested_frame(grid, n: int = 40) -> object:
    xmin, ymin, xmax, ymax = grid.bounds()
    centre = (0.53 * xmin + 0.47 * xmax, 0.51 * ymin + 0.49 * ymax)
    discs = nested(centre, 0.48 * min(xmax - xmin, ymax - ymin), n)
    ring = discs[3].difference(discs[20])  # a hole, over the rest
    return zones_frame([*discs, ring])


@pytest.mark.parametrize("chunks", [None, 32, (17, 23)])
def test_nested_zones_match_exactextract(tmp_path, chunks):
    grid = make_grid((80, 96), seed=24, nan_fraction=0.02)
    frame = nested_frame(grid)
    path = grid.write(tmp_path / "grid.tif")
    ours = zd.zonal_stats(frame, path, EE_STATS, coverage="fraction", chunks=chunks)
    theirs = exact_extract(str(path), frame, EE_STATS, output="pandas")
    theirs = theirs.set_axis(frame.index)
    np.testing.assert_allclose(ours[EE_STATS], theirs[EE_STATS], rtol=1e-9)
    assert (ours["count"] % 1 != 0).all()  # fractional: really weighted


def test_a_chunk_under_nested_zones_comes_in_pieces_each_zone_in_one():
    side = 96
    discs = nested((side / 2 + 0.3, -side / 2 - 0.2), side / 2 - 1, 30)
    task = ChunkTask.whole(np.array(discs, dtype=object), (side, side))
    labels = coverage_labels(task)
    assert isinstance(labels, CoveragePieces)
    parts = list(pieces(labels))
    assert len(parts) > 2
    owners = [np.unique(p.zones[p.extra_zones]) for p in parts]
    found = np.concatenate(owners)
    assert np.array_equal(np.sort(found), np.arange(30))  # each zone once
    # the pieces hold the claims one piece holds, in the same order per zone
    whole = coverage_source.coverage_piece(task, coverage_source.FRACTION, None, None)
    joined = [np.concatenate([getattr(p, f) for p in parts]) for f in CLAIMS]
    for field, column in zip(CLAIMS, joined, strict=True):
        np.testing.assert_array_equal(column, getattr(whole, field))


def test_coverage_pieces_travel_and_are_kept_computed():
    side = 64
    discs = nested((side / 2 + 0.3, -side / 2 - 0.2), side / 2 - 1, 12)
    task = ChunkTask.whole(np.array(discs, dtype=object), (side, side))
    labels = coverage_labels(task)
    assert isinstance(labels, CoveragePieces)
    expected = list(labels)
    # to another worker: the zones travel with it
    travelled = list(pickle.loads(pickle.dumps(labels)))
    # kept by a persisted source (a series' zones): computed once, not lazy
    source = persisted(coverage_source.coverage_source([task], pd.RangeIndex(12)))
    (value,) = dask.compute(*source.dependencies, scheduler="sync")
    assert isinstance(value, tuple)
    for found in (travelled, list(value)):
        assert len(found) == len(expected)
        for piece, other in zip(found, expected, strict=True):
            for field in CLAIMS:
                np.testing.assert_array_equal(
                    getattr(piece, field), getattr(other, field)
                )


CLAIMS = ("extra_pixels", "extra_zones", "extra_weights")
ALL_STATS = ["count", "sum", "mean", "min", "max", "std", "median"]
ALL_STATS += ["majority", "percentile_10", "unique", "range"]


@pytest.mark.parametrize("group_by", [False, True])
def test_pieces_give_the_bits_one_piece_gives(tmp_path, monkeypatch, group_by):
    grid = make_grid((96, 80), seed=5, nan_fraction=0.02)
    frame = nested_frame(grid, 40)
    options = {}
    if group_by:  # each disc with a box of its own below them all, in
        # another order: zones of two parts, the zones over one another
        xmin, ymin = grid.bounds()[:2]
        boxes = [
            shapely.box(x, y, x + 18, y + 20)
            for x, y in zip(
                xmin + 5 + 39 * (np.arange(41) % 20),
                ymin + 10 + 40 * (np.arange(41) // 20),
                strict=True,
            )
        ]
        frame = zones_frame([*frame.geometry, *boxes])
        frame["group"] = np.concatenate([np.arange(41), (7 * np.arange(41)) % 41])
        options["group_by"] = "group"
    path = grid.write(tmp_path / "grid.tif")

    cut = coverage_source.piece_members
    counts: list[int] = []

    def counted(*args):
        found = cut(*args)
        counts.append(len(found))
        return found

    monkeypatch.setattr(coverage_source, "piece_members", counted)

    def run():
        counts.clear()
        table = zd.zonal_stats(frame, path, ALL_STATS, coverage="fraction", **options)
        return table, max(counts)

    pieced, most = run()
    assert most > 2
    monkeypatch.setattr(coverage_source, "claims_budget", lambda shape: 10**15)
    whole, most = run()
    assert most == 1
    pd.testing.assert_frame_equal(pieced, whole, check_exact=True)
    assert pieced["count"].gt(0).all()


def _step_peak(make_labels, task: ChunkTask, values: np.ndarray) -> int:
    """tracemalloc's peak while a chunk's labels are made and its step runs."""
    tracemalloc.start()
    try:
        chunk_step(values, make_labels(task))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_coverage_step_under_nested_zones_is_bounded_by_the_chunk():
    # 60 discs nested over one 300² chunk: about 1.4 million claims in all,
    # against 90,000 pixels; count and mean need no claim kept
    side = 300
    discs = nested((side / 2 + 0.3, -side / 2 - 0.2), side / 2 - 1, 60)
    task = ChunkTask.whole(np.array(discs, dtype=object), (side, side))
    values = np.random.default_rng(1).normal(100, 10, (side, side))
    small = ChunkTask.whole(np.array(discs[:3], dtype=object), (side, side))
    for make in (polygon_labels, coverage_labels):  # kernels compiled first
        chunk_step(values, make(small))
    centre = _step_peak(polygon_labels, task, values)
    coverage = _step_peak(coverage_labels, task, values)
    assert coverage <= 3 * centre, (coverage / 2**20, centre / 2**20)


def test_nested_zones_on_a_cluster_give_the_local_bits(tmp_path, local_cluster):
    grid = make_grid((80, 96), seed=7)
    frame = nested_frame(grid, 30)
    path = grid.write(tmp_path / "grid.tif")
    options = {"coverage": "fraction", "chunks": 32}
    local = zd.zonal_stats(frame, path, ALL_STATS, **options)
    lazy = zd.zonal_stats(frame, path, ALL_STATS, compute=False, **options)
    remote = local_cluster.compute(lazy).result()
    pd.testing.assert_frame_equal(remote, local, check_exact=True)
