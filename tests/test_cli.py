"""The zonal-dask command, end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import zonal_dask as zd
from zonal_dask.cli.main import main

SLOPE = "rasterstats/slope.tif"
POLYGONS = "rasterstats/polygons.shp"


@pytest.fixture
def paths(data_dir):
    return data_dir / POLYGONS, data_dir / SLOPE


def test_classic_table(paths, tmp_path):
    out = tmp_path / "stats.txt"
    assert main([str(paths[0]), str(paths[1]), str(out)]) == 0
    lines = out.read_text().splitlines()
    # the classic recipe's six columns where it has them, then count
    assert lines[0].split("\t") == ["min", "mean", "max", "std", "sum", "fid", "count"]
    assert len(lines) == 1 + 2
    table = pd.read_csv(out, sep="\t", index_col="fid")
    expected = zd.zonal_stats(*paths)
    pd.testing.assert_frame_equal(table, expected[table.columns], check_exact=True)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".tsv"])
def test_formats_and_chosen_stats(paths, tmp_path, suffix):
    out = tmp_path / f"stats{suffix}"
    args = [*map(str, paths), str(out), "--stats", "count,mean", "--chunks", "16"]
    assert main(args) == 0
    if suffix == ".parquet":
        table = pd.read_parquet(out)
    else:
        table = pd.read_csv(out, sep="\t" if suffix == ".tsv" else ",", index_col="fid")
    assert list(table.columns) == ["count", "mean"]
    assert table["count"].tolist() == [75, 50]


def test_id_field_band_nodata_and_workers(data_dir, tmp_path):
    out = tmp_path / "stats.csv"
    raster = data_dir / "rasterio" / "RGB.byte.tif"
    zones = data_dir / "rasterio" / "box.shp"
    args = [str(zones), str(raster), str(out), "--band", "2", "--id-field", "id"]
    assert main([*args, "--nodata", "255", "--workers", "1"]) == 0
    table = pd.read_csv(out, index_col="id")
    expected = zd.zonal_stats(zones, raster, band=2, nodata=255, zone_id="id")
    assert table["count"].tolist() == expected["count"].tolist()


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing zones", "no such file"),
        ("missing raster", "no such file"),
        ("not a raster", "not a raster GDAL can read"),
        ("unknown stat", "unknown statistic 'median2'"),
        ("band out of range", "band 4 out of range 1..1"),
        ("bad id field", "no field 'nope'"),
        ("output exists", "exists (use --overwrite"),
        ("output dir missing", "does not exist"),
        ("unknown format", "unknown output format"),
    ],
)
def test_bad_input_exits_non_zero_with_one_line(paths, tmp_path, capsys, case, message):
    zones, raster = map(str, paths)
    out = tmp_path / "stats.txt"
    args = {
        "missing zones": [str(tmp_path / "nope.shp"), raster, str(out)],
        "missing raster": [zones, str(tmp_path / "nope.tif"), str(out)],
        "not a raster": [zones, zones, str(out)],
        "unknown stat": [zones, raster, str(out), "--stats", "mean,median2"],
        "band out of range": [zones, raster, str(out), "--band", "4"],
        "bad id field": [zones, raster, str(out), "--id-field", "nope"],
        "output exists": [zones, raster, str(out)],
        "output dir missing": [zones, raster, str(tmp_path / "no" / "stats.txt")],
        "unknown format": [zones, raster, str(tmp_path / "stats.xlsx")],
    }[case]
    if case == "output exists":
        out.write_text("keep me")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("zonal-dask: error: ")
    assert message in err[0]
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written
    if case == "output exists":
        assert out.read_text() == "keep me"


def test_overwrite_replaces(paths, tmp_path):
    out = tmp_path / "stats.txt"
    out.write_text("old")
    assert main([*map(str, paths), str(out), "--overwrite"]) == 0
    assert out.read_text().startswith("min\tmean")
    assert [p.name for p in tmp_path.iterdir()] == ["stats.txt"]  # no temporaries


@pytest.mark.slow  # fresh processes
def test_console_script_version_help_and_exit_code(paths, tmp_path):
    exe = Path(sys.executable).with_name("zonal-dask")  # installed by pip
    assert exe.exists()
    version = subprocess.run([exe, "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and zd.__version__ in version.stdout
    usage = subprocess.run([exe, "--help"], capture_output=True, text=True)
    assert "examples:" in usage.stdout and "--scheduler" in usage.stdout
    bad = subprocess.run(
        [exe, str(paths[0]), str(paths[1]), str(tmp_path / "o.txt"), "--stats", "x"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1
    assert bad.stderr.strip().startswith("zonal-dask: error: unknown statistic 'x'")
    assert not (tmp_path / "o.txt").exists()


@pytest.mark.slow  # fresh processes
def test_python_dash_m(paths, tmp_path):
    out = tmp_path / "stats.csv"
    done = subprocess.run(
        [sys.executable, "-m", "zonal_dask.cli", *map(str, paths), str(out)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert pd.read_csv(out)["count"].tolist() == [75, 50]


def test_demo(tmp_path, capsys):
    assert main(["demo", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "zones of" in out and " s; table written to" in out
    table = pd.read_csv(tmp_path / "demo" / "stats.txt", sep="\t")
    assert list(table.columns) == ["min", "mean", "max", "std", "sum", "fid", "count"]
    assert len(table) == 300


def test_statistics_options_from_the_command_line(data_dir, tmp_path):
    zones = data_dir / "rasterstats" / "polygons.shp"
    raster = data_dir / "rasterstats" / "slope.tif"
    runs = {
        "touched": (["--all-touched"], {"all_touched": True}),
        "weighted": (
            ["--weights", "coverage", "--stats", "count,mean"],
            {"weights": "coverage", "stats": ["count", "mean"]},
        ),
        "quantiles": (
            ["--stats", "median,p10,majority,variety"],
            {"stats": ["median", "p10", "majority", "variety"]},
        ),
        "small": (
            ["--small", "touched", "--stats", "count"],
            {"small": "touched", "stats": ["count"]},
        ),
    }
    for name, (flags, kwargs) in runs.items():
        out = tmp_path / f"{name}.csv"
        assert main([str(zones), str(raster), str(out), *flags]) == 0
        expected = zd.zonal_stats(zones, raster, **kwargs)
        table = pd.read_csv(out, index_col="fid")
        pd.testing.assert_frame_equal(table, expected, check_dtype=False)


def test_categorical_and_label_raster_from_the_command_line(data_dir, tmp_path):
    raster = data_dir / "rasterio" / "RGB.byte.tif"
    out = tmp_path / "classes.csv"
    zones = data_dir / "rasterio" / "box.shp"
    assert (
        main([str(zones), str(raster), str(out), "--categorical", "--stats", "count"])
        == 0
    )
    table = pd.read_csv(out, index_col="fid")
    assert table.drop(columns="count").sum(axis=1).iloc[0] == table["count"].iloc[0]
    labels = zd.rasterize_zones(zones, raster)
    labels_path = tmp_path / "labels.tif"
    labels.rio.to_raster(labels_path)
    out = tmp_path / "by_label.csv"
    assert main([str(labels_path), str(raster), str(out), "--stats", "count,mean"]) == 0
    by_label = pd.read_csv(out, index_col="zone")
    assert by_label.index.tolist() == [0]
    assert by_label["count"].iloc[0] == table["count"].iloc[0]
