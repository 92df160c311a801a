"""The vector data cube on disk: Zarr, NetCDF, (Geo)Parquet; appending new steps."""

from __future__ import annotations

import os
import shutil

import geopandas as gpd
import pandas as pd
import pytest
import xarray as xr

import zonal_dask as zd
from zonal_dask.cli.main import main
from zonal_dask.series.cube import to_long

from .synth import make_grid, special_zones, voronoi_zones, zones_frame
from .test_series import DATES, GRIDS, stac_catalog, write_steps

FRAME = zones_frame(voronoi_zones(GRIDS[0], 9, seed=4))
STATS = ["count", "mean", "std", "p90"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_steps(tmp_path_factory.mktemp("cube"))


@pytest.fixture(scope="module")
def full(files):
    """Every step at once, in memory."""
    return zd.zonal_series(FRAME, files, STATS, time_pattern="%Y-%m-%d", batch=2)


def series(files, output, **options):
    options = {"time_pattern": "%Y-%m-%d", "batch": 2, **options}
    return zd.zonal_series(FRAME, files, STATS, output=output, **options)


def snapshot(path) -> dict:
    """Every file under ``path`` (or ``path`` itself) with its bytes."""
    if os.path.isfile(path):
        return {path: open(path, "rb").read()}
    return {
        os.path.join(d, f): open(os.path.join(d, f), "rb").read()
        for d, _, names in os.walk(path)
        for f in names
    }


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_a_cube_on_disk_reads_back_as_computed(files, full, tmp_path, suffix):
    out = tmp_path / f"lst{suffix}"
    written = series(files, out)
    assert list(written) == list(DATES.to_numpy())
    back = zd.open_cube(out).load()
    xr.testing.assert_identical(back.drop_attrs(), full.drop_attrs())
    assert list(back.data_vars) == list(full.data_vars)
    assert back.xindexes["zone"].crs == FRAME.crs
    assert back.sel(fid=2)["mean"].shape == (len(DATES),)


def test_the_long_table_in_parquet_and_geoparquet(files, full, tmp_path):
    series(files, tmp_path / "lst.parquet")
    table = pd.read_parquet(tmp_path / "lst.parquet")
    expected = to_long(full)
    pd.testing.assert_frame_equal(table, expected, check_dtype=False)
    assert list(table.columns[:3]) == ["fid", "time", "source"]
    assert len(table) == len(FRAME) * len(DATES)
    series(files, tmp_path / "geo.parquet", geometry=True)
    geo = gpd.read_parquet(tmp_path / "geo.parquet")
    assert geo.crs == FRAME.crs
    first = geo[geo.fid == 3].geometry.iloc[0]
    assert first.equals(FRAME.geometry.loc[3])


@pytest.mark.parametrize("suffix", [".zarr", ".parquet"])
def test_append_equals_a_full_run_and_a_rerun_does_nothing(
    files, full, tmp_path, suffix
):
    out = tmp_path / f"lst{suffix}"
    assert len(series(files[:2], out)) == 2
    assert len(series(files[:4], out, append=True, batch=1)) == 2
    assert list(series(files, out, append=True)) == [DATES.to_numpy()[4]]
    before = snapshot(out)
    assert series(files, out, append=True) == []
    assert snapshot(out) == before  # untouched
    whole = tmp_path / f"whole{suffix}"
    series(files, whole)
    if suffix == ".zarr":
        xr.testing.assert_identical(
            zd.open_cube(out).load(), zd.open_cube(whole).load()
        )
    else:
        pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(whole))


