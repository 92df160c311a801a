"""exactextract as an independent reference where coverage weighting cannot matter.

A polygon whose edges lie on pixel edges covers each pixel wholly or not at all,
so exactextract's coverage-weighted count, sum and mean are the plain ones and
must equal zonal_dask's exactly, on real data with nodata.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely

import zonal_dask as zd

exactextract = pytest.importorskip("exactextract")


def _pixel_aligned_zones(src) -> gpd.GeoDataFrame:
    t = src.transform

    def cells(col0, row0, col1, row1):
        (x0, y0), (x1, y1) = t @ (col0, row0), t @ (col1, row1)
        return shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))

    ring = cells(10, 10, 40, 35).difference(cells(18, 15, 30, 28))  # with a hole
    staircase = shapely.union_all(
        [cells(50 + i, 5 + 3 * i, 60, 8 + 3 * i) for i in range(8)]
    )
    return gpd.GeoDataFrame(
        geometry=[ring, staircase, cells(0, 0, 84, 78), cells(70, 60, 90, 90)],
        crs=src.crs,
    )


@pytest.mark.parametrize("name", ["slope.tif", "slope_nodata.tif"])
def test_equal_to_exactextract_on_pixel_aligned_polygons(data_dir, name):
    path = data_dir / "rasterstats" / name
    with rasterio.open(path) as src:
        zones = _pixel_aligned_zones(src)
        theirs = exactextract.exact_extract(
            src, zones, ["count", "sum", "mean", "min", "max"], output="pandas"
        )
    ours = zd.zonal_stats(zones, path, ["count", "sum", "mean", "min", "max"])
    np.testing.assert_allclose(theirs["count"], ours["count"], rtol=0, atol=1e-9)
    assert (ours["count"] > 100).all()
    for stat in ("sum", "mean", "min", "max"):
        np.testing.assert_allclose(theirs[stat], ours[stat], rtol=1e-9)
