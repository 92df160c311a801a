"""Series inputs: a glob's natural order, unpadded months, given times, the
zones' CRS in a cube on disk, appending only new files.

Each cube is checked step by step against ``zonal_stats`` on that step's file
alone (itself checked against the brute-force reference in test_series.py).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

import zonal_dask as zd
from zonal_dask.cli.main import main
from zonal_dask.errors import SeriesError

from .reference import assert_tables_close
from .synth import make_grid, voronoi_zones, zones_frame

SHAPE = (30, 41)
MONTHS = (1, 2, 10, 11)
GRIDS = {m: make_grid(SHAPE, "float32", seed=200 + m, loc=m * 10) for m in MONTHS}
FRAME = zones_frame(voronoi_zones(GRIDS[1], 6, seed=3))
STATS = ["count", "mean", "max"]


@pytest.fixture(scope="module")
def months(tmp_path_factory):
    """``lst_month1.tif`` ... ``lst_month11.tif``: text order puts 10 before 2."""
    directory = tmp_path_factory.mktemp("months")
    return {m: g.write(directory / f"lst_month{m}.tif") for m, g in GRIDS.items()}


def step_frame(cube, t: int) -> pd.DataFrame:
    step = cube.isel(time=t)
    table = pd.DataFrame({c: step[c].to_numpy() for c in STATS})
    return table.set_axis(pd.Index(step["fid"].to_numpy(), name="fid"))


def assert_steps(cube, paths) -> None:
    assert cube.source.to_numpy().tolist() == [p.name for p in paths]
    for t, path in enumerate(paths):
        expected = zd.zonal_stats(FRAME, path, STATS)
        assert_tables_close(step_frame(cube, t), expected, rtol=1e-12)


def test_a_glob_is_in_natural_order(months):
    cube = zd.zonal_series(FRAME, str(months[1].parent / "lst_month*.tif"), STATS)
    assert cube.time.to_numpy().tolist() == [0, 1, 2, 3]
    assert_steps(cube, [months[m] for m in MONTHS])


def test_a_glob_whose_order_the_names_do_not_settle_is_refused(tmp_path):
    for name in ("a_month1.tif", "a_month01.tif"):
        GRIDS[1].write(tmp_path / name)
    with pytest.raises(SeriesError, match="hold the same numbers"):
        zd.zonal_series(FRAME, str(tmp_path / "a_*.tif"), STATS)
    for name in ("lst_jan.tif", "lst_feb.tif"):
        GRIDS[2].write(tmp_path / name)
    with pytest.raises(SeriesError, match="differ by more than numbers"):
        zd.zonal_series(FRAME, str(tmp_path / "lst_*.tif"), STATS)
    # a time pattern settles it
    glob = str(tmp_path / "lst_*.tif")
    cube = zd.zonal_series(FRAME, glob, STATS, time_pattern="lst_%b")
    assert cube.source.to_numpy().tolist() == ["lst_jan.tif", "lst_feb.tif"]


def test_unpadded_months_in_a_time_pattern(months):
    pattern = str(months[1].parent / "lst_month*.tif")
    cube = zd.zonal_series(FRAME, pattern, STATS, time_pattern="month%m")
    expected = pd.to_datetime([f"1900-{m:02d}-01" for m in MONTHS]).to_numpy()
    assert (cube.time.to_numpy() == expected).all()
    assert_steps(cube, [months[m] for m in MONTHS])


def test_unpadded_codes_only_where_a_separator_follows():
    from zonal_dask.series.open import parse_time

    assert parse_time("x_2024_3_7.tif", "%Y_%m_%d") == np.datetime64("2024-03-07")
    assert parse_time("x_20240307.tif", "%Y%m%d") == np.datetime64("2024-03-07")
    with pytest.raises(SeriesError, match="does not hold"):
        parse_time("x_2024037.tif", "%Y%m%d")  # March 7 or Jan 3: refused
    with pytest.raises(SeriesError, match="does not hold"):
        parse_time("month123.tif", "month%m.tif")


def test_times_given_pair_with_the_files_in_order(months):
    paths = [months[10], months[1], months[2]]
    times = ["2024-10-01", "2024-01-01", "2024-02-01"]
    cube = zd.zonal_series(FRAME, paths, STATS, times=times)
    assert (cube.time.to_numpy() == pd.to_datetime(sorted(times)).to_numpy()).all()
    assert_steps(cube, [months[1], months[2], months[10]])
    with pytest.raises(SeriesError, match="2 times for 3 files"):
        zd.zonal_series(FRAME, paths, STATS, times=times[:2])
    with pytest.raises(SeriesError, match="'soon' is not a time"):
        zd.zonal_series(FRAME, paths, STATS, times=["soon", *times[1:]])
    with pytest.raises(SeriesError, match="not both"):
        zd.zonal_series(FRAME, paths, STATS, times=times, time_pattern="month%m")


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_a_cube_on_disk_with_the_zones_crs_replaced(months, tmp_path, suffix):
    wrong = FRAME.set_crs("EPSG:3857", allow_override=True)
    out = tmp_path / f"lst{suffix}"
    paths = [months[1], months[2]]
    zd.zonal_series(wrong, paths, STATS, zones_crs="EPSG:32633", output=out)
    cube = zd.open_cube(out)
    assert cube.xindexes["zone"].crs.to_epsg() == 32633
    assert_steps(cube.load(), paths)
    assert sorted(os.listdir(tmp_path)) == [out.name]  # nothing staged is left


def test_a_failed_write_leaves_nothing_staged(months, tmp_path, monkeypatch):
    from zonal_dask.series import cube_store

    def failing(cube):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(cube_store, "encode", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        zd.zonal_series(FRAME, [months[1]], STATS, output=tmp_path / "lst.zarr")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("suffix", [".zarr", ".parquet"])
def test_appending_only_the_new_files(months, tmp_path, suffix):
    out = tmp_path / f"lst{suffix}"
    zd.zonal_series(FRAME, [months[1], months[2]], STATS, output=out)
    written = zd.zonal_series(FRAME, [months[10]], STATS, output=out, append=True)
    assert written == [2]
    pattern = str(months[1].parent / "lst_month*.tif")  # all four: one is new
    written = zd.zonal_series(FRAME, pattern, STATS, output=out, append=True)
    assert written == [3]
    if suffix == ".zarr":
        cube = zd.open_cube(out).load()
        assert cube.time.to_numpy().tolist() == [0, 1, 2, 3]
        assert_steps(cube, [months[m] for m in MONTHS])
    else:
        table = pd.read_parquet(out)
        full = zd.zonal_series(FRAME, pattern, STATS)
        assert table["source"].unique().tolist() == [months[m].name for m in MONTHS]
        assert np.allclose(
            table["mean"].to_numpy(),
            full["mean"].transpose("time", "zone").to_numpy().ravel(),
            equal_nan=True,
        )


def test_a_new_file_before_the_output_s_last_is_refused(months, tmp_path):
    out = tmp_path / "lst.zarr"
    zd.zonal_series(FRAME, [months[1], months[10]], STATS, output=out)
    with pytest.raises(SeriesError, match=r"comes before lst_month10\.tif"):
        zd.zonal_series(
            FRAME, [months[1], months[2], months[10]], STATS, output=out, append=True
        )
    dated = tmp_path / "dated.zarr"
    zd.zonal_series(FRAME, [months[1]], STATS, times=["2024-01-01"], output=dated)
    with pytest.raises(SeriesError, match="its steps have dates"):
        zd.zonal_series(FRAME, [months[2]], STATS, output=dated, append=True)
    with pytest.raises(SeriesError, match="numbered by position, the new ones"):
        zd.zonal_series(
            FRAME, [months[11]], STATS, times=["2024-11-01"], output=out, append=True
        )


def test_zonal_stats_given_a_list_of_rasters_gives_exactextract_s_columns(months):
    """A list is exactextract's several rasters (columns per raster), equal to
    the time series' steps; ``zonal_series`` gives them as a cube."""
    table = zd.zonal_stats(FRAME, [months[1], months[2]], ["mean"])
    assert list(table.columns) == ["lst_month1_mean", "lst_month2_mean"]
    cube = zd.zonal_series(FRAME, [months[1], months[2]], STATS)
    for t, month in enumerate((1, 2)):
        np.testing.assert_array_equal(
            table[f"lst_month{month}_mean"].to_numpy(), step_frame(cube, t)["mean"]
        )


def test_the_command_line_takes_times(months, tmp_path, capsys):
    zones = tmp_path / "zones.gpkg"
    FRAME.to_file(zones)
    out = tmp_path / "lst.parquet"
    args = [str(zones), str(months[2]), str(months[1]), str(out)]
    assert main([*args, "--stats", "mean", "--times", "2024-02-01,2024-01-01"]) == 0
    table = pd.read_parquet(out)
    assert table["source"].unique().tolist() == [months[1].name, months[2].name]
    assert str(table["time"].iloc[0]).startswith("2024-01-01")


def test_zones_without_a_crs_take_the_raster_s_in_a_cube(months, tmp_path):
    bare = FRAME.set_crs(None, allow_override=True)
    out = tmp_path / "lst.zarr"
    zd.zonal_series(bare, [months[1]], STATS, assume_same_crs=True, output=out)
    cube = zd.open_cube(out)
    assert cube.xindexes["zone"].crs.to_epsg() == 32633
    assert_steps(cube.load(), [months[1]])