@pytest.mark.parametrize("suffix", [".zarr", ".parquet"])
def test_append_refuses_another_run_and_leaves_the_output_as_it_was(
    files, tmp_path, suffix
):
    out = tmp_path / f"lst{suffix}"
    series(files[:3], out)
    before = snapshot(out)
    with pytest.raises(zd.OutputError, match=r"made with other statistics or options"):
        zd.zonal_series(
            FRAME, files, ["mean"], time_pattern="%Y-%m-%d", output=out, append=True
        )
    with pytest.raises(zd.OutputError, match=r"options \(all_touched\)"):
        series(files, out, append=True, all_touched=True)
    with pytest.raises(zd.OutputError, match="made with other zones"):
        zd.zonal_series(
            FRAME.iloc[:5],
            files,
            STATS,
            time_pattern="%Y-%m-%d",
            output=out,
            append=True,
        )
    renamed = tmp_path / "renamed_2024-01-02.tif"
    shutil.copy(files[1], renamed)
    with pytest.raises(
        zd.OutputError, match=r"step at 2024-01-02.* is lst_2024-01-02\.tif, not re"
    ):
        series([files[0], renamed, files[4]], out, append=True)
    with pytest.raises(zd.OutputError, match="exists"):
        series(files, out)
    assert snapshot(out) == before


def test_append_refuses_steps_before_the_last(files, tmp_path):
    out = tmp_path / "lst.zarr"
    series([files[0], files[2]], out)
    with pytest.raises(zd.OutputError, match=r"lst_2024-01-02\.tif falls before"):
        series(files, out, append=True)


