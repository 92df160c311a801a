"""The input table of issue 6: every bad input is a clear error or the right answer.

Each error row runs twice: through the API (a specific ``ZonalError`` subclass
whose message names the file, field or value) and through the CLI (exit status
1, exactly one line on stderr, no output file).
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from affine import Affine
from rasterio.control import GroundControlPoint
from rasterio.rpc import RPC

import zonal_dask as zd
from zonal_dask.cli.main import main
from zonal_dask.io import writers

from .mounts import read_only
from .reference import assert_tables_close, reference_stats
from .synth import CRS, Grid, make_grid, special_zones, voronoi_zones, zones_frame

GRID = make_grid((40, 50), seed=61)
GEOMETRIES = voronoi_zones(GRID, 6, seed=61)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A raster and zones that work, and variants of them that do not."""
    d = tmp_path_factory.mktemp("inputs")
    GRID.write(d / "grid.tif")
    frame = zones_frame(GEOMETRIES)
    frame.to_file(d / "zones.gpkg", engine="pyogrio")
    frame.to_file(d / "two.gpkg", layer="first", engine="pyogrio")
    frame.iloc[:2].to_file(d / "two.gpkg", layer="second", engine="pyogrio")
    frame.iloc[:0].to_file(d / "empty.gpkg", engine="pyogrio")
    # a GeoPackage whose only layer was dropped: GDAL sees no layers
    shutil.copy(d / "zones.gpkg", d / "nolayer.gpkg")
    with sqlite3.connect(d / "nolayer.gpkg") as db:
        db.execute("DROP TABLE zones")
        db.execute("DELETE FROM gpkg_geometry_columns")
        db.execute("DELETE FROM gpkg_contents")
    (d / "garbage.gpkg").write_text("not a geopackage")
    (d / "garbage.tif").write_text("not a raster")
    no_crs = frame.set_crs(None, allow_override=True)
    no_crs.to_file(d / "nocrs.shp", engine="pyogrio")
    assert not (d / "nocrs.prj").exists()
    _write(GRID, d / "nocrs.tif", crs=None)
    _write(GRID, d / "rotated.tif", transform=GRID.transform * Affine.rotation(10))
    line = shapely.LineString([(0, 0), (1, 1)])
    collection = gpd.GeoDataFrame(
        geometry=[shapely.GeometryCollection([line, GEOMETRIES[0]])], crs=CRS
    )
    collection.to_file(d / "collection.gpkg", engine="pyogrio")
    frame.assign(code=1).to_file(d / "dup.gpkg", engine="pyogrio")
    _write(make_grid((40, 50), "uint8", seed=61, nodata=None), d / "uint8.tif")
    (d / "exists.csv").write_text("old")
    _write(GRID, d / "gcps.tif", crs=None, transform=Affine.identity())
    with rasterio.open(d / "gcps.tif", "r+") as dst:
        corners = [(0, 0), (0, 50), (40, 0)]
        dst.gcps = (
            [GroundControlPoint(r, c, *(GRID.transform @ (c, r))) for r, c in corners],
            rasterio.crs.CRS.from_user_input(CRS),
        )
    _write(GRID, d / "rpcs.tif", crs=None, transform=Affine.identity())
    with rasterio.open(d / "rpcs.tif", "r+") as dst:
        dst.rpcs = RPC(
            height_off=0,
            height_scale=1,
            lat_off=45,
            lat_scale=1,
            line_den_coeff=[1] * 20,
            line_num_coeff=[0] * 20,
            line_off=20,
            line_scale=20,
            long_off=15,
            long_scale=1,
            samp_den_coeff=[1] * 20,
            samp_num_coeff=[0] * 20,
            samp_off=25,
            samp_scale=25,
        )
    _write(Grid(GRID.values.astype("complex64")), d / "complex.tif")
    big = np.full(GRID.shape, 2**53 + 1, np.int64)
    _write(Grid(big), d / "int64.tif", nodata=2**53 + 1)
    frame.set_crs("EPSG:4326", allow_override=True).to_file(
        d / "wrongprj.gpkg", engine="pyogrio"
    )
    return d


