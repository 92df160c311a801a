"""Zones from every vector format, and the progress bar."""

from __future__ import annotations

import io as stdio

import geopandas as gpd
import pytest

import zonal_dask as zd
from zonal_dask.run import scheduler
from zonal_dask.run.progress import reporter

from .synth import make_grid, voronoi_zones, zones_frame

GRID = make_grid((40, 50), seed=31)
FRAME = zones_frame(voronoi_zones(GRID, 7, seed=31))


@pytest.mark.parametrize(
    ("suffix", "driver", "first_fid"),
    [
        (".gpkg", "GPKG", 1),
        (".geojson", "GeoJSON", 0),
        (".fgb", "FlatGeobuf", 0),
        (".shp", "ESRI Shapefile", 0),
        (".parquet", None, 0),
    ],
)
def test_every_vector_format_gives_the_same_table(tmp_path, suffix, driver, first_fid):
    path = tmp_path / f"zones{suffix}"
    frame = FRAME.reset_index(drop=True)
    if driver is None:
        frame.to_parquet(path)
    else:
        frame.to_file(path, driver=driver, engine="pyogrio")
    raster = GRID.write(tmp_path / "grid.tif")
    table = zd.zonal_stats(path, raster)
    assert table.index.name == "fid"
    assert table.index[0] == first_fid and table.index.is_monotonic_increasing
    # FlatGeobuf's spatial index reorders features: match them by name
    by_name = zd.zonal_stats(path, raster, zone_id="name")
    assert by_name.reset_index(drop=True).equals(table.reset_index(drop=True))
    expected = zd.zonal_stats(FRAME, raster, zone_id="name")
    assert by_name.sort_index().equals(expected.sort_index())


def test_a_broken_vector_file_names_itself(tmp_path):
    path = tmp_path / "zones.gpkg"
    path.write_text("not a geopackage")
    with pytest.raises(zd.ZonesError, match=r"zones\.gpkg: cannot read zones"):
        zd.zonal_stats(path, GRID.write(tmp_path / "grid.tif"))


def test_progress_bar_reports_on_local_threads(tmp_path, monkeypatch):
    err = stdio.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    lazy = zd.zonal_stats(FRAME, GRID.write(tmp_path / "g.tif"), compute=False)
    table = scheduler.compute(lazy, report=reporter(True))
    assert len(table) == len(FRAME)
    assert "100%" in err.getvalue()


def test_zones_without_crs_need_assume_same_crs(tmp_path):
    frame = gpd.GeoDataFrame(
        FRAME.drop(columns="geometry"), geometry=list(FRAME.geometry)
    )
    assert frame.crs is None
    raster = GRID.write(tmp_path / "grid.tif")
    with pytest.raises(zd.CRSError, match="GeoDataFrame: no CRS"):
        zd.zonal_stats(frame, raster)
    taken = zd.zonal_stats(frame, raster, assume_same_crs=True)
    assert taken.equals(zd.zonal_stats(FRAME, raster))
