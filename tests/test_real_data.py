"""Real rasters and polygons (tests/data, see its README) against rasterstats."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterstats import zonal_stats as rasterstats_zonal_stats

import zonal_dask as zd

from .reference import STATS, assert_tables_close, reference_stats, reprojected_stats
from .synth import Grid

SLOPE_CASES = [
    ("polygons.shp", "slope.tif"),
    ("polygons.shp", "slope_nodata.tif"),
    ("multipolygons.shp", "slope.tif"),
    ("polygons_partial_overlap.shp", "slope.tif"),
    ("polygons_no_overlap.shp", "slope_nodata.tif"),
]


def load_grid(path, band=1) -> Grid:
    with rasterio.open(path) as src:
        return Grid(src.read(band), src.transform, src.nodata, src.crs)


def rasterstats_table(frame, raster, index, **kwargs) -> pd.DataFrame:
    rows = rasterstats_zonal_stats(
        list(frame.geometry), str(raster), stats=list(STATS), **kwargs
    )
    table = pd.DataFrame(rows, index=index)[list(STATS)].astype(float)
    return table.astype({"count": "int64"})


def slope_zones(data_dir, name):
    frame = gpd.read_file(data_dir / "rasterstats" / name, fid_as_index=True)
    # multipolygons.prj wrongly says WGS84; every file is in the raster's Albers.
    with rasterio.open(data_dir / "rasterstats" / "slope.tif") as src:
        return frame.set_crs(src.crs, allow_override=True)


@pytest.mark.parametrize(("zones", "raster"), SLOPE_CASES)
def test_slope_fixtures_match_rasterstats(data_dir, zones, raster):
    frame = slope_zones(data_dir, zones)
    path = data_dir / "rasterstats" / raster
    actual = zd.zonal_stats(frame, path)
    expected = rasterstats_table(frame, path, actual.index)
    # rasterstats averages float32 in float32: agree to its precision
    assert_tables_close(actual, expected, rtol=1e-6)
    assert_tables_close(
        actual, reference_stats(frame.geometry, load_grid(path), actual.index)
    )


def test_slope_counts_are_the_documented_ones(data_dir):
    table = zd.zonal_stats(
        data_dir / "rasterstats" / "polygons.shp",
        data_dir / "rasterstats" / "slope.tif",
    )
    assert table["count"].tolist() == [75, 50]
    assert table.index.name == "fid"


def test_no_overlap_zones_get_rows_with_count_zero(data_dir):
    table = zd.zonal_stats(
        slope_zones(data_dir, "polygons_no_overlap.shp"),
        data_dir / "rasterstats" / "slope.tif",
    )
    assert len(table) == 9
    assert (table["count"] == 0).all()
    assert table.drop(columns="count").isna().all().all()


@pytest.mark.parametrize("band", [1, 2, 3])
def test_landsat_box_matches_rasterstats(data_dir, band):
    raster = data_dir / "rasterio" / "RGB.byte.tif"
    zones = data_dir / "rasterio" / "box.shp"
    actual = zd.zonal_stats(zones, raster, band=band)
    frame = gpd.read_file(zones)
    expected = rasterstats_table(frame, raster, actual.index, band=band)
    assert_tables_close(actual, expected, rtol=1e-9)
    assert actual["count"].iloc[0] > 40_000


def bahamas(data_dir) -> gpd.GeoDataFrame:
    world = gpd.read_file(data_dir / "rasterio" / "naturalearth_lowres")
    # filter to the scene's footprint before reprojecting (see data/README.md)
    return world.cx[-79.0:-76.6, 23.6:25.6]


def test_geographic_zones_are_reprojected_to_the_raster_crs(data_dir):
    """The Bahamas (lon/lat) over the UTM scene: exactly the pixels whose
    centres, taken to lon/lat, fall inside; rasterstats agrees once the
    country's edges are densified before reprojecting (unlike a plain
    ``to_crs``, whose straight edges cut 35 pixels differently)."""
    raster = data_dir / "rasterio" / "RGB.byte.tif"
    zones = bahamas(data_dir)
    assert zones.crs.to_epsg() == 4326 and len(zones) == 1
    grid = load_grid(raster)
    actual = zd.zonal_stats(zones, raster)
    assert_tables_close(
        actual, reprojected_stats(zones.geometry, zones.crs, grid, actual.index)
    )
    assert actual["count"].iloc[0] == 89_977
    straight = zd.zonal_stats(zones.to_crs(grid.crs), raster)
    assert straight["count"].iloc[0] - actual["count"].iloc[0] == 35
    densified = zones.set_geometry(zones.segmentize(0.0005)).to_crs(grid.crs)
    np.testing.assert_allclose(
        actual["mean"].iloc[0],
        rasterstats_table(densified, raster, actual.index)["mean"].iloc[0],
        rtol=1e-9,
    )


@pytest.mark.parametrize("all_touched", [False, True], ids=["centre", "all-touched"])
@pytest.mark.parametrize("zones", ["lines.shp", "points.shp"])
def test_slope_lines_and_points_match_rasterstats(data_dir, zones, all_touched):
    frame = slope_zones(data_dir, zones)
    path = data_dir / "rasterstats" / "slope.tif"
    actual = zd.zonal_stats(frame, path, all_touched=all_touched, chunks=(20, 30))
    expected = rasterstats_table(frame, path, actual.index, all_touched=all_touched)
    assert_tables_close(actual, expected, rtol=1e-6)
    assert (actual["count"] > 0).all()
