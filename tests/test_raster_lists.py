"""Lists of rasters and of weights paired band to band, as exactextract's
Python API takes them (issue 22): the same column names, in the same order,
and the same numbers as ``exact_extract`` run here, for several chunkings."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import rasterio
import rioxarray
import xarray as xr

import zonal_dask as zd
from zonal_dask.errors import OptionError

from .synth import make_grid, voronoi_zones, zones_frame

exactextract = pytest.importorskip("exactextract")

A = make_grid((37, 45), "float32", seed=31, nodata=-9999.0)
B = make_grid((37, 45), "float32", seed=32, nodata=-9999.0, loc=20, scale=5)
WA = make_grid((37, 45), "float32", seed=33, nodata=None, loc=5, scale=1)
WB = make_grid((37, 45), "float32", seed=34, nodata=None, loc=9, scale=2)
FRAME = zones_frame(voronoi_zones(A, 7, seed=35, margin=0.0))
CHUNKS = [None, (8, 11), (37, 5)]


def _files(tmp_path):
    paths = {}
    for name, grid in (("a", A), ("b", B), ("wa", WA), ("wb", WB)):
        paths[name] = grid.write(tmp_path / f"{name}.tif")
    for name, grids in (("ab", (A, B)), ("wab", (WA, WB))):
        with rasterio.open(paths[name[:1] if name == "ab" else "wa"]) as src:
            profile = src.profile
        profile.update(count=2)
        paths[name] = tmp_path / f"{name}.tif"
        with rasterio.open(paths[name], "w", **profile) as dst:
            for b, grid in enumerate(grids):
                dst.write(grid.values, b + 1)
    return {k: str(v) for k, v in paths.items()}


def _theirs(rasters, ops, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        table = exactextract.exact_extract(
            rasters, FRAME, ops, output="pandas", **options
        )
    table.index = FRAME.index
    return table


def _same(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    assert list(ours.columns) == list(theirs.columns)
    np.testing.assert_allclose(
        ours.to_numpy(np.float64), theirs.to_numpy(np.float64), rtol=1e-9, atol=1e-9
    )


@pytest.mark.parametrize("chunks", CHUNKS)
def test_a_list_of_rasters_gives_columns_per_raster(tmp_path, chunks):
    f = _files(tmp_path)
    ops = ["mean", "sum", "max", "quantile(q=0.25)"]
    ours = zd.zonal_stats(
        FRAME, [f["a"], f["b"]], ops, coverage="fraction", chunks=chunks
    )
    _same(ours, _theirs([f["a"], f["b"]], ops))
    assert list(ours.columns)[:2] == ["a_mean", "b_mean"]


@pytest.mark.parametrize("chunks", CHUNKS)
@pytest.mark.parametrize("weights", ["wa", ["wa"], ["wa", "wb"]])
def test_weights_pair_with_rasters_band_to_band(tmp_path, chunks, weights):
    f = _files(tmp_path)
    given = f[weights] if isinstance(weights, str) else [f[w] for w in weights]
    ops = ["count", "weighted_mean", "mean", "weighted_sum"]
    ours = zd.zonal_stats(
        FRAME, [f["a"], f["b"]], ops, coverage="fraction", weights=given, chunks=chunks
    )
    _same(ours, _theirs([f["a"], f["b"]], ops, weights=given))


@pytest.mark.parametrize("chunks", CHUNKS)
def test_one_raster_with_several_weights(tmp_path, chunks):
    f = _files(tmp_path)
    ops = ["mean", "weighted_mean"]
    given = [f["wa"], f["wb"]]
    ours = zd.zonal_stats(
        FRAME, f["a"], ops, coverage="fraction", weights=given, chunks=chunks
    )
    theirs = _theirs(f["a"], ops, weights=given)
    _same(ours, theirs)
    assert list(ours.columns) == ["_mean", "_wa_weighted_mean", "_wb_weighted_mean"]


@pytest.mark.parametrize("chunks", CHUNKS)
def test_every_band_with_band_none_paired_with_a_weights_stack(tmp_path, chunks):
    f = _files(tmp_path)
    ops = ["mean", "weighted_mean"]
    ours = zd.zonal_stats(
        FRAME,
        [f["ab"]],
        ops,
        coverage="fraction",
        weights=f["wab"],
        band=None,
        chunks=chunks,
    )
    theirs = _theirs([f["ab"]], ops, weights=f["wab"])
    _same(ours, theirs)
    assert "ab_band_2_weight_band_2_weighted_mean" in ours.columns


def test_band_none_over_single_bands_and_a_time_stack(tmp_path):
    f = _files(tmp_path)
    ops = ["mean", "max"]
    ours = zd.zonal_stats(FRAME, [f["a"], f["ab"]], ops, band=None)
    assert list(ours.columns) == [
        "a_mean", "ab_band_1_mean", "ab_band_2_mean",
        "a_max", "ab_band_1_max", "ab_band_2_max",
    ]  # fmt: skip
    theirs = _theirs([f["a"], f["ab"]], ["count"])
    assert list(theirs.columns) == ["a_count", "ab_band_1_count", "ab_band_2_count"]
    for column, path, band in (("ab_band_2", f["ab"], 2), ("a", f["a"], 1)):
        alone = zd.zonal_stats(FRAME, path, ops, band=band)
        pd.testing.assert_frame_equal(
            ours[[f"{column}_{o}" for o in ops]], alone.add_prefix(f"{column}_")
        )
    stack = xr.concat(
        [rioxarray.open_rasterio(f[n], masked=True).isel(band=0) for n in "ab"],
        dim="time",
    ).rename("lst")
    by_time = zd.zonal_stats(FRAME, [stack], ["mean"], band=None)
    assert list(by_time.columns) == ["lst_band_1_mean", "lst_band_2_mean"]
    np.testing.assert_allclose(
        by_time["lst_band_2_mean"], zd.zonal_stats(FRAME, f["b"], ["mean"])["mean"]
    )


def test_named_dataarrays_and_unweighted_pixels(tmp_path):
    f = _files(tmp_path)
    arrays = [
        rioxarray.open_rasterio(f[n], masked=True).rename(n).isel(band=0)
        for n in ("a", "b")
    ]
    ours = zd.zonal_stats(FRAME, arrays, ["count", "min"])
    for name in ("a", "b"):
        alone = zd.zonal_stats(FRAME, f[name], ["count", "min"])
        pd.testing.assert_frame_equal(
            ours[[f"{name}_count", f"{name}_min"]],
            alone.add_prefix(f"{name}_"),
        )


def test_class_columns_stay_with_their_statistic_and_features_carry(tmp_path):
    f = _files(tmp_path)
    classes = make_grid((37, 45), "uint8", seed=36, nodata=0, loc=3, scale=1)
    path = classes.write(tmp_path / "c.tif")
    ours = zd.zonal_stats(
        FRAME, [f["a"], str(path)], ["frac", "count"], include_cols=["name"]
    )
    columns = list(ours.columns)
    assert columns[0] == "name"
    assert columns[-2:] == ["a_count", "c_count"]
    fracs = [c for c in columns if "frac" in c]
    assert fracs == columns[1:-2] and any(c.startswith("c_frac_") for c in fracs)
    alone = zd.zonal_stats(FRAME, str(path), ["frac"]).add_prefix("c_")
    pd.testing.assert_frame_equal(ours[list(alone.columns)], alone)
    one = zd.zonal_stats(FRAME, [f["a"], f["b"]], "mean", include_cols="name")
    assert list(one.columns) == ["name", "a_mean", "b_mean"]
    placed = zd.zonal_stats(FRAME, [f["a"], f["b"]], ["mean"], geometry=True)
    assert list(placed.columns) == ["name", "geometry", "a_mean", "b_mean"]


@pytest.mark.parametrize(
    ("rasters", "weights", "message"),
    [
        (["a", "b", "wab"], ["wa", "wb"], "3 raster bands and 2 weights bands"),
        (["a", "a"], None, "several rasters named 'a'"),
        ([], None, "an empty list"),
    ],
)
def test_lists_that_do_not_pair_are_refused_in_one_line(
    tmp_path, rasters, weights, message
):
    f = _files(tmp_path)
    given = None if weights is None else [f[w] for w in weights]
    with pytest.raises(OptionError, match=message) as raised:
        zd.zonal_stats(FRAME, [f[r] for r in rasters], ["mean"], weights=given)
    assert "\n" not in str(raised.value)


def test_options_of_one_raster_are_refused_with_a_list(tmp_path):
    f = _files(tmp_path)
    with pytest.raises(OptionError, match="compute=False takes one raster"):
        zd.zonal_stats(FRAME, [f["a"], f["b"]], compute=False)
    with pytest.raises(zd.StatisticError, match="'weighted_mean' needs a weights"):
        zd.zonal_stats(FRAME, [f["a"], f["b"]], ["mean", "weighted_mean"])
    with pytest.raises(zd.errors.RasterError, match=r"missing\.tif"):
        zd.zonal_stats(FRAME, [f["a"], str(tmp_path / "missing.tif")], ["mean"])
    with pytest.raises(OptionError, match="a ndarray in a list needs a name"):
        zd.zonal_stats(FRAME, [A.values, B.values], affine=A.transform)


def _weights_weighted_mean(values, coverage, weights):
    return float(np.sum(values * coverage * weights) / np.sum(coverage * weights))


@pytest.mark.parametrize("chunks", CHUNKS)
def test_functions_of_weights_over_lists(tmp_path, chunks):
    f = _files(tmp_path)
    # rasters without nodata: exactextract gives functions nodata cells too
    ops = [_weights_weighted_mean, "mean"]
    rasters, weights = [f["wa"], f["wb"]], [f["wb"], f["wa"]]
    ours = zd.zonal_stats(
        FRAME, rasters, ops, coverage="fraction", weights=weights, chunks=chunks
    )
    _same(ours, _theirs(rasters, ops, weights=weights))
