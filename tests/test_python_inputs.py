"""What rasterstats' and exactextract's users pass: features, NumPy arrays,
``include_cols``, ``progress``, and several variables of a Dataset at once.

Each form is checked against the float64 one-polygon-at-a-time reference, or
against the same zones and raster given as files (themselves checked against
the reference elsewhere), with several chunkings and ``split_every=2``.
"""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import xarray as xr

import zonal_dask as zd

from .reference import assert_tables_close, reference_table
from .synth import make_grid, special_zones, voronoi_zones, zones_frame

GRID = make_grid((47, 61), seed=12)
GEOMETRIES = [*voronoi_zones(GRID, 9, seed=12), *special_zones(GRID)[:-1]]
FRAME = zones_frame(GEOMETRIES)
STATS = ["count", "min", "mean", "max", "std", "sum", "median", "majority"]


def _reference(grid=GRID, geometries=GEOMETRIES, stats=STATS):
    index = pd.RangeIndex(len(geometries), name="fid")
    return reference_table(geometries, grid, index, stats)


class GeoThing:
    """Any object that offers ``__geo_interface__`` (as fiona features do)."""

    def __init__(self, geometry, **properties):
        self.__geo_interface__ = {
            "type": "Feature",
            "geometry": shapely.geometry.mapping(geometry),
            "properties": properties,
        }


FEATURE_FORMS = {
    "FeatureCollection": lambda: json.loads(FRAME.to_json()),
    "list of Feature dicts": lambda: json.loads(FRAME.to_json())["features"],
    "list of geometry dicts": lambda: [shapely.geometry.mapping(g) for g in GEOMETRIES],
    "list of shapely geometries": lambda: list(GEOMETRIES),
    "numpy array of geometries": lambda: np.asarray(GEOMETRIES, dtype=object),
    "__geo_interface__ objects": lambda: [
        GeoThing(g, k=i) for i, g in enumerate(GEOMETRIES)
    ],
    "a generator": lambda: (g for g in GEOMETRIES),
}


@pytest.mark.parametrize("form", FEATURE_FORMS)
@pytest.mark.parametrize("chunks", [16, 29])
def test_features_as_zones(tmp_path, form, chunks):
    raster = GRID.write(tmp_path / "g.tif")
    table = zd.zonal_stats(
        FEATURE_FORMS[form](), raster, STATS, chunks=chunks, split_every=2
    )
    assert_tables_close(table, _reference())


def test_features_keep_their_properties_and_null_geometries(tmp_path):
    raster = GRID.write(tmp_path / "g.tif")
    features = json.loads(FRAME.to_json())["features"]
    features.append({"type": "Feature", "geometry": None, "properties": {"name": "z"}})
    table = zd.zonal_stats(features, raster, ["count", "mean"], include_cols="name")
    assert table.columns.tolist() == ["name", "count", "mean"]
    assert table["name"].tolist() == [*FRAME["name"], "z"]
    assert table["count"].iloc[-1] == 0 and np.isnan(table["mean"].iloc[-1])
    by_name = zd.zonal_stats(features, raster, ["count"], zone_id="name")
    assert by_name.index.tolist() == table["name"].tolist()
    single = zd.zonal_stats(features[0], raster, ["count"])  # one Feature
    assert single["count"].tolist() == [table["count"].iloc[0]]


def test_features_make_a_label_raster(tmp_path):
    raster = GRID.write(tmp_path / "g.tif")
    from_features = zd.rasterize_zones(list(GEOMETRIES), raster).compute()
    from_frame = zd.rasterize_zones(FRAME, raster).compute()
    np.testing.assert_array_equal(from_features, from_frame)


def test_a_geoseries_keeps_its_crs_and_is_reprojected(tmp_path):
    raster = GRID.write(tmp_path / "g.tif")
    series = FRAME.geometry.to_crs(4326)
    table = zd.zonal_stats(series, raster, ["count"])
    expected = zd.zonal_stats(FRAME.to_crs(4326), raster, ["count"])
    np.testing.assert_array_equal(table["count"], expected["count"])


def test_a_collection_may_name_its_crs(tmp_path):
    raster = GRID.write(tmp_path / "g.tif")
    collection = json.loads(FRAME.to_crs(4326).to_json())
    collection["crs"] = {"type": "name", "properties": {"name": "EPSG:4326"}}
    table = zd.zonal_stats(collection, raster, ["count"])
    expected = zd.zonal_stats(FRAME.to_crs(4326), raster, ["count"])
    np.testing.assert_array_equal(table["count"], expected["count"])


