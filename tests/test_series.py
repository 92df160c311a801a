"""Time series: files, STAC and xarray cubes as steps, one plan, a vector data cube.

Each cube is checked step by step against ``zonal_stats`` on that step alone
(itself checked against the brute-force reference), and one step against the
reference directly.
"""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import zonal_dask as zd
from zonal_dask.burn import rules
from zonal_dask.labels import sources

from .reference import assert_tables_close, reference_stats
from .synth import TRANSFORM, Grid, make_grid, special_zones, voronoi_zones, zones_frame

SHAPE = (45, 67)
CHUNKS = (16, 20)
DATES = pd.date_range("2024-01-01", periods=5, freq="D")
GRIDS = [
    make_grid(SHAPE, "float32", seed=70 + t, nan_fraction=0.03, loc=100 + 10 * t)
    for t in range(len(DATES))
]
# adjacent cells (shared edges) and overlapping, outside, tiny and empty zones
GEOMETRIES = voronoi_zones(GRIDS[0], 14, seed=7) + special_zones(GRIDS[0])
FRAME = zones_frame(GEOMETRIES)
STATS = ["count", "nodata_count", "min", "mean", "max", "std", "sum", "median"]


def step_table(cube: xr.Dataset, t: int, columns: list[str]) -> pd.DataFrame:
    """One step of the cube as ``zonal_stats`` gives it: a row per zone."""
    step = cube.isel(time=t)
    table = pd.DataFrame({c: step[c].to_numpy() for c in columns})
    return table.set_axis(pd.Index(step["fid"].to_numpy(), name="fid"))


def write_steps(directory) -> list:
    """The steps as daily GeoTIFFs, ``lst_YYYY-MM-DD.tif``."""
    return [
        g.write(directory / f"lst_{d:%Y-%m-%d}.tif")
        for g, d in zip(GRIDS, DATES, strict=True)
    ]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_steps(tmp_path_factory.mktemp("series"))


@pytest.fixture(scope="module")
def steps(files):
    """Each step alone, as ``zonal_stats`` computes it."""
    return [zd.zonal_stats(FRAME, f, STATS, chunks=CHUNKS) for f in files]


def test_a_step_alone_is_the_reference(steps):
    expected = reference_stats(GEOMETRIES, GRIDS[2], FRAME.index)
    assert_tables_close(steps[2][list(expected.columns)], expected)


@pytest.mark.parametrize(
    ("chunks", "batch", "split_every"),
    [(CHUNKS, None, 8), (CHUNKS, 2, 2), ((9, 67), 1, 8), (None, 3, 3)],
)
def test_a_glob_of_files_equals_each_step_alone(
    files, steps, chunks, batch, split_every
):
    pattern = str(files[0].parent / "lst_*.tif")
    cube = zd.zonal_series(
        FRAME,
        pattern,
        STATS,
        time_pattern="%Y-%m-%d",
        chunks=chunks,
        batch=batch,
        split_every=split_every,
    )
    assert dict(cube.sizes) == {"zone": len(FRAME), "time": len(DATES)}
    assert (cube.time.to_numpy() == DATES.to_numpy()).all()
    assert cube.source.to_numpy().tolist() == [f.name for f in files]
    for t, expected in enumerate(steps):
        assert_tables_close(step_table(cube, t, STATS), expected, rtol=1e-12)


def test_the_cube_carries_the_zones_as_xvec_expects(files):
    cube = zd.zonal_series(FRAME, files[:2], ["mean"], time_pattern="%Y-%m-%d")
    assert cube.xindexes["zone"].crs == FRAME.crs
    assert list(cube.zone.to_numpy()[:14]) == list(FRAME.geometry[:14])
    assert cube.zone.to_numpy()[-1].is_empty  # the empty zone
    assert cube.sel(fid=3)["mean"].shape == (2,)
    frame = cube.xvec.to_geodataframe(long=True)
    assert len(frame) == 2 * len(FRAME)
    hits = cube.xvec.query("zone", GEOMETRIES[0].centroid)
    assert hits.fid.to_numpy().tolist()[:1] == [0]


