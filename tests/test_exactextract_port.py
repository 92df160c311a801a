"""exactextract 0.3's own Python test cases, ported as a user coming from it
would port them, on the cases that map onto zonal_dask.

The installed exactextract ships no tests, so the cases are those of its test
suite and documentation, rebuilt: the 3 x 3 raster of 1..9 and the square
from (0.5, 0.5) to (2.5, 2.5) (corners a quarter covered, edges half, the
centre whole), and its variants. Each expected value is the literal the
hand computation gives (written beside it); each case runs exactextract
itself and zonal_dask and checks both against the literals. An operation's
arguments (``mean(coverage_weight=none)``) are zonal_dask's call options.

The deliberate differences (``docs/comparisons.md``): an empty zone's ``sum``
is NaN here (exactextract: 0); a raster without a CRS is refused (so these
rasters carry one); exactextract's ``frac`` array is the ``frac_<value>``
columns here.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin

import zonal_dask as zd
from zonal_dask.statistics.names import column_name

exactextract = pytest.importorskip("exactextract")

CRS = "EPSG:32633"
SQUARE = shapely.box(0.5, 0.5, 2.5, 2.5)
NINE = np.arange(1, 10, dtype=np.int32).reshape(3, 3)  # row 0 (north) is 1 2 3


def _raster(path, data, nodata=None):
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[1],
        height=data.shape[0],
        count=1,
        dtype=data.dtype,
        crs=CRS,
        transform=from_origin(0, data.shape[0], 1, 1),
        nodata=nodata,
    ) as dst:
        dst.write(data, 1)
    return str(path)


def _zones(*geometries):
    return gpd.GeoDataFrame(geometry=list(geometries), crs=CRS)


def _theirs(raster, zones, op, **options):
    """exactextract's value of one operation per zone (None as NaN)."""
    features = exactextract.exact_extract(raster, zones, [op], **options)
    name = op.split("(")[0] if "q=" not in op else "quantile_25"
    return [
        math.nan if f["properties"][name] is None else f["properties"][name]
        for f in features
    ]


def _check(raster, zones, expected, ops=None, theirs_options=None, **ours_options):
    """Both tools against the literal ``expected`` {statistic: per zone}."""
    ours_options.setdefault("coverage", "fraction")
    ours = zd.zonal_stats(zones, raster, list(expected), **ours_options)
    for stat, values in expected.items():
        op = (ops or {}).get(stat, stat)
        theirs = _theirs(raster, zones, op, **(theirs_options or {}))
        np.testing.assert_allclose(
            np.asarray(theirs, float), values, rtol=1e-12, err_msg=f"exactextract {op}"
        )
        np.testing.assert_allclose(
            ours[column_name(stat)].to_numpy(float, na_value=np.nan),
            values,
            rtol=1e-12,
            err_msg=f"zonal_dask {stat}",
        )


def test_basic_stats(tmp_path):
    raster = _raster(tmp_path / "nine.tif", NINE)
    _check(
        raster,
        _zones(SQUARE),
        {
            "count": [4],  # 4 x 1/4 + 4 x 1/2 + 1
            "sum": [20],  # (1+3+7+9)/4 + (2+4+6+8)/2 + 5
            "mean": [5],
            "min": [1],
            "max": [9],
            "majority": [5],  # the centre weighs most
            "minority": [1],  # the corners weigh least; the smallest of them
            "variance": [5],  # ((16+4+4+16)/4 + (9+1+1+9)/2) / 4
            "stdev": [math.sqrt(5)],
            "coefficient_of_variation": [math.sqrt(5) / 5],
            "median": [5],
            "quantile(q=0.25)": [3],  # exactextract's formula: 3.5, in int32
            "variety": [9],
            "min_center_x": [0.5],
            "min_center_y": [2.5],
            "max_center_x": [2.5],
            "max_center_y": [0.5],
        },
    )


def test_weighted_stats(tmp_path):
    raster = _raster(tmp_path / "nine.tif", NINE)
    zones = _zones(SQUARE)
    expected = {
        "weighted_sum": [120],  # sum of coverage x value x value
        "weighted_mean": [6],  # 120 / 20
        "weighted_variance": [4],  # (35 + 40 + 5) / 20
        "weighted_stdev": [2],
    }
    _check(raster, zones, expected, theirs_options={"weights": raster}, weights=raster)


