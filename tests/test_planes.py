"""Several bands or time steps in one pass: a (zone, band|time) Dataset."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import zonal_dask as zd
from zonal_dask.cli.main import main

from .reference import assert_tables_close
from .synth import make_grid, special_zones, voronoi_zones, zones_frame

STATS = ["count", "nodata_count", "min", "mean", "max", "std", "sum", "range"]


def test_every_band_of_a_file(data_dir):
    raster = data_dir / "rasterio" / "RGB.byte.tif"
    zones = data_dir / "rasterio" / "box.shp"
    ds = zd.zonal_stats(zones, raster, STATS, band=None, chunks=200)
    assert isinstance(ds, xr.Dataset)
    assert dict(ds.sizes) == {"zone": 1, "band": 3}
    assert ds.band.values.tolist() == [1, 2, 3]
    for band in (1, 2, 3):
        single = zd.zonal_stats(zones, raster, STATS, band=band)
        plane = ds.sel(band=band).to_dataframe()[STATS]
        assert_tables_close(plane.set_axis(single.index), single, rtol=1e-12)


def test_a_time_cube_with_chunked_time():
    grids = [make_grid((30, 40), seed=50 + t, nan_fraction=0.02) for t in range(5)]
    times = pd.date_range("2026-01-01", periods=5, freq="D")
    cube = xr.concat([g.to_dataarray() for g in grids], dim="time")
    cube = cube.assign_coords(time=times).chunk({"time": 2, "y": 11, "x": 13})
    geometries = voronoi_zones(grids[0], 9, seed=50) + special_zones(grids[0])
    frame = zones_frame(geometries)
    ds = zd.zonal_stats(frame, cube, STATS, band=None)
    assert ds.sizes["time"] == 5 and (ds.time.values == times.values).all()
    for t, grid in enumerate(grids):
        single = zd.zonal_stats(frame, grid.to_dataarray(), STATS, chunks=(11, 13))
        plane = ds.isel(time=t).to_dataframe()[STATS]
        assert_tables_close(plane.set_axis(single.index), single, rtol=1e-12)
    long = ds.to_dataframe()
    assert long.index.names == ["zone", "time"] and len(long) == 5 * len(frame)


def test_every_statistic_for_several_planes(data_dir):
    raster = data_dir / "rasterio" / "RGB.byte.tif"
    zones = data_dir / "rasterio" / "box.shp"
    stats = ["count", "median", "p90", "majority", "variety", "mean"]
    ds = zd.zonal_stats(zones, raster, stats, band=None, chunks=(100, 300))
    for band in (1, 2, 3):
        single = zd.zonal_stats(zones, raster, stats, band=band)
        plane = ds.sel(band=band).to_dataframe()[stats]
        assert_tables_close(plane.set_axis(single.index), single, rtol=1e-12)


def test_a_time_cube_with_label_zones_and_percentiles():
    grids = [make_grid((30, 40), "int16", seed=60 + t, nodata=-1) for t in range(4)]
    cube = xr.concat([g.to_dataarray() for g in grids], dim="time")
    cube = cube.chunk({"time": 3, "y": 16, "x": 16})
    labels = xr.zeros_like(grids[0].to_dataarray(), dtype="int32")
    labels[:, :20] = 7
    labels[:, 20:] = 9
    labels = labels.rio.write_nodata(None)
    ds = zd.zonal_stats(labels, cube, ["median", "majority", "count"], band=None)
    assert ds.zone.values.tolist() == [7, 9]
    for t, grid in enumerate(grids):
        single = zd.zonal_stats(
            labels, grid.to_dataarray(), ["median", "majority", "count"]
        )
        plane = ds.isel(time=t).to_dataframe()[["median", "majority", "count"]]
        assert_tables_close(plane.set_axis(single.index), single, rtol=1e-12)


def test_categorical_gives_each_band_its_class_counts(data_dir):
    raster = data_dir / "rasterio" / "RGB.byte.tif"
    zones = data_dir / "rasterio" / "box.shp"
    cube = zd.zonal_stats(zones, raster, ["count"], band=None, categorical=True)
    for band in (1, 2, 3):
        single = zd.zonal_stats(zones, raster, ["count"], band=band, categorical=True)
        plane = cube.sel(band=band)
        assert (plane["count"].values == single["count"].values).all()
        classes = [c for c in single.columns if c != "count"]
        assert len(classes) > 10  # the case is not vacuous
        for value in classes:
            assert (plane[str(value)].values == single[value].values).all()
        others = set(plane.data_vars) - {"count", *map(str, classes)}
        assert all((plane[name].values == 0).all() for name in others)


def test_cli_band_all_writes_the_long_table(data_dir, tmp_path):
    out = tmp_path / "bands.csv"
    raster = data_dir / "rasterio" / "RGB.byte.tif"
    zones = data_dir / "rasterio" / "box.shp"
    assert main([str(zones), str(raster), str(out), "--band", "all"]) == 0
    table = pd.read_csv(out)
    assert list(table.columns[:2]) == ["fid", "band"]
    assert table["band"].tolist() == [1, 2, 3]
    expected = [
        zd.zonal_stats(zones, raster, band=b)["mean"].iloc[0] for b in (1, 2, 3)
    ]
    np.testing.assert_allclose(table["mean"], expected, rtol=1e-12)


def test_a_pixel_interleaved_file_is_read_all_bands_at_once(tmp_path, monkeypatch):
    """Each tile of a pixel-interleaved file holds every band: one task reads
    them all, so a tile is decoded once, not once per band."""
    import rasterio

    from zonal_dask.io.raster import open_raster

    grids = [make_grid((40, 50), "int16", seed=60 + b, nodata=-1.0) for b in range(4)]
    stack = np.stack([g.values for g in grids])
    paths = {}
    for interleave in ("pixel", "band"):
        paths[interleave] = tmp_path / f"{interleave}.tif"
        profile = {
            "driver": "GTiff",
            "height": 40,
            "width": 50,
            "count": 4,
            "dtype": "int16",
            "crs": grids[0].crs,
            "transform": grids[0].transform,
            "nodata": -1,
            "tiled": True,
            "blockxsize": 16,
            "blockysize": 16,
            "interleave": interleave,
        }
        with rasterio.open(paths[interleave], "w", **profile) as dst:
            dst.write(stack)
    # chunks of the target size, which would hold one band each
    monkeypatch.setattr("zonal_dask.io.grid.TARGET_CHUNK_PIXELS", 16 * 16)
    assert open_raster(paths["pixel"], band=None, chunks=16).chunks[0] == (4,)
    assert open_raster(paths["band"], band=None, chunks=16).chunks[0] == (1,) * 4
    frame = zones_frame(voronoi_zones(grids[0], 6, seed=60))
    by_pixel = zd.zonal_stats(frame, paths["pixel"], STATS, band=None, chunks=16)
    by_band = zd.zonal_stats(frame, paths["band"], STATS, band=None, chunks=16)
    xr.testing.assert_identical(by_pixel, by_band)
    for band in (1, 2, 3, 4):
        single = zd.zonal_stats(frame, paths["pixel"], STATS, band=band, chunks=16)
        plane = by_pixel.sel(band=band).to_dataframe()[STATS]
        assert_tables_close(plane.set_axis(single.index), single, rtol=1e-12)


BIT_STATS = [
    *STATS,
    "skewness",
    "kurtosis",
    "min_center_x",
    "max_center_y",
    "median",
    "majority",
]
BIT_OPTIONS = {
    "fallback": ({"small": "touched"}, BIT_STATS),
    "weighted": (
        {"coverage": "fraction", "weights": "w"},
        ["count", "mean", "weighted_mean", "weighted_sum", "std"],
    ),
    "label raster": ({}, ["count", "min", "mean", "std", "median", "majority"]),
}


def assert_same_bits(got: xr.Dataset, expected: xr.Dataset) -> None:
    assert list(got.data_vars) == list(expected.data_vars)
    for name in expected.data_vars:
        a, b = got[name].to_numpy(), expected[name].to_numpy()
        assert (a.dtype, a.shape) == (b.dtype, b.shape), name
        assert a.tobytes() == b.tobytes(), name


@pytest.mark.parametrize("case", list(BIT_OPTIONS))
def test_plane_blocks_give_the_bits_of_one_block_at_a_time(tmp_path, case):
    """Each plane block is finalized by a task of its own: the cube of a batch
    of several blocks holds the bits of one block at a time (``batch=1``) and
    of one block of every plane (a cube chunked along time as a whole)."""
    grids = [
        make_grid((30, 40), "float32", seed=80 + t, nan_fraction=0.05, loc=50 + t)
        for t in range(5)
    ]
    zones = zones_frame(voronoi_zones(grids[0], 9, seed=81) + special_zones(grids[0]))
    options, stats = BIT_OPTIONS[case]
    if case == "label raster":  # rows are the values found in any block
        labels = xr.zeros_like(grids[0].to_dataarray(), dtype="int32")
        labels[:, :25] = 7
        labels[3:, 25:] = 9
        zones = labels.rio.write_nodata(0)
    if "weights" in options:
        weights = make_grid((30, 40), "float64", seed=82, nodata=None, loc=3, scale=0.5)
        options = {**options, "weights": weights.write(tmp_path / "w.tif")}
    files = [g.write(tmp_path / f"day{t + 1}.tif") for t, g in enumerate(grids)]
    alone = zd.zonal_series(zones, files, stats, batch=1, chunks=(11, 13), **options)
    batched = zd.zonal_series(zones, files, stats, batch=5, chunks=(11, 13), **options)
    assert_same_bits(batched, alone)
    cube = xr.concat([g.to_dataarray() for g in grids], dim="time")
    whole = zd.zonal_stats(
        zones, cube.chunk({"time": 5, "y": 11, "x": 13}), stats, band=None, **options
    )
    assert_same_bits(batched.drop_vars("source").rename(time="plane"), whole)
