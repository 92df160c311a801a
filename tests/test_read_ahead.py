"""Zones read on a thread while a run starts (``zones.read_ahead``)."""

from __future__ import annotations

import os

import pandas as pd
import pytest
import rioxarray  # noqa: F401  (.rio)

import zonal_dask as zd
from zonal_dask.cli.main import main
from zonal_dask.errors import LayerError, ZonesError
from zonal_dask.io.raster import LABEL_RASTER_SUFFIXES
from zonal_dask.zones import read_ahead

from .synth import make_grid, voronoi_zones, zones_frame


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("read_ahead")
    grid = make_grid((60, 80), seed=71)
    frame = zones_frame(voronoi_zones(grid, 12, seed=71))
    zones = d / "zones.gpkg"
    frame.to_file(zones, engine="pyogrio")
    layers = d / "layers.gpkg"
    frame.to_file(layers, layer="a", engine="pyogrio")
    frame.iloc[:5].to_file(layers, layer="b", engine="pyogrio")
    return zones, layers, grid.write(d / "grid.tif")


@pytest.fixture
def taken(monkeypatch):
    """What each ``read_table`` took from a reading ahead (None: nothing)."""
    seen: list = []
    take = read_ahead.take

    def spy(path, layer):
        result = take(path, layer)
        seen.append(result)
        return result

    monkeypatch.setattr(read_ahead, "take", spy)
    return seen


def _fids(result):
    meta, table = result
    return table.column(meta["fid_column"]).to_pylist()


def test_a_layer_read_ahead_is_read_arrows_and_taken_once(inputs):
    from pyogrio.raw import read_arrow

    zones, layers, _ = inputs
    key = read_ahead.start(zones)
    assert key is not None
    ahead = read_ahead.take(str(zones), None)
    meta, table = read_arrow(zones, return_fids=True)
    assert ahead[0] == meta and ahead[1].equals(table)
    assert read_ahead.take(str(zones), None) is None  # taken: read again
    # the layer named, or the only one; not a choice to make
    read_ahead.start(layers, "b")
    assert len(_fids(read_ahead.take(str(layers), "b"))) == 5
    read_ahead.start(layers)
    assert read_ahead.take(str(layers), None) is None


def test_a_file_changed_meanwhile_is_read_again(inputs, tmp_path):
    zones, _, _ = inputs
    copy = tmp_path / "zones.gpkg"
    copy.write_bytes(zones.read_bytes())
    read_ahead.start(copy)
    zones_frame(voronoi_zones(make_grid((60, 80), seed=72), 3, seed=72)).to_file(
        copy, engine="pyogrio"
    )
    assert read_ahead.take(str(copy), None) is None


def test_only_local_vector_files_are_read_ahead(inputs, tmp_path):
    zones, _, raster = inputs
    assert set(LABEL_RASTER_SUFFIXES) <= set(read_ahead.SKIPPED_SUFFIXES)
    frame = zones_frame(voronoi_zones(make_grid((60, 80), seed=71), 3, seed=71))
    for not_read in [
        raster,
        tmp_path / "missing.gpkg",
        "s3://bucket/zones.gpkg",
        "/vsicurl/https://example.com/zones.gpkg",
        frame,
        tmp_path,
    ]:
        assert read_ahead.start(not_read) is None, not_read
    key = read_ahead.start(zones)
    assert read_ahead.start(zones) is None  # read already
    read_ahead.discard(key)
    assert read_ahead.take(str(zones), None) is None


def test_a_run_takes_its_zones_read_ahead_with_the_same_table(inputs, taken):
    zones, layers, raster = inputs
    table = zd.zonal_stats(zones, raster, ["count", "mean", "max"])
    assert taken and taken[0] is not None
    taken.clear()
    frame = zones_frame_read(zones)  # nothing read ahead: read here
    assert taken == [None]
    expected = zd.zonal_stats(frame, raster, ["count", "mean", "max"])
    pd.testing.assert_frame_equal(table, expected, check_exact=True)
    taken.clear()
    one = zd.zonal_stats(layers, raster, ["count"], layer="b")
    assert taken[0] is not None and len(one) == 5


def zones_frame_read(path):
    from zonal_dask.zones.source import read_zones

    return read_zones(path)


def test_the_command_line_takes_its_zones_read_ahead(inputs, taken, tmp_path):
    zones, _, raster = inputs
    out = tmp_path / "out.csv"
    assert main([str(zones), str(raster), str(out), "-q"]) == 0
    assert taken and taken[0] is not None
    assert len(pd.read_csv(out)) == 12


def test_bad_zones_give_the_same_error_when_read_ahead(inputs, tmp_path, taken):
    _, layers, raster = inputs
    junk = tmp_path / "junk.gpkg"
    junk.write_bytes(b"not a geopackage" * 100)
    with pytest.raises(ZonesError, match=r"junk\.gpkg: cannot read zones"):
        zd.zonal_stats(junk, raster)
    with pytest.raises(LayerError, match="2 layers"):
        zd.zonal_stats(layers, raster)
    assert all(t is None for t in taken)
    # nothing left waiting to be taken
    assert not read_ahead._pending
    assert os.path.exists(junk)
