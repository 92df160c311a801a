"""Coverage-weighted statistics against exactextract itself."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from exactextract import exact_extract

import zonal_dask as zd

from .synth import make_grid, special_zones, voronoi_zones, zones_frame

# exactextract's names; every moment statistic is weighted the same way
STATS = ["count", "sum", "mean", "min", "max", "stdev", "variance"]
STATS += ["coefficient_of_variation"]


def exactextract_table(frame, raster_path, stats=STATS):
    table = exact_extract(str(raster_path), frame, stats, output="pandas")
    return table.set_axis(frame.index)


@pytest.mark.parametrize("chunks", [(7, 9), 64])
def test_synthetic_zones_match_exactextract(tmp_path, chunks):
    grid = make_grid((40, 52), seed=71, nan_fraction=0.03)
    cells = voronoi_zones(grid, 10, seed=71)
    blob = cells[2].buffer(40)  # overlaps its neighbours
    frame = zones_frame([*cells, *special_zones(grid)[:4], blob])
    path = grid.write(tmp_path / "grid.tif")
    ours = zd.zonal_stats(frame, path, STATS, weights="coverage", chunks=chunks)
    theirs = exactextract_table(frame, path)
    covered = theirs["count"] > 0
    np.testing.assert_allclose(ours[covered], theirs.loc[covered, STATS], rtol=1e-9)
    # no covered valid pixel: count 0 and NaN (exactextract says sum 0)
    assert (ours.loc[~covered, "count"] == 0).all() and (~covered).sum() >= 1
    assert ours.loc[~covered, STATS[1:]].isna().all().all()
    assert (ours["count"] % 1 != 0).any()  # fractional: really weighted


def test_real_data_matches_exactextract(data_dir):
    zones = data_dir / "rasterstats" / "polygons.shp"
    raster = data_dir / "rasterstats" / "slope_nodata.tif"
    ours = zd.zonal_stats(zones, raster, STATS, weights="coverage")
    theirs = exactextract_table(gpd.read_file(zones), raster)
    np.testing.assert_allclose(ours[STATS], theirs[STATS], rtol=1e-9)


def test_a_column_gets_the_statistic_it_names_not_its_name(data_dir):
    """Regression: ``{"mean": "max"}`` gave the weighted mean in column mean."""
    zones = data_dir / "rasterstats" / "polygons.shp"
    raster = data_dir / "rasterstats" / "slope.tif"
    theirs = exactextract_table(gpd.read_file(zones), raster, ["max", "mean"])
    named = zd.zonal_stats(zones, raster, {"mean": "max"}, weights="coverage")
    np.testing.assert_allclose(named["mean"], theirs["max"], rtol=1e-12)
    assert not np.allclose(named["mean"], theirs["mean"])
    renamed = zd.zonal_stats(zones, raster, {"avg": "mean"}, weights="coverage")
    np.testing.assert_allclose(renamed["avg"], theirs["mean"], rtol=1e-12)


def test_statistics_not_defined_under_weights_are_refused(data_dir):
    zones = data_dir / "rasterstats" / "polygons.shp"
    raster = data_dir / "rasterstats" / "slope.tif"
    unweighted = [n for n, s in zd.STATISTICS.items() if not s.weighted]
    assert unweighted  # the case is not vacuous
    for name in unweighted:
        with pytest.raises(zd.StatisticError, match=f"'{name}' needs unweighted"):
            zd.zonal_stats(zones, raster, ["mean", name], weights="coverage")
    with pytest.raises(zd.StatisticError, match="'iqr' needs unweighted"):
        zd.zonal_stats(zones, raster, {"iqr": np.ptp}, coverage="fraction")
    # any other string is a weights raster
    with pytest.raises(zd.RasterError, match="area: no such file"):
        zd.zonal_stats(zones, raster, weights="area")