def test_files_in_the_order_given_are_steps_by_position(files, steps):
    order = [files[3], files[0], files[1]]
    cube = zd.zonal_series(FRAME, order, STATS, chunks=CHUNKS)
    assert cube.time.to_numpy().tolist() == [0, 1, 2]
    for t, f in enumerate(order):
        assert_tables_close(step_table(cube, t, STATS), steps[files.index(f)])


def test_every_band_of_each_step(tmp_path):
    paths = []
    for t in range(3):
        values = np.stack(
            [
                make_grid(SHAPE, "int16", seed=t * 3 + b, nodata=-1).values
                for b in range(2)
            ]
        )
        path = tmp_path / f"s{t}.tif"
        profile = {
            "driver": "GTiff",
            "height": SHAPE[0],
            "width": SHAPE[1],
            "count": 2,
            "dtype": "int16",
            "crs": "EPSG:32633",
            "transform": TRANSFORM,
            "nodata": -1,
        }
        import rasterio

        with rasterio.open(path, "w", **profile) as dst:
            dst.write(values)
        paths.append(path)
    cube = zd.zonal_series(
        FRAME, paths, ["count", "mean", "majority"], band=None, batch=2
    )
    assert dict(cube.sizes) == {"zone": len(FRAME), "time": 3, "band": 2}
    for t, path in enumerate(paths):
        for b in (1, 2):
            expected = zd.zonal_stats(
                FRAME, path, ["count", "mean", "majority"], band=b
            )
            got = step_table(cube.sel(band=b), t, ["count", "mean", "majority"])
            assert_tables_close(got, expected, rtol=1e-12)


def cube_of(grids: list[Grid], name: str = "lst") -> xr.DataArray:
    arrays = [g.to_dataarray() for g in grids]
    cube = xr.concat(arrays, dim="time").assign_coords(time=DATES[: len(grids)])
    return cube.rename(name).rio.write_nodata(grids[0].nodata)


def test_a_dataset_of_two_variables(steps):
    other = [make_grid(SHAPE, "float64", seed=90 + t, nodata=None) for t in range(5)]
    ds = xr.Dataset({"lst": cube_of(GRIDS), "ndvi": cube_of(other, "ndvi")})
    ds = ds.chunk({"time": 2, "y": 16, "x": 20})
    cube = zd.zonal_series(FRAME, ds, ["mean", "std"], batch=2)
    assert list(cube.data_vars) == ["lst_mean", "lst_std", "ndvi_mean", "ndvi_std"]
    for t, grid in enumerate(other):
        expected = zd.zonal_stats(FRAME, grid.to_dataarray(), ["mean", "std"])
        got = step_table(cube, t, ["ndvi_mean", "ndvi_std"]).set_axis(
            ["mean", "std"], axis=1
        )
        assert_tables_close(got, expected, rtol=1e-12)
        got = step_table(cube, t, ["lst_mean"]).set_axis(["mean"], axis=1)
        assert_tables_close(got, steps[t][["mean"]], rtol=1e-12)


def test_a_zarr_cube_by_path_and_a_data_array(tmp_path, steps):
    path = tmp_path / "lst.zarr"
    cube_of(GRIDS).to_dataset().chunk({"time": 1, "y": 16, "x": 20}).to_zarr(
        path, consolidated=False
    )
    from_path = zd.zonal_series(FRAME, path, STATS)
    from_array = zd.zonal_series(FRAME, cube_of(GRIDS), STATS, chunks=CHUNKS)
    for cube in (from_path, from_array):
        for t, expected in enumerate(steps):
            assert_tables_close(step_table(cube, t, STATS), expected, rtol=1e-12)


def stac_catalog(directory, files):
    """A self-contained static STAC catalog, one item per file, asset ``lst``."""
    import pystac

    catalog = pystac.Catalog(id="lst", description="daily land surface temperature")
    for f, date in zip(files, DATES, strict=True):
        item = pystac.Item(
            id=f"lst-{date:%Y%m%d}",
            geometry=None,
            bbox=None,
            datetime=datetime.datetime(date.year, date.month, date.day, 10, 30),
            properties={},
        )
        item.add_asset(
            "lst", pystac.Asset(href=str(f), media_type=pystac.MediaType.COG)
        )
        item.add_asset("qa", pystac.Asset(href=str(f)))
        catalog.add_item(item)
    catalog.normalize_hrefs(str(directory / "stac"))
    catalog.make_all_asset_hrefs_relative()
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return directory / "stac" / "catalog.json"