def _write(grid: Grid, path: Path, **overrides) -> Path:
    profile = {
        "driver": "GTiff",
        "height": grid.shape[0],
        "width": grid.shape[1],
        "count": 1,
        "dtype": grid.values.dtype.name,
        "crs": grid.crs,
        "transform": grid.transform,
        "nodata": grid.nodata,
        **overrides,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(grid.values, 1)
    return path


@dataclass(frozen=True)
class Case:
    """One row: inputs (file names in ``base``), the error and its message."""

    zones: str = "zones.gpkg"
    raster: str = "grid.tif"
    output: str = "out.csv"
    kwargs: dict = field(default_factory=dict)
    cli: tuple[str, ...] = ()
    error: type[zd.ZonalError] = zd.ZonalError
    match: str = ""


CASES = {
    "missing zones": Case(
        zones="nope.shp", error=zd.ZonesError, match="nope.shp: no such file"
    ),
    "missing raster": Case(
        raster="nope.tif", error=zd.RasterError, match="nope.tif: no such file"
    ),
    "unreadable zones": Case(
        zones="garbage.gpkg",
        error=zd.ZonesError,
        match="garbage.gpkg: cannot read zones",
    ),
    "unreadable raster": Case(
        raster="garbage.tif", error=zd.RasterError, match="garbage.tif: not a raster"
    ),
    "no layers": Case(
        zones="nolayer.gpkg",
        error=zd.ZonesError,
        match="nolayer.gpkg: cannot read zones",
    ),
    "several layers": Case(
        zones="two.gpkg",
        error=zd.LayerError,
        match="two.gpkg: 2 layers, choose one with layer= .--layer.: first, second",
    ),
    "unknown layer": Case(
        zones="two.gpkg",
        kwargs={"layer": "third"},
        cli=("--layer", "third"),
        error=zd.LayerError,
        match="no layer 'third'; layers are: first, second",
    ),
    "zones without CRS": Case(
        zones="nocrs.shp",
        error=zd.CRSError,
        match="nocrs.shp: no CRS.*--assume-same-crs",
    ),
    "raster without CRS": Case(
        raster="nocrs.tif", error=zd.CRSError, match="nocrs.tif: no CRS"
    ),
    "a geometry collection of lines and polygons": Case(
        zones="collection.gpkg",
        error=zd.GeometryTypeError,
        match=r"collection.gpkg: feature 1 is a GeometryCollection of lines and "
        r"polygons; keep the parts",
    ),
    "rotated transform": Case(
        raster="rotated.tif",
        error=zd.TransformError,
        match=r"rotated.tif: rotated or sheared geotransform \(9.84",
    ),
    "nodata inf on integers": Case(
        raster="uint8.tif",
        kwargs={"nodata": np.inf},
        cli=("--nodata", "inf"),
        error=zd.NodataError,
        match="uint8.tif: nodata inf is not a value of dtype uint8",
    ),
    "nodata outside the dtype": Case(
        raster="uint8.tif",
        kwargs={"nodata": 300},
        cli=("--nodata", "300"),
        error=zd.NodataError,
        match="nodata 300.* is not a value of dtype uint8",
    ),
    "nodata not an integer": Case(
        raster="uint8.tif",
        kwargs={"nodata": 1.5},
        cli=("--nodata", "1.5"),
        error=zd.NodataError,
        match="nodata 1.5 is not a value of dtype uint8",
    ),
    "band out of range": Case(
        kwargs={"band": 2},
        cli=("--band", "2"),
        error=zd.RasterError,
        match="grid.tif: band 2 out of range 1..1",
    ),
    "unknown statistic": Case(
        kwargs={"stats": ["mean", "median2"]},
        cli=("--stats", "mean,median2"),
        error=zd.StatisticError,
        match="unknown statistic 'median2'",
    ),
    "missing id field": Case(
        kwargs={"zone_id": "nope"},
        cli=("--id-field", "nope"),
        error=zd.IdFieldError,
        match="zones.gpkg: no field 'nope'; fields are: name",
    ),
    "duplicate id values": Case(
        zones="dup.gpkg",
        kwargs={"zone_id": "code"},
        cli=("--id-field", "code"),
        error=zd.IdFieldError,
        match="dup.gpkg: field 'code' repeats the value 1",
    ),
    "output directory missing": Case(
        output="nodir/out.csv",
        error=zd.OutputError,
        match="directory .*nodir does not exist",
    ),
    "output exists": Case(
        output="exists.csv",
        error=zd.OutputError,
        match=r"exists.csv: exists \(use --overwrite",
    ),
    "georeferenced by GCPs": Case(
        raster="gcps.tif",
        error=zd.TransformError,
        match="gcps.tif: georeferenced by ground control points, not by a geo",
    ),
    "georeferenced by RPCs": Case(
        raster="rpcs.tif",
        error=zd.TransformError,
        match="rpcs.tif: georeferenced by RPCs, not by a geotransform",
    ),
    "complex values": Case(
        raster="complex.tif",
        error=zd.RasterError,
        match=r"complex.tif: complex values \(complex64\)",
    ),
    "int64 nodata GDAL rounds": Case(
        raster="int64.tif",
        error=zd.NodataError,
        match="int64.tif: nodata 9007199254740992 of a int64 raster is at or beyond",
    ),
    "coordinates outside the declared CRS": Case(
        zones="wrongprj.gpkg",
        error=zd.CRSError,
        match="wrongprj.gpkg: zone 0 has coordinates x 499929.*--zones-crs",
    ),
    "zones_crs not a CRS": Case(
        kwargs={"zones_crs": "EPSG:99999"},
        cli=("--zones-crs", "EPSG:99999"),
        error=zd.CRSError,
        match="zones_crs: not a CRS: 'EPSG:99999'",
    ),
    "zones_crs with assume_same_crs": Case(
        kwargs={"zones_crs": CRS, "assume_same_crs": True},
        cli=("--zones-crs", CRS, "--assume-same-crs"),
        error=zd.CRSError,
        match="zones_crs needs zones whose coordinates are their own",
    ),
    "unknown output format": Case(
        output="out.xlsx", error=zd.OutputError, match="unknown output format '.xlsx'"
    ),
}


def _api(base: Path, case: Case) -> None:
    """The API's part of a row: compute, then write the table like the CLI."""
    kwargs = dict(case.kwargs)
    stats = kwargs.pop("stats", zd.DEFAULT_STATS)
    if case.error is zd.OutputError:
        table = zd.zonal_stats(base / case.zones, base / case.raster, stats, **kwargs)
        writers.write_table(table, base / case.output)
    else:
        zd.zonal_stats(base / case.zones, base / case.raster, stats, **kwargs)


@pytest.mark.parametrize("name", CASES)
def test_api_raises_a_specific_error(base, name):
    case = CASES[name]
    with pytest.raises(case.error, match=case.match):
        _api(base, case)


@pytest.mark.parametrize("name", CASES)
def test_cli_exits_non_zero_with_one_line(base, tmp_path, capsys, name):
    case = CASES[name]
    output = base / case.output
    before = output.read_text() if output.exists() else None
    args = [str(base / case.zones), str(base / case.raster), str(output), *case.cli]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("zonal-dask: error: ")
    assert re.search(case.match, err), err
    assert (output.read_text() if output.exists() else None) == before


def test_the_error_hierarchy_has_one_root():
    for case in CASES.values():
        assert issubclass(case.error, zd.ZonalError)
    assert issubclass(zd.LayerError, zd.ZonesError)
    assert issubclass(zd.TransformError, zd.RasterError)
    assert issubclass(zd.NodataError, zd.RasterError)


# -- rows handled by giving the right answer ----------------------------------


def _reference(geometries, grid=GRID, nodata=...):
    frame = zones_frame(geometries)
    return reference_stats(geometries, grid, frame.index, nodata)


def test_a_named_layer_is_read(base):
    table = zd.zonal_stats(base / "two.gpkg", base / "grid.tif", layer="second")
    assert len(table) == 2
    expected = _reference(GEOMETRIES[:2])
    expected.index = table.index
    assert_tables_close(table, expected)
    out = base / "second.csv"
    assert (
        main(
            [
                str(base / "two.gpkg"),
                str(base / "grid.tif"),
                str(out),
                "--layer",
                "second",
            ]
        )
        == 0
    )
    assert len(pd.read_csv(out)) == 2


def test_an_empty_layer_gives_an_empty_table(base, tmp_path):
    table = zd.zonal_stats(base / "empty.gpkg", base / "grid.tif")
    assert table.empty and list(table.columns) == list(zd.DEFAULT_STATS)
    out = tmp_path / "empty.csv"
    assert main([str(base / "empty.gpkg"), str(base / "grid.tif"), str(out)]) == 0
    assert pd.read_csv(out).empty


def test_assume_same_crs_accepts_missing_crs(base, tmp_path):
    expected = zd.zonal_stats(base / "zones.gpkg", base / "grid.tif")
    for zones, raster in [("nocrs.shp", "grid.tif"), ("zones.gpkg", "nocrs.tif")]:
        table = zd.zonal_stats(base / zones, base / raster, assume_same_crs=True)
        pd.testing.assert_frame_equal(table, expected)
    out = tmp_path / "o.csv"
    args = [str(base / "nocrs.shp"), str(base / "grid.tif"), str(out)]
    assert main([*args, "--assume-same-crs"]) == 0


def test_null_geometries_give_count_zero(tmp_path):
    geometries = [GEOMETRIES[0], None, GEOMETRIES[1]]
    path = tmp_path / "nulls.geojson"
    zones_frame(geometries).to_file(path, engine="pyogrio")
    table = zd.zonal_stats(path, GRID.to_dataarray())
    assert table["count"].tolist()[1] == 0
    assert table.iloc[1].drop("count").isna().all()
    expected = _reference(geometries)
    expected.index = table.index
    assert_tables_close(table, expected)


def test_invalid_geometries_are_repaired_with_a_count_in_the_warning(tmp_path):
    x0, y0 = GRID.transform @ (3, 3)
    x1, y1 = GRID.transform @ (30, 25)
    bowtie = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])
    loop = shapely.Polygon([(x0, y0), (x1, y0), (x0, y1), (x1, y1), (x0, y0)])
    assert not bowtie.is_valid and not loop.is_valid
    path = tmp_path / "invalid.gpkg"
    zones_frame([bowtie, GEOMETRIES[0], loop]).to_file(path, engine="pyogrio")
    with pytest.warns(UserWarning, match="invalid.gpkg: 2 invalid geometries repaired"):
        table = zd.zonal_stats(path, GRID.to_dataarray())
    repaired = [shapely.make_valid(bowtie), GEOMETRIES[0], shapely.make_valid(loop)]
    expected = _reference(repaired)
    expected.index = table.index
    assert_tables_close(table, expected)
    assert table["count"].iloc[0] > 0


