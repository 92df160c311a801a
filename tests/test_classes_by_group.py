"""The classes statistics of a float raster, computed per zone group.

On a float raster nearly every pixel is a class of its own, so ``majority``,
``minority``, ``variety`` and ``unique`` take each zone group's values
instead of one (zone, value) table merged over the whole raster
(``statistics.table.classes_by_group``). Both routes are exact: the same
table, to the bit, as the merged table gives (which a per-class statistic
such as ``frac`` still takes), and the one-polygon-at-a-time reference.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
import xarray as xr

import zonal_dask as zd
from zonal_dask.statistics.table import STATISTICS, Column, classes_by_group

from .reference import reference_table
from .synth import make_grid, special_zones, voronoi_zones, zones_frame

PER_ZONE = ["majority", "minority", "variety", "unique"]


def columns(*names: str) -> list[Column]:
    return [Column(n, STATISTICS[n]) for n in names]


def test_the_route_is_taken_on_float_rasters_without_per_class_columns():
    assert classes_by_group(columns("majority", "mean"), "float32")
    assert classes_by_group(columns(*PER_ZONE), np.float64)
    assert not classes_by_group(columns("majority"), "int16")
    assert not classes_by_group(columns("majority"), "uint8")
    assert not classes_by_group(columns("majority", "frac"), "float32")
    assert not classes_by_group(columns("mean", "median"), "float32")


def few_values(seed: int, dtype: str = "float32"):
    """A float raster with repeated values (ties in majority and minority),
    nodata and NaN pixels."""
    grid = make_grid(dtype=dtype, seed=seed, nan_fraction=0.03, scale=12.0)
    values = grid.values.copy()
    finite = np.isfinite(values) & (values != grid.nodata)
    values[finite] = np.round(values[finite] / 4.0) * 0.25
    return type(grid)(values, nodata=grid.nodata)


def assert_same_classes(grouped, merged) -> None:
    for name in ("majority", "minority", "variety"):
        np.testing.assert_array_equal(
            grouped[name].to_numpy(), merged[name].to_numpy(), err_msg=name
        )
    for a, b in zip(grouped["unique"], merged["unique"], strict=True):
        np.testing.assert_array_equal(a, b)


def tasks(zones, raster, stats, options) -> set[str]:
    """The kinds of classes and value group tasks a request's graph holds."""
    lazy = zd.zonal_stats(zones, raster, stats, compute=False, **options)
    names = {str(k[0] if isinstance(k, tuple) else k) for k in lazy.dask}
    return {
        kind
        for kind in ("zonal-classes", "zonal-group")
        if any(n.startswith(kind) for n in names)
    }


OPTIONS = [
    {"chunks": (16, 16)},
    {"chunks": (23, 40)},
    {"chunks": None},
    {"chunks": (16, 16), "coverage": "fraction"},
    {"chunks": None, "coverage": "fraction"},
    {"chunks": (23, 40), "small": "touched"},  # tiny zones' fallback rows
    {"chunks": (16, 16), "default_value": 42.5},  # nodata and NaN count as 42.5
    {"chunks": (16, 16), "all_touched": True},
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(map(str, o)))
def test_grouped_classes_are_the_merged_tables_bit_for_bit(options):
    grid = few_values(seed=3)
    zones = zones_frame(voronoi_zones(grid, 30, seed=4) + special_zones(grid))
    raster = grid.to_dataarray()
    grouped = zd.zonal_stats(zones, raster, PER_ZONE, **options)
    # a statistic with a column per class keeps the whole table
    merged = zd.zonal_stats(zones, raster, [*PER_ZONE, "frac"], **options)
    assert tasks(zones, raster, PER_ZONE, options) == {"zonal-group"}
    assert "zonal-classes" in tasks(zones, raster, [*PER_ZONE, "frac"], options)
    assert_same_classes(grouped, merged[PER_ZONE])
    assert (grouped["variety"] > 1).any()
    if "default_value" in options:
        assert (grouped["unique"].map(lambda u: 42.5 in u)).any()
    if "small" not in options and "default_value" not in options:
        # zones without values: variety 0, no majority, no unique values
        assert (grouped["variety"] == 0).any()
        assert grouped["majority"].isna().any()
        assert any(u.size == 0 for u in grouped["unique"])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_grouped_classes_match_the_reference_one_polygon_at_a_time(dtype):
    grid = few_values(seed=5, dtype=dtype)
    geometries = voronoi_zones(grid, 25, seed=6) + special_zones(grid)
    zones = zones_frame(geometries)
    stats = ["majority", "minority", "variety"]
    table = zd.zonal_stats(zones, grid.to_dataarray(), stats, chunks=(17, 29))
    expected = reference_table(geometries, grid, table.index, stats)
    for name in stats:
        np.testing.assert_array_equal(
            table[name].to_numpy(), expected[name].to_numpy(), err_msg=name
        )


def test_grouped_classes_of_each_band_are_the_merged_tables():
    bands = [few_values(seed=s) for s in (7, 8, 9)]
    planes = [b.to_dataarray() for b in bands]
    cube = xr.concat(planes, dim="band").assign_coords(band=[1, 2, 3])
    cube = cube.rio.write_nodata(bands[0].nodata)
    zones = zones_frame(voronoi_zones(bands[0], 20, seed=10))
    grouped = zd.zonal_stats(zones, cube, PER_ZONE, band=None, chunks=(20, 30))
    merged = zd.zonal_stats(
        zones, cube, [*PER_ZONE, "frac"], band=None, chunks=(20, 30)
    )
    for band in (1, 2, 3):
        assert_same_classes(
            grouped.sel(band=band).to_dataframe(),
            merged.sel(band=band).to_dataframe(),
        )


def test_a_series_of_float_steps_takes_the_route_batch_by_batch(tmp_path):
    grids = [few_values(seed=s) for s in (11, 12, 13)]
    paths = [g.write(tmp_path / f"step_{i}.tif") for i, g in enumerate(grids)]
    zones = zones_frame(voronoi_zones(grids[0], 15, seed=14) + special_zones(grids[0]))
    stats = ["majority", "minority", "variety"]
    grouped = zd.zonal_series(zones, paths, stats, batch=2, chunks=(16, 20))
    merged = zd.zonal_series(zones, paths, [*stats, "frac"], batch=2, chunks=(16, 20))
    for name in stats:
        np.testing.assert_array_equal(
            grouped[name].to_numpy(), merged[name].to_numpy(), err_msg=name
        )
    for t, path in enumerate(paths):  # each step as zonal_stats gives it alone
        alone = zd.zonal_stats(zones, path, stats, chunks=(16, 20))
        for name in stats:
            np.testing.assert_array_equal(
                grouped[name].isel(time=t).to_numpy(), alone[name].to_numpy()
            )


@pytest.mark.filterwarnings("ignore:no zone of")
@pytest.mark.parametrize("dtype", ["float32", "int16"])
def test_zones_that_hold_no_pixel_give_empty_classes_on_either_route(dtype):
    grid = few_values(seed=15) if dtype == "float32" else make_grid(dtype=dtype)
    _, ymin, xmax, ymax = grid.bounds()
    away = [shapely.box(xmax + 100, ymin, xmax + 900, ymax)]  # wholly outside
    zones = zones_frame(away)
    for stats in (PER_ZONE, [*PER_ZONE, "frac", "histogram"]):
        table = zd.zonal_stats(zones, grid.to_dataarray(), stats, chunks=(16, 16))
        assert table.loc[0, "variety"] == 0
        assert pd.isna(table.loc[0, "majority"])
        assert table.loc[0, "unique"].size == 0