def test_a_failed_append_leaves_the_output_whole(files, tmp_path, monkeypatch):
    out = tmp_path / "lst.zarr"
    series(files[:2], out)
    before = snapshot(out)
    from zonal_dask.series import cube_store

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cube_store, "replace_dir", fail)
    with pytest.raises(zd.OutputError, match="No space left on device"):
        series(files, out, append=True)
    assert snapshot(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["lst.zarr"]  # no staging left


def test_empty_geometries_cannot_go_into_a_cf_cube_but_into_parquet(files, tmp_path):
    frame = zones_frame(special_zones(GRIDS[0]))  # its last zone is empty
    with pytest.raises(zd.OutputError, match="zone 6: a null or empty geometry"):
        zd.zonal_series(frame, files[:1], output=tmp_path / "c.zarr")
    assert not (tmp_path / "c.zarr").exists()
    zd.zonal_series(frame, files[:1], output=tmp_path / "c.parquet")
    assert len(pd.read_parquet(tmp_path / "c.parquet")) == len(frame)


def test_the_command_line_writes_and_appends(files, tmp_path, capsys):
    zones = tmp_path / "zones.gpkg"
    FRAME.to_file(zones)
    out = tmp_path / "lst.zarr"
    pattern = str(files[0].parent / "lst_2024-01-0[1-3].tif")
    args = [
        str(zones),
        pattern,
        str(out),
        "--time-pattern",
        "%Y-%m-%d",
        "--stats",
        "count,mean",
    ]
    assert main(args) == 0
    assert "3 step(s) written" in capsys.readouterr().err
    assert (
        main(
            [
                str(zones),
                *map(str, files),
                str(out),
                "--time-pattern",
                "%Y-%m-%d",
                "--stats",
                "count,mean",
                "--append",
            ]
        )
        == 0
    )
    assert "2 step(s) written" in capsys.readouterr().err
    cube = zd.open_cube(out)
    expected = zd.zonal_series(zones, files, ["count", "mean"], time_pattern="%Y-%m-%d")
    xr.testing.assert_identical(cube.load().drop_attrs(), expected.drop_attrs())
    assert main([*args[:3], "--time-pattern", "%Y-%m-%d", "--append"]) == 1
    assert "made with other" in capsys.readouterr().err


def test_the_command_line_reads_stac_and_refuses_mixed_grids(files, tmp_path, capsys):
    zones = tmp_path / "zones.gpkg"
    FRAME.to_file(zones)
    for f in files:
        shutil.copy(f, tmp_path / f.name)
    catalog = stac_catalog(tmp_path, [tmp_path / f.name for f in files])
    out = tmp_path / "lst.parquet"
    assert main([str(zones), str(catalog), str(out), "--asset", "lst", "-q"]) == 0
    assert pd.read_parquet(out)["source"].nunique() == len(files)
    other = make_grid((20, 20), seed=3).write(tmp_path / "lst_2024-01-09.tif")
    code = main(
        [
            str(zones),
            str(files[0]),
            str(other),
            str(tmp_path / "x.zarr"),
            "--time-pattern",
            "%Y-%m-%d",
        ]
    )
    assert code == 1
    assert "lst_2024-01-09.tif (step 2 of 2" in capsys.readouterr().err
    assert not (tmp_path / "x.zarr").exists()


def test_progress_counts_steps(files, capsys):
    zd.zonal_series(
        FRAME, files, ["mean"], time_pattern="%Y-%m-%d", batch=2, progress=True
    )
    err = capsys.readouterr().err
    assert "steps 5/5" in err and "zones planned" in err
    shown = [int(part.split("/")[0]) for part in err.split("steps ")[1:]]
    assert shown == sorted(shown) and shown[-1] == 5


@pytest.mark.parametrize(
    "flags",
    [
        ["--include-cols", "name"],
        ["--group-by", "name"],
        ["--checkpoint", "ckpt"],
        ["--pixels", "p.parquet"],
        ["--class-names"],
    ],
)
def test_options_a_series_does_not_take_are_one_line(files, tmp_path, capsys, flags):
    zones = tmp_path / "zones.gpkg"
    FRAME.to_file(zones)
    out = tmp_path / "lst.zarr"
    code = main([str(zones), *map(str, files[:2]), str(out), *flags])
    assert code == 1
    err = capsys.readouterr().err
    assert f"{flags[0]} is not offered for a time series" in err
    assert "Traceback" not in err and not out.exists()


@pytest.mark.parametrize("first", [False, True])
def test_append_refuses_geometry_the_output_was_written_without_or_with(
    files, tmp_path, first
):
    out = tmp_path / "lst.parquet"
    series(files[:2], out, geometry=first)
    before = snapshot(out)
    how = "with" if first else "without"
    with pytest.raises(zd.OutputError, match=rf"written {how} geometries; append"):
        series(files, out, append=True, geometry=not first)
    assert snapshot(out) == before
    assert len(series(files, out, append=True, geometry=first)) == 3
    if first:
        assert len(gpd.read_parquet(out)) == len(FRAME) * len(DATES)


@pytest.mark.parametrize("suffix", [".zarr", ".nc", ".parquet"])
def test_an_output_another_run_published_meanwhile_is_not_replaced(
    files, tmp_path, monkeypatch, suffix
):
    """Another run publishes the same output while this one computes: without
    overwrite, this one is refused and the other's output kept, as for tables."""
    out = tmp_path / f"lst{suffix}"
    other = tmp_path / f"other{suffix}"
    series(files[:1], other)
    from zonal_dask.series import cube_store

    commit = cube_store.Output.commit

    def race(self, identity):
        if other.is_dir():
            shutil.copytree(other, self.path)
        else:
            shutil.copy(other, self.path)
        return commit(self, identity)

    monkeypatch.setattr(cube_store.Output, "commit", race)
    with pytest.raises(zd.OutputError, match="written by another run meanwhile"):
        series(files, out)
    assert sorted(snapshot(out).values()) == sorted(snapshot(other).values())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, other.name])


def test_a_url_output_is_refused_never_made_a_local_directory(
    files, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    fsspec = pytest.importorskip("fsspec")
    try:
        with pytest.raises(zd.OutputError, match=r"^s3://bucket/lst\.zarr: cannot"):
            series(files, "s3://bucket/lst.zarr")  # no such bucket, or credentials
    finally:  # s3fs keeps the file system: not for tests with credentials
        type(fsspec.filesystem("s3")).clear_instance_cache()
    assert not (tmp_path / "s3:").exists()