def test_a_stac_catalog(tmp_path, files, steps):
    import shutil

    for f in files:  # the assets beside the catalog: relative hrefs
        shutil.copy(f, tmp_path / f.name)
    local = [tmp_path / f.name for f in files]
    path = stac_catalog(tmp_path, local)
    cube = zd.zonal_series(FRAME, path, STATS, asset="lst", chunks=CHUNKS)
    assert cube.time.to_numpy()[0] == np.datetime64("2024-01-01T10:30")
    assert cube.source.to_numpy().tolist()[:2] == ["lst-20240101", "lst-20240102"]
    for t, expected in enumerate(steps):
        assert_tables_close(step_table(cube, t, STATS), expected, rtol=1e-12)
    import pystac

    items = pystac.ItemCollection(
        pystac.Catalog.from_file(str(path)).get_items(recursive=True)
    )
    again = zd.zonal_series(FRAME, items, STATS, asset="lst", chunks=CHUNKS)
    xr.testing.assert_identical(again, cube)
    with pytest.raises(zd.SeriesError, match=r"asset=.*lst, qa"):
        zd.zonal_series(FRAME, path, STATS)
    with pytest.raises(zd.SeriesError, match="no asset 'red'"):
        zd.zonal_series(FRAME, path, STATS, asset="red")


def test_a_step_on_another_grid_is_refused_unless_one_plan_per_grid(tmp_path, files):
    shifted = Grid(
        GRIDS[2].values, TRANSFORM * TRANSFORM.translation(3, 0), GRIDS[2].nodata
    )
    odd = shifted.write(tmp_path / "lst_2024-01-03.tif")
    series = [files[0], files[1], odd, files[3]]
    with pytest.raises(
        zd.GridError,
        match=r"lst_2024-01-03\.tif \(step 3 of 4, time 2024-01-03\): not on "
        r"the first step's grid",
    ):
        zd.zonal_series(FRAME, series, ["mean"], time_pattern="%Y-%m-%d")
    cube = zd.zonal_series(
        FRAME, series, STATS, time_pattern="%Y-%m-%d", plan_per_grid=True, chunks=CHUNKS
    )
    expected = zd.zonal_stats(FRAME, odd, STATS, chunks=CHUNKS)
    assert_tables_close(step_table(cube, 2, STATS), expected, rtol=1e-12)
    assert_tables_close(
        step_table(cube, 3, STATS),
        zd.zonal_stats(FRAME, files[3], STATS, chunks=CHUNKS),
        rtol=1e-12,
    )


def test_steps_that_cannot_go_together_are_refused(tmp_path, files):
    other = make_grid(SHAPE, "int16", seed=1).write(tmp_path / "lst_2024-02-01.tif")
    with pytest.raises(zd.SeriesError, match=r"lst_2024-02-01\.tif: dtype int16"):
        zd.zonal_series(FRAME, [files[0], other], time_pattern="%Y-%m-%d")
    renodata = Grid(GRIDS[1].values, nodata=-1.0).write(tmp_path / "lst_2024-02-02.tif")
    with pytest.raises(zd.SeriesError, match=r"nodata -1\.0 where"):
        zd.zonal_series(FRAME, [files[0], renodata], time_pattern="%Y-%m-%d")
    zd.zonal_series(FRAME, [files[0], renodata], ["count"], nodata=-9999)  # one for all
    with pytest.raises(zd.SeriesError, match="does not hold time pattern '%Y%j'"):
        zd.zonal_series(FRAME, files, time_pattern="%Y%j")
    with pytest.raises(zd.SeriesError, match="two steps at time 2024-01-01"):
        zd.zonal_series(FRAME, [files[0], files[0]], time_pattern="%Y-%m-%d")
    with pytest.raises(zd.SeriesError, match="no file matches"):
        zd.zonal_series(FRAME, str(tmp_path / "none_*.tif"))