def test_zones_wholly_outside_give_count_zero():
    outside = special_zones(GRID)[2]
    table = zd.zonal_stats(zones_frame([outside, GEOMETRIES[0]]), GRID.to_dataarray())
    assert table["count"].tolist()[0] == 0 and table["count"].tolist()[1] > 0
    # all of them outside: every row, count 0 (the planner once crashed here)
    alone = zd.zonal_stats(zones_frame([outside, outside]), GRID.to_dataarray())
    assert alone["count"].tolist() == [0, 0] and alone["mean"].isna().all()


@pytest.mark.parametrize("flip", ["south-up", "east-left"])
def test_flipped_rasters_from_a_file(tmp_path, flip):
    t = GRID.transform
    if flip == "south-up":
        transform = Affine(t.a, 0, t.c, 0, -t.e, t.f + t.e * GRID.shape[0])
        values = GRID.values[::-1]
    else:
        transform = Affine(-t.a, 0, t.c + t.a * GRID.shape[1], 0, t.e, t.f)
        values = GRID.values[:, ::-1]
    grid = Grid(np.ascontiguousarray(values), transform, GRID.nodata)
    path = _write(grid, tmp_path / "flipped.tif")
    geometries = [*GEOMETRIES, *special_zones(GRID)]
    table = zd.zonal_stats(zones_frame(geometries), path, chunks=16)
    assert_tables_close(table, _reference(geometries, grid))
    if flip == "east-left":  # GDAL breaks pixel-centre ties the other way
        return
    # the same pixels as the north-up raster, so the same statistics
    north_up = zd.zonal_stats(zones_frame(geometries), GRID.write(tmp_path / "n.tif"))
    assert_tables_close(table, north_up, rtol=1e-12)