def test_frac(tmp_path):
    raster = _raster(tmp_path / "nine.tif", NINE)
    zones = _zones(SQUARE)
    features = exactextract.exact_extract(raster, zones, ["unique", "frac"])
    theirs = dict(
        zip(
            features[0]["properties"]["unique"],
            features[0]["properties"]["frac"],
            strict=True,
        )
    )
    ours = zd.zonal_stats(zones, raster, ["unique", "frac"], coverage="fraction")
    for value, share in {1: 1 / 16, 2: 1 / 8, 5: 1 / 4, 9: 1 / 16}.items():
        assert theirs[value] == share
        assert ours[f"frac_{value}"].iloc[0] == share
    assert sorted(theirs) == ours["unique"].iloc[0].tolist() == list(range(1, 10))


@pytest.mark.parametrize(
    "argument, option, expected",
    [
        # every touched cell weighs 1: the 9 cells
        ("coverage_weight=none", {"coverage": "none"}, {"count": 9, "sum": 45}),
        # the corners (1/4) left out
        ("min_coverage_frac=0.5", {"min_coverage_frac": 0.5}, {"count": 3, "sum": 15}),
        # 1 x 1 cells: areas are the fractions
        (
            "coverage_weight=area_cartesian",
            {"coverage": "area_cartesian"},
            {"count": 4, "sum": 20},
        ),
    ],
)
def test_operation_arguments_as_call_options(tmp_path, argument, option, expected):
    raster = _raster(tmp_path / "nine.tif", NINE)
    expected = {**{k: [v] for k, v in expected.items()}, "mean": [5]}
    ops = {stat: f"{stat}({argument})" for stat in expected}
    _check(raster, _zones(SQUARE), expected, ops=ops, **option)


def test_nodata_and_default_value(tmp_path):
    raster = _raster(tmp_path / "nodata.tif", NINE, nodata=5)
    zones = _zones(SQUARE)
    _check(raster, zones, {"count": [3], "sum": [15], "mean": [5]})
    ops = {s: f"{s}(default_value=2)" for s in ("count", "sum", "mean")}
    _check(
        raster,
        zones,
        {"count": [4], "sum": [17], "mean": [4.25]},
        ops=ops,
        default_value=2,
    )


def test_nan_cells_and_float_classes(tmp_path):
    data = np.array([[1, 1, 2], [np.nan, 3, 3], [4, 4, 4]], np.float32)
    raster = _raster(tmp_path / "nan.tif", data)
    _check(
        raster,
        _zones(SQUARE),
        {
            "count": [3.5],  # the NaN edge (1/2) left out
            "sum": [9.75],  # (1+2+4)/4 + (1+3+4)/2 + 3 ... as the cells weigh
            "mean": [9.75 / 3.5],
            "majority": [3],  # 3 weighs 1 + 1/2
            "minority": [2],  # 2 weighs 1/4, as 1 (1/4 + 1/2) does not
            "variety": [4],
        },
    )


def test_zones_partly_and_wholly_outside(tmp_path):
    raster = _raster(tmp_path / "nine.tif", NINE)
    zones = _zones(shapely.box(2, 2, 4, 4), shapely.box(10, 10, 11, 11))
    _check(
        raster,
        zones,
        {
            "count": [1, 0],  # the cell of 3, whole; nothing
            "mean": [3, math.nan],
            "min": [3, math.nan],
        },
    )
    # the deliberate difference: an empty zone's sum is NaN, not 0
    assert _theirs(raster, zones, "sum") == [3, 0]
    ours = zd.zonal_stats(zones, raster, ["sum"], coverage="fraction")["sum"]
    assert ours.iloc[0] == 3 and math.isnan(ours.iloc[1])


def test_a_raster_without_crs_is_refused_where_exactextract_reads_it(tmp_path):
    path = tmp_path / "nocrs.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=3,
        height=3,
        count=1,
        dtype="int32",
        transform=from_origin(0, 3, 1, 1),
    ) as dst:
        dst.write(NINE, 1)
    zones = gpd.GeoDataFrame(geometry=[SQUARE])
    # (exactextract 0.3 fails on a GeoDataFrame without a CRS: GeoJSON it takes)
    features = zones.__geo_interface__["features"]
    assert _theirs(str(path), features, "sum") == [20]
    with pytest.raises(zd.CRSError, match="no CRS"):
        zd.zonal_stats(zones, path, ["sum"], coverage="fraction")
    assert zd.zonal_stats(
        zones, path, ["sum"], coverage="fraction", assume_same_crs=True
    )["sum"].tolist() == [20]