@pytest.mark.parametrize(
    ("zones", "message"),
    [
        ([{"type": "Feature", "geometry": {"type": "Polygon"}}], "item 0: invalid"),
        ([shapely.box(0, 0, 1, 1), 42], "item 1 is a int"),
        ({"type": "Topology"}, "type 'Topology'"),
    ],
)
def test_bad_features_are_one_clear_error(tmp_path, zones, message):
    raster = GRID.write(tmp_path / "g.tif")
    with pytest.raises(zd.ZonesError, match=message):
        zd.zonal_stats(zones, raster)


@pytest.mark.parametrize("chunks", [None, 16])
def test_a_numpy_array_with_its_affine(chunks):
    table = zd.zonal_stats(
        GEOMETRIES,
        GRID.values,
        STATS,
        affine=GRID.transform,
        nodata=GRID.nodata,
        chunks=chunks,
        split_every=2,
    )
    assert_tables_close(table, _reference())
    as_tuple = zd.zonal_stats(
        GEOMETRIES,
        GRID.values,
        ["count"],
        affine=tuple(GRID.transform)[:6],
        nodata=GRID.nodata,
    )
    assert as_tuple["count"].tolist() == table["count"].tolist()


def test_a_masked_array_leaves_its_masked_pixels_out():
    masked = np.ma.masked_equal(GRID.values, GRID.nodata)
    table = zd.zonal_stats(GEOMETRIES, masked, STATS, affine=GRID.transform)
    assert_tables_close(table, _reference())


def test_a_three_band_array():
    doubled = np.where(GRID.values == GRID.nodata, GRID.nodata, GRID.values * 2)
    stack = np.stack([GRID.values, doubled])
    table = zd.zonal_stats(
        GEOMETRIES, stack, ["count"], affine=GRID.transform, nodata=GRID.nodata, band=2
    )
    assert table["count"].tolist() == _reference()["count"].tolist()


def test_the_same_numbers_as_rasterstats_for_an_array(data_dir):
    rasterstats = pytest.importorskip("rasterstats")
    import rasterio

    with rasterio.open(data_dir / "rasterstats" / "slope_nodata.tif") as src:
        values, transform, nodata = src.read(1), src.transform, src.nodata
    features = gpd.read_file(data_dir / "rasterstats" / "polygons.shp")
    theirs = rasterstats.zonal_stats(
        features, values, affine=transform, nodata=nodata, stats=["count", "mean"]
    )
    ours = zd.zonal_stats(
        features.__geo_interface__, values, ["count", "mean"], affine=transform,
        nodata=nodata,
    )  # fmt: skip
    assert ours["count"].tolist() == [row["count"] for row in theirs]
    # rasterstats averages float32 values in float32: 6e-8 apart here
    np.testing.assert_allclose(ours["mean"], [row["mean"] for row in theirs], 1e-6)


@pytest.mark.parametrize(
    ("raster", "kwargs", "message"),
    [
        (GRID.values, {}, "a NumPy array as the raster needs affine="),
        ("path", {"affine": GRID.transform}, "affine needs a NumPy array"),
        (GRID.values[0], {"affine": GRID.transform}, "expected 2 dimensions"),
    ],
)
def test_arrays_and_affine_go_together(tmp_path, raster, kwargs, message):
    if isinstance(raster, str):
        raster = GRID.write(tmp_path / "g.tif")
    with pytest.raises(zd.ZonalError, match=message):
        zd.zonal_stats(GEOMETRIES, raster, **kwargs)


def test_include_cols_in_a_table_a_dataset_and_a_lazy_result(tmp_path):
    raster = GRID.write(tmp_path / "g.tif")
    frame = FRAME.assign(code=np.arange(len(FRAME)) * 10)
    table = zd.zonal_stats(frame, raster, ["count"], include_cols=["code", "name"])
    assert table.columns.tolist() == ["code", "name", "count"]
    assert table["code"].tolist() == frame["code"].tolist()
    np.testing.assert_array_equal(table["count"], _reference()["count"])
    lazy = zd.zonal_stats(frame, raster, ["count"], include_cols="code", compute=False)
    pd.testing.assert_frame_equal(lazy.compute(), table.drop(columns="name"))
    stack = make_grid((47, 61), seed=12).to_dataarray().expand_dims(time=[1, 2])
    cube = zd.zonal_stats(frame, stack, ["count"], band=None, include_cols="code")
    assert cube["code"].dims == ("zone",)
    assert cube["code"].values.tolist() == frame["code"].tolist()
    by_id = zd.zonal_stats(
        frame, raster, ["count"], zone_id="code", include_cols="name"
    )
    assert by_id.index.name == "code" and by_id.columns.tolist() == ["name", "count"]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"include_cols": "nope"}, zd.ZonesError, "include_cols: no field 'nope'"),
        ({"include_cols": "count"}, zd.ZonesError, "already have a field 'count'"),
        ({"include_cols": ["name", "name"]}, zd.OptionError, "repeats 'name'"),
        ({"include_cols": "name", "zone_id": "name"}, zd.OptionError, "zone_id"),
        ({"include_cols": [3]}, zd.OptionError, "must be column names"),
    ],
)
def test_include_cols_refusals(tmp_path, kwargs, error, message):
    raster = GRID.write(tmp_path / "g.tif")
    frame = FRAME.assign(count=1)
    with pytest.raises(error, match=message):
        zd.zonal_stats(frame, raster, ["count"], **kwargs)