@pytest.mark.parametrize("nodata", [np.nan, np.inf, -np.inf])
def test_nodata_nan_and_inf_on_a_float_raster(nodata):
    values = GRID.values.astype("float64")
    values[::7, ::3] = np.inf
    values[1::5, ::4] = -np.inf
    values[2::6, ::2] = np.nan
    grid = Grid(values, GRID.transform, None)
    array = grid.to_dataarray()
    table = zd.zonal_stats(zones_frame(GEOMETRIES), array, nodata=nodata, chunks=16)
    expected = _reference(GEOMETRIES, grid, nodata)
    # the counts are exact whatever numpy's inf arithmetic gives elsewhere
    np.testing.assert_array_equal(table["count"], expected["count"])
    if np.isinf(nodata):
        excluded = grid.values == nodata
        assert not np.isin(table["min" if nodata < 0 else "max"], [nodata]).any()
        assert excluded.any()


def test_nodata_nan_on_an_integer_raster_excludes_nothing(base):
    with_nan = zd.zonal_stats(base / "zones.gpkg", base / "uint8.tif", nodata=np.nan)
    without = zd.zonal_stats(base / "zones.gpkg", base / "uint8.tif")
    assert with_nan.equals(without)


def test_unwritable_output_directory(base, tmp_path):
    directory = tmp_path / "ro"
    directory.mkdir()
    with read_only(directory):
        out = directory / "out.csv"
        with pytest.raises(zd.OutputError, match="ro is not writable"):
            writers.check_output(out)
        args = [str(base / "zones.gpkg"), str(base / "grid.tif"), str(out)]
        assert main(args) == 1
        assert not out.exists()


