"""Statistics back on the map: GeoDataFrames, geo formats, prefix, accessor, pipe."""

from __future__ import annotations

import dask
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from dask.delayed import Delayed

import zonal_dask as zd
from zonal_dask.cli.main import main
from zonal_dask.io.writers import write_features

from .synth import make_grid, voronoi_zones, zones_frame

GRID = make_grid((40, 50), seed=7)
STATS = ["count", "mean", "max"]


@pytest.fixture(scope="module")
def raster(tmp_path_factory):
    return GRID.write(tmp_path_factory.mktemp("geo") / "grid.tif")


@pytest.fixture(scope="module")
def zones():
    """Zones in another CRS than the raster's, with attributes, a named index."""
    frame = zones_frame(voronoi_zones(GRID, 9, seed=7)).to_crs("EPSG:4326")
    frame["area_km2"] = np.arange(len(frame), dtype=float) / 3
    frame["code"] = [f"c{i:02d}" for i in range(len(frame))][::-1]
    frame.index = pd.Index(np.arange(len(frame)) * 10 + 5, name="fid")
    return frame


def test_geometry_returns_the_input_features_with_the_statistics(zones, raster):
    out = zd.zonal_stats(zones, raster, STATS, geometry=True)
    assert isinstance(out, gpd.GeoDataFrame)
    assert out.crs == zones.crs  # the zones' own CRS, not the raster's
    assert list(out.columns) == [*zones.columns, *STATS]
    assert out.index.equals(zones.index)
    assert out.geometry.geom_equals_exact(zones.geometry, tolerance=0).all()
    pd.testing.assert_frame_equal(
        pd.DataFrame(out.drop(columns="geometry")[zones.columns.drop("geometry")]),
        pd.DataFrame(zones.drop(columns="geometry")),
    )
    table = zd.zonal_stats(zones, raster, STATS)
    pd.testing.assert_frame_equal(pd.DataFrame(out[STATS]), table, check_exact=True)
    assert zones.columns.tolist() == ["name", "geometry", "area_km2", "code"]


def test_geometry_with_zone_id_keeps_the_rows_in_input_order(zones, raster):
    out = zd.zonal_stats(zones, raster, STATS, geometry=True, zone_id="code")
    table = zd.zonal_stats(zones, raster, STATS, zone_id="code")
    assert out["code"].tolist() == table.index.tolist()
    np.testing.assert_array_equal(out[STATS].to_numpy(), table.to_numpy())


def test_prefix_names_the_columns_with_or_without_geometry(zones, raster):
    table = zd.zonal_stats(zones, raster, STATS)
    prefixed = zd.zonal_stats(zones, raster, STATS, prefix="slope_")
    assert list(prefixed.columns) == ["slope_count", "slope_mean", "slope_max"]
    np.testing.assert_array_equal(prefixed.to_numpy(), table.to_numpy())
    out = zd.zonal_stats(zones, raster, STATS, prefix="b1_", geometry=True)
    assert list(out.columns)[-3:] == ["b1_count", "b1_mean", "b1_max"]


def test_a_statistic_never_replaces_a_field_of_the_zones(zones, raster):
    clash = zones.assign(mean=1.0)
    with pytest.raises(zd.ZonesError, match=r"already have a field 'mean'.*prefix"):
        zd.zonal_stats(clash, raster, STATS, geometry=True)
    out = zd.zonal_stats(clash, raster, STATS, geometry=True, prefix="r_")
    assert (out["mean"] == 1.0).all() and "r_mean" in out


def _refuse(*args, **kwargs):
    raise AssertionError("something was computed while the graph was being built")


def test_lazy_geometry_is_a_delayed_with_the_same_result(zones, raster):
    with dask.config.set(scheduler=_refuse):
        lazy = zd.zonal_stats(zones, raster, STATS, geometry=True, compute=False)
        lazy_prefixed = zd.zonal_stats(zones, raster, STATS, prefix="p_", compute=False)
        again = zd.zonal_stats(zones, raster, STATS, geometry=True, compute=False)
    assert isinstance(lazy, Delayed) and isinstance(lazy_prefixed, Delayed)
    assert lazy.key == again.key  # deterministic names, no uuid
    with dask.config.set(scheduler="sync"):
        out, prefixed = dask.compute(lazy, lazy_prefixed)
    expected = zd.zonal_stats(zones, raster, STATS, geometry=True)
    pd.testing.assert_frame_equal(out, expected)
    assert list(prefixed.columns) == ["p_count", "p_mean", "p_max"]


