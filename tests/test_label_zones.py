"""Zones given as an integer label raster instead of polygons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import zonal_dask as zd

from .reference import assert_tables_close
from .synth import Grid, make_grid, voronoi_zones, zones_frame

GRID = make_grid((44, 57), seed=61, nan_fraction=0.02)
CELLS = voronoi_zones(GRID, 12, seed=61)
FRAME = zones_frame(CELLS)
STATS = ["count", "nodata_count", "mean", "std", "median", "p90", "majority"]


def label_grid(nodata=-1) -> Grid:
    """The cells as labels 100, 101, ... (nodata where no cell)."""
    positions = zd.rasterize_zones(FRAME, GRID.to_dataarray()).values
    labels = np.where(positions >= 0, positions + 100, nodata).astype("int32")
    return Grid(labels, GRID.transform, nodata)


def expected(stats):
    by_polygon = zd.zonal_stats(FRAME, GRID.to_dataarray(), stats, chunks=(10, 20))
    present = by_polygon[(by_polygon["count"] + by_polygon["nodata_count"]) > 0]
    return present.set_axis(pd.Index(present.index + 100, name="zone"))


@pytest.mark.parametrize("as_file", [False, True])
def test_a_label_raster_gives_the_polygons_answer(tmp_path, as_file):
    labels = label_grid()
    zones = labels.write(tmp_path / "labels.tif") if as_file else labels.to_dataarray()
    raster = GRID.write(tmp_path / "values.tif") if as_file else GRID.to_dataarray()
    actual = zd.zonal_stats(zones, raster, STATS, chunks=(10, 20))
    assert actual.index.name == "zone"
    assert_tables_close(actual, expected(STATS))


def test_label_rasters_work_with_categorical_and_bands():
    labels = label_grid().to_dataarray()
    table = zd.zonal_stats(
        labels, GRID.to_dataarray(), ["count", "mean"], categorical=True
    )
    assert (table.drop(columns=["count", "mean"]).sum(axis=1) == table["count"]).all()
    cube = xr.concat([GRID.to_dataarray(), GRID.to_dataarray()], dim="band")
    ds = zd.zonal_stats(labels, cube, ["count", "mean"], band=None, chunks=16)
    assert ds.zone.values.tolist() == table.index.tolist()
    for band in (0, 1):
        np.testing.assert_allclose(
            ds["mean"].isel(band=band), table["mean"], rtol=1e-12
        )


def test_a_label_raster_on_another_grid_is_refused():
    labels = label_grid()
    shifted = Grid(
        labels.values, labels.transform * labels.transform.translation(1, 0), -1
    )
    with pytest.raises(zd.RasterError, match="not on the raster's grid"):
        zd.zonal_stats(shifted.to_dataarray(), GRID.to_dataarray())


def test_a_float_label_raster_is_refused():
    labels = Grid(label_grid().values.astype("float32"), GRID.transform, -1)
    with pytest.raises(zd.RasterError, match="needs integers"):
        zd.zonal_stats(labels.to_dataarray(), GRID.to_dataarray())