def test_include_cols_needs_polygon_zones(tmp_path):
    raster = GRID.write(tmp_path / "g.tif")
    labels = zd.rasterize_zones(FRAME, raster)
    with pytest.raises(zd.OptionError, match="include_cols needs polygon zones"):
        zd.zonal_stats(labels, raster, include_cols="name")


def test_progress_callback_on_threads_and_on_a_cluster(tmp_path, local_cluster):
    raster = GRID.write(tmp_path / "g.tif")
    expected = zd.zonal_stats(FRAME, raster, chunks=16)
    for client in (None, local_cluster):
        reports: list[tuple[float, str]] = []

        def run(reports=reports):
            def progress(fraction, message):
                reports.append((fraction, message))

            return zd.zonal_stats(FRAME, raster, chunks=16, progress=progress)

        if client is None:
            table = run()
        else:
            with client.as_current():
                table = run()
        pd.testing.assert_frame_equal(table, expected)
        fractions = [f for f, _ in reports]
        assert fractions and fractions[-1] == 1.0
        assert fractions == sorted(fractions) and 0 <= fractions[0]
        assert all(m.endswith(" s") and " of " in m for _, m in reports)


def test_progress_true_draws_one_bar_and_a_bad_value_is_refused(tmp_path, capsys):
    raster = GRID.write(tmp_path / "g.tif")
    zd.zonal_stats(FRAME, raster, chunks=16, progress=True)
    err = capsys.readouterr().err
    assert "100%" in err and "\n" not in err
    with pytest.raises(zd.OptionError, match="progress must be"):
        zd.zonal_stats(FRAME, raster, progress="yes")


def _dataset(nodata_b=-9999.0):
    a = make_grid((47, 61), seed=12)
    b = make_grid((47, 61), "int16", seed=13, nodata=nodata_b)
    return xr.Dataset({"a": a.to_dataarray(), "b": b.to_dataarray()}), (a, b)


@pytest.mark.parametrize("nodata_b", [-9999.0, 7.0, None])
def test_dataset_accessor_summarises_every_variable(nodata_b):
    dataset, grids = _dataset(nodata_b)
    stats = ["count", "mean", "p90"]
    table = dataset.zonal.stats(FRAME, stats, chunks=16, split_every=2)
    assert table.columns.tolist() == [f"{v}_{s}" for v in "ab" for s in stats]
    index = FRAME.index
    for name, grid in zip("ab", grids, strict=True):
        reference = reference_table(GEOMETRIES, grid, index, ["count", "mean", "p10"])
        got = table[[f"{name}_count", f"{name}_mean"]].set_axis(
            ["count", "mean"], axis=1
        )
        assert_tables_close(got, reference[["count", "mean"]])
        per_variable = zd.zonal_stats(FRAME, dataset[name], stats)
        np.testing.assert_allclose(table[f"{name}_p90"], per_variable["p90"], 1e-12)


def test_dataset_accessor_options():
    dataset, _ = _dataset()
    lazy = dataset.zonal.stats(FRAME, ["count"], variables=["b"], compute=False)
    assert lazy.compute().columns.tolist() == ["b_count"]
    named = dataset.zonal.stats(FRAME, ["count"], include_cols="name")
    assert named.columns.tolist() == ["name", "a_count", "b_count"]
    with pytest.raises(zd.OptionError, match="prefix"):
        dataset.zonal.stats(FRAME, prefix="x_")
    with pytest.raises(zd.RasterError, match="no variable 'c'"):
        dataset.zonal.stats(FRAME, variables=["c"])
    cube = dataset.assign(t=dataset["a"].expand_dims(time=[1, 2]))
    with pytest.raises(zd.RasterError, match="variable 't' has dimensions"):
        cube.zonal.stats(FRAME)