# options and outputs of the command that cannot go together: refused before any
# work, in one line naming what was given ({out}: the run's directory)
REFUSED_TOGETHER = {
    "band all with pixels": (
        "out.csv",
        ["--band", "all", "--pixels", "{out}/p.parquet"],
        "--band all cannot go with --pixels",
    ),
    "pixels are the output": (
        "p.parquet",
        ["--pixels", "{out}/p.parquet"],
        "--pixels .*p.parquet and OUTPUT .*p.parquet are the same path",
    ),
    "GeoJSON of zones without a CRS code": (
        "out.geojson",
        ["--pixels", "{out}/p.parquet"],
        "out.geojson: GeoJSON can only name a CRS by its code",
    ),
    "group_by with include_cols": (
        "out.csv",
        ["--group-by", "name", "--include-cols", "name"],
        "group_by='name' with include_cols=name needs one feature a row",
    ),
    "group_by with a feature output": (
        "out.gpkg",
        ["--group-by", "name"],
        "--group-by cannot go with a .gpkg OUTPUT: a group of features has no single",
    ),
    "group_by with a map": (
        "out.csv",
        ["--group-by", "name", "--map", "{out}/m.png"],
        "--group-by cannot go with --map",
    ),
    "band all with a feature output": (
        "out.fgb",
        ["--band", "all"],
        "--band all cannot go with a .fgb OUTPUT",
    ),
}


@pytest.mark.parametrize("name", REFUSED_TOGETHER)
def test_options_that_cannot_go_together_are_refused_before_any_work(
    base, tmp_path, capsys, monkeypatch, name
):
    from pyproj import CRS as ProjCRS

    from zonal_dask import api

    output, flags, message = REFUSED_TOGETHER[name]
    zones = base / "zones.gpkg"
    if "GeoJSON" in name:  # a transverse Mercator of its own: no EPSG code
        custom = ProjCRS.from_proj4(
            "+proj=tmerc +lon_0=15.001 +k=0.9996 +x_0=500000 +ellps=WGS84 +units=m"
        )
        zones = tmp_path / "custom.gpkg"
        zones_frame(GEOMETRIES).to_crs(custom).to_file(zones, engine="pyogrio")
    run = tmp_path / "run"
    run.mkdir()

    def work(*args, **kwargs):
        raise AssertionError("work started before the refusal")

    monkeypatch.setattr(api, "zonal_stats", work)
    monkeypatch.setattr(api, "zonal_pixels", work)
    args = [str(zones), str(base / "grid.tif"), str(run / output)]
    assert main(args + [f.format(out=run) for f in flags]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    assert re.search(message, err), err
    assert list(run.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"include_cols": "name"}, "with include_cols=name needs one feature a row"),
        ({"zone_id": "name"}, "with zone_id='name' needs rows named by zone_id"),
        ({"geometry": True}, "with geometry=True needs one polygon a row"),
        ({"small": "touched"}, "with small='touched' needs rows of single polygons"),
    ],
)
def test_group_by_names_the_option_given_that_cannot_go_with_it(base, kwargs, message):
    with pytest.raises(zd.ZonesError, match=f"^group_by='name' {message}"):
        zd.zonal_stats(
            base / "zones.gpkg", base / "grid.tif", group_by="name", **kwargs
        )


def test_zonal_pixels_refuses_all_bands_before_any_work(base, monkeypatch):
    from zonal_dask import zones_as_data

    def work(*args, **kwargs):
        raise AssertionError("work started before the refusal")

    monkeypatch.setattr(zones_as_data, "label_source", work)
    with pytest.raises(zd.RasterError, match="one band at a time"):
        zd.zonal_pixels(base / "zones.gpkg", base / "grid.tif", band=None)