def test_histogram_columns_found_in_later_batches_count_zero_before(tmp_path):
    grids = [
        make_grid(SHAPE, "uint8", seed=t, nodata=None, loc=3, scale=1) for t in range(3)
    ]
    grids[2].values[:5, :5] = 40  # a class no earlier step has
    paths = [g.write(tmp_path / f"c{t}.tif") for t, g in enumerate(grids)]
    cube = zd.zonal_series(FRAME, paths, ["count"], categorical=True, batch=1)
    assert "40" in cube.data_vars
    for t, path in enumerate(paths):
        expected = zd.zonal_stats(FRAME, path, ["count"], categorical=True)
        for column in expected.columns:
            np.testing.assert_array_equal(
                cube[str(column)].isel(time=t), expected[column]
            )
        assert cube["40"].isel(time=t).sum() == expected.get(40, pd.Series([0])).sum()


def test_a_saved_plan_is_used_without_rasterizing(tmp_path, files, steps, monkeypatch):
    plan = zd.ZonePlan(FRAME, like=files[0], chunks=CHUNKS).save(tmp_path / "plan.zarr")

    def refuse(*args, **kwargs):
        raise AssertionError("rasterized although a zone plan was given")

    monkeypatch.setattr(rules, "burn_claims", refuse)
    monkeypatch.setattr(sources, "polygon_labels", refuse)
    cube = zd.zonal_series(zd.ZonePlan.load(tmp_path / "plan.zarr"), files, STATS)
    for t, expected in enumerate(steps):
        got = step_table(
            cube.rename(zone="z").rename(z="zone").assign_coords(fid=cube.zone),
            t,
            STATS,
        )
        assert_tables_close(got, expected, rtol=1e-12)
    assert plan.index.equals(FRAME.index)


def test_label_raster_zones(files):
    label = xr.zeros_like(GRIDS[0].to_dataarray(), dtype="int32")
    label[:, :30] = 4
    label[:, 30:] = 9
    cube = zd.zonal_series(label.rio.write_nodata(None), files[:3], ["mean", "p90"])
    assert cube.zone.to_numpy().tolist() == [4, 9]
    for t, f in enumerate(files[:3]):
        expected = zd.zonal_stats(label.rio.write_nodata(None), f, ["mean", "p90"])
        got = cube.isel(time=t)[["mean", "p90"]].to_dataframe()[["mean", "p90"]]
        assert_tables_close(got, expected, rtol=1e-12)


def test_a_data_array_with_time_and_band_like_stackstac(steps):
    """(time, band, y, x): every band of every step, or one band."""
    other = [make_grid(SHAPE, "float32", seed=40 + t, nodata=None) for t in range(5)]
    lst, red = cube_of(GRIDS), cube_of(other)
    stack = xr.concat([lst, red], dim="band").transpose("time", "band", "y", "x")
    stack = stack.assign_coords(band=["lst", "red"]).rio.write_nodata(-9999.0)
    cube = zd.zonal_series(FRAME, stack.chunk({"y": 16, "x": 20}), STATS, band=None)
    assert dict(cube.sizes) == {"zone": len(FRAME), "time": 5, "band": 2}
    for t, expected in enumerate(steps):
        got = step_table(cube.sel(band="lst"), t, STATS)
        assert_tables_close(got, expected, rtol=1e-12)
    first = zd.zonal_series(FRAME, stack, ["mean"], band=1, chunks=CHUNKS)
    np.testing.assert_array_equal(first["mean"], cube["mean"].sel(band="lst"))


def test_on_a_cluster_the_workers_read_and_keep_the_labels(files, steps, local_cluster):
    with local_cluster.as_current():
        cube = zd.zonal_series(FRAME, files, STATS, time_pattern="%Y-%m-%d", batch=2)
    for t, expected in enumerate(steps):
        assert_tables_close(step_table(cube, t, STATS), expected, rtol=1e-12)