def test_pipe_and_accessor_forward_to_zonal_stats(zones, raster):
    expected = zd.zonal_stats(zones, raster, STATS)
    piped = zones.pipe(zd.zonal_stats, raster, STATS)
    pd.testing.assert_frame_equal(piped, expected)
    da = GRID.to_dataarray()
    from_xarray = da.zonal.stats(zones, stats=STATS)
    pd.testing.assert_frame_equal(from_xarray, zd.zonal_stats(zones, da, STATS))
    pd.testing.assert_frame_equal(from_xarray, expected)
    geo = da.zonal.stats(zones, STATS, geometry=True, prefix="x_", nodata=-9999.0)
    assert isinstance(geo, gpd.GeoDataFrame) and "x_mean" in geo
    lazy = da.zonal.stats(zones, ["mean"], compute=False)
    assert isinstance(lazy, Delayed)
    assert list(vars(da.zonal)) == ["_obj"]  # no state kept between calls


def _reopen(path):
    """The features as written, indexed by the zones' fid."""
    if path.suffix == ".parquet":
        return gpd.read_parquet(path)
    if path.suffix == ".gpkg":  # the fid is the GeoPackage's feature id
        return gpd.read_file(path, engine="pyogrio", fid_as_index=True)
    return gpd.read_file(path, engine="pyogrio").set_index("fid")


@pytest.mark.parametrize("suffix", [".gpkg", ".geojson", ".fgb", ".parquet"])
def test_write_features_round_trips(zones, raster, tmp_path, suffix):
    out = zd.zonal_stats(zones, raster, STATS, geometry=True, prefix="s_")
    path = write_features(out, tmp_path / f"zones{suffix}")
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporaries
    back = _reopen(path)
    assert back.crs == zones.crs
    assert back.index.tolist() == zones.index.tolist()  # input order and fid kept
    assert back["code"].tolist() == zones["code"].tolist()
    for column in ["area_km2", "s_count", "s_mean", "s_max"]:
        np.testing.assert_allclose(back[column], out[column], rtol=1e-12)
    assert back.geometry.geom_equals_exact(out.geometry, 1e-9, align=False).all()
    with pytest.raises(zd.OutputError, match="exists"):
        write_features(out, path)


def test_geojson_refuses_a_crs_it_cannot_name(data_dir, tmp_path):
    frame = gpd.read_file(data_dir / "rasterstats" / "polygons.shp")
    with pytest.raises(zd.OutputError, match="GeoJSON can only name a CRS"):
        write_features(frame, tmp_path / "zones.geojson")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("out.gpkg", []),
        ("out.geojson", []),
        ("out.fgb", []),
        ("out.parquet", ["--geometry"]),
    ],
)
def test_cli_geo_outputs(zones, raster, tmp_path, name, extra):
    source = tmp_path / "zones.gpkg"
    zones.reset_index(drop=True).to_file(source, engine="pyogrio")
    out = tmp_path / name
    args = [str(source), str(raster), str(out), "--stats", "count,mean", *extra]
    assert main([*args, "--prefix", "g_", "-q"]) == 0
    back = _reopen(out)
    expected = zd.zonal_stats(source, raster, ["count", "mean"], zone_id="code")
    assert back.crs == zones.crs
    assert back["code"].tolist() == expected.index.tolist()
    assert back["g_count"].tolist() == expected["count"].tolist()
    np.testing.assert_allclose(back["g_mean"], expected["mean"], rtol=1e-12)
    assert {"name", "area_km2", "code"} <= set(back.columns)


def test_cli_prefix_on_tables_and_plain_parquet(data_dir, tmp_path):
    zones, raster = (
        data_dir / "rasterstats/polygons.shp",
        data_dir / "rasterstats/slope.tif",
    )
    txt, parquet = tmp_path / "stats.txt", tmp_path / "stats.parquet"
    assert main([str(zones), str(raster), str(txt), "--prefix", "slope_", "-q"]) == 0
    header = txt.read_text().splitlines()[0].split("\t")
    classic = [f"slope_{c}" for c in ("min", "mean", "max", "std", "sum")]
    assert header == [*classic, "fid", "slope_count"]
    assert main([str(zones), str(raster), str(parquet), "-q"]) == 0
    plain = pd.read_parquet(parquet)
    assert "geometry" not in plain and list(plain.columns) == list(zd.DEFAULT_STATS)


def test_cli_refuses_geometry_for_a_plain_table(data_dir, tmp_path, capsys):
    zones, raster = (
        data_dir / "rasterstats/polygons.shp",
        data_dir / "rasterstats/slope.tif",
    )
    out = tmp_path / "stats.csv"
    assert main([str(zones), str(raster), str(out), "--geometry"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("zonal-dask: error: ") and "--geometry needs" in err
    assert not out.exists()


def test_prefix_names_the_variables_of_a_band_dataset_and_geometry_needs_one_band(
    zones, raster
):
    dataset = zd.zonal_stats(zones, raster, ["count", "mean"], band=None, prefix="b_")
    assert list(dataset.data_vars) == ["b_count", "b_mean"]
    with pytest.raises(zd.ZonesError, match="needs polygon zones and one band"):
        zd.zonal_stats(zones, raster, ["mean"], band=None, geometry=True)
