"""Zones in another CRS than the raster's: clipped, densified, across ±180.

The reference (``reference.reprojected_stats``) never reprojects a polygon:
it takes each pixel centre to the zones' CRS and asks whether the polygon
holds it there, one polygon at a time over the whole raster. So curved edges,
the antimeridian and the poles are exact in it by construction.
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Transformer

import zonal_dask as zd
from zonal_dask.cli.main import main
from zonal_dask.zones.reproject import TOLERANCE

from .reference import (
    assert_tables_close,
    centres_inside,
    distance_to_edge,
    masks_stats,
    reprojected_stats,
)
from .synth import Grid, zones_frame

SETTINGS = settings(
    max_examples=15,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
RNG = np.random.default_rng(13)
# 200 x 160 pixels of 1 km in UTM 33N: a degree-sized box has visibly curved
# sides there (straight chords miss by up to about half a pixel)
UTM = Grid(
    RNG.normal(50, 10, (160, 200)).astype("float32"),
    Affine(1000.0, 0, 400_000.0, 0, -1000.0, 5_200_000.0),
    crs="EPSG:32633",
)
UTM_LONLAT = (12.2, 45.5, 15.0, 47.0)  # about the raster's extent


def _table(zones, grid: Grid, **kwargs):
    return zd.zonal_stats(zones, grid.to_dataarray(), **kwargs)


def assert_reprojected(table, zones: gpd.GeoDataFrame, grid: Grid) -> None:
    """Each zone has exactly the pixels whose centres it holds in its own CRS
    (``centres_inside``), except centres within ``TOLERANCE`` pixel of its
    true edge, where the densified edge may pass on either side; and the table
    is the statistics of each zone's pixels, as rasterized alone."""
    masks = []
    for i in range(len(zones)):
        alone = zd.rasterize_zones(zones.iloc[[i]], grid.to_dataarray())
        mine = alone.to_numpy() == 0
        exact = centres_inside(zones.geometry.iloc[i], zones.crs, grid)
        differ = np.argwhere(mine != exact)
        if differ.size:
            near = distance_to_edge(zones.geometry.iloc[i], zones.crs, grid, differ)
            assert (near <= TOLERANCE).all(), (i, differ, near)
        masks.append(mine)
    assert_tables_close(table, masks_stats(masks, grid, table.index))


def _geographic(x0: float, res: float = 0.5) -> Grid:
    """A lon/lat raster from ``x0`` (-180 or 0) over 360 degrees, 30S..30N."""
    rows, cols = int(60 / res), int(360 / res)
    values = RNG.random((rows, cols)).astype("float32")
    return Grid(values, Affine(res, 0, x0, 0, -res, 30.0), crs="EPSG:4326")


@st.composite
def lonlat_quads(draw, bounds):
    """Quadrilaterals with straight sides in longitude and latitude."""
    west, south, east, north = bounds
    xs = sorted(draw(st.floats(west - 1, east + 1)) for _ in range(2))
    ys = sorted(draw(st.floats(south - 1, north + 1)) for _ in range(2))
    if xs[1] - xs[0] < 0.05 or ys[1] - ys[0] < 0.05:
        xs[1], ys[1] = xs[0] + 0.5, ys[0] + 0.4
    skew = draw(st.floats(-0.9, 0.9)) * (ys[1] - ys[0])  # never a bow-tie
    return shapely.Polygon(
        [(xs[0], ys[0]), (xs[1], ys[0] + skew), (xs[1], ys[1]), (xs[0], ys[1])]
    )


@SETTINGS
@given(
    st.lists(lonlat_quads(UTM_LONLAT), min_size=1, max_size=4),
    st.sampled_from([None, 37, (64, 50)]),
    st.sampled_from([2, 8]),
)
def test_lonlat_zones_keep_their_curved_sides_over_a_utm_raster(
    quads, chunks, split_every
):
    far = shapely.box(-120, -40, -119, -39)  # the other side of the world
    zones = zones_frame([*quads, far], crs="EPSG:4326")
    actual = _table(zones, UTM, chunks=chunks, split_every=split_every)
    assert_reprojected(actual, zones, UTM)
    assert actual["count"].iloc[-1] == 0


def test_countries_of_the_world_over_a_utm_scene(data_dir):
    """rasterio's Landsat scene (UTM 18N) and every country of Natural Earth:
    the Bahamas get exactly the pixels whose centres they hold, every other
    country nothing, and no warning blames the (valid) input."""
    raster = data_dir / "rasterio" / "RGB.byte.tif"
    world = gpd.read_file(data_dir / "rasterio" / "naturalearth_lowres")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        table = zd.zonal_stats(
            world, raster, ["count", "nodata_count", "mean", "outside_fraction"]
        )
    with rasterio.open(raster) as src:
        grid = Grid(src.read(1), src.transform, src.nodata, src.crs)
    near = world.cx[-79.5:-76.0, 23.0:26.0].index
    assert list(near) == [19]  # the Bahamas
    inside = centres_inside(world.geometry[19], world.crs, grid)
    assert table.loc[19, "count"] == (inside & (grid.values != 0)).sum() > 80_000
    assert table.loc[19, "nodata_count"] == (inside & (grid.values == 0)).sum()
    assert table.loc[19, "mean"] == pytest.approx(
        grid.values[inside & (grid.values != 0)].mean(), rel=1e-12
    )
    others = table.drop(index=near)
    assert (others["count"] == 0).all() and (others["nodata_count"] == 0).all()
    assert (others["outside_fraction"] == 1).all()
    # the share of the Bahamas beyond the scene, measured in lon/lat
    edge = shapely.segmentize(shapely.box(*grid.bounds()), 100.0)
    to_lonlat = Transformer.from_crs(grid.crs, world.crs, always_xy=True)
    footprint = shapely.transform(
        edge, lambda xy: np.column_stack(to_lonlat.transform(*xy.T))
    )
    bahamas = world.geometry[19]
    share = 1 - bahamas.intersection(footprint).area / bahamas.area
    assert table.loc[19, "outside_fraction"] == pytest.approx(share, rel=1e-6)


@st.composite
def pacific_boxes(draw):
    """Boxes in a Pacific-centred Mercator (EPSG:3832) near the antimeridian."""
    to_3832 = Transformer.from_crs("EPSG:4326", "EPSG:3832", always_xy=True)
    lon = draw(st.floats(150, 210))
    lat = draw(st.floats(-28, 20))
    width, height = draw(st.floats(0.3, 25)), draw(st.floats(0.3, 8))
    x0, y0 = to_3832.transform(lon, lat)
    x1, y1 = to_3832.transform(lon + width, lat + height)
    return shapely.box(x0, y0, x1, y1)


@SETTINGS
@given(
    st.lists(pacific_boxes(), min_size=1, max_size=3),
    st.sampled_from([-180.0, 0.0]),
    st.sampled_from([None, (40, 97)]),
)
def test_zones_across_the_antimeridian_onto_a_lonlat_raster(boxes, x0, chunks):
    grid = _geographic(x0)
    zones = zones_frame(boxes, crs="EPSG:3832")
    actual = _table(zones, grid, chunks=chunks, split_every=2)
    assert_reprojected(actual, zones, grid)


@pytest.mark.parametrize("x0", [-180.0, 0.0])
def test_lonlat_zones_in_either_convention_on_either_raster(x0):
    """170..190 as one polygon, as two parts cut at 180, and -10..10: the same
    pixels on a -180..180 and on a 0..360 raster."""
    grid = _geographic(x0, 0.25)
    zones = zones_frame(
        [
            shapely.box(170, -5, 190, 5),
            shapely.MultiPolygon(
                [shapely.box(170, -5, 180, 5), shapely.box(-180, -5, -170, 5)]
            ),
            shapely.box(-10, -5, 10, 5),
            shapely.box(350, -5, 370, 5),
        ],
        crs="EPSG:4326",
    )
    actual = _table(zones, grid)
    assert_tables_close(
        actual, reprojected_stats(zones.geometry, zones.crs, grid, actual.index)
    )
    assert actual["count"].tolist() == [3200] * 4


def test_zones_around_a_pole():
    """A polar cap, an off-pole box with a hole and a ring around the pole in
    polar stereographic over a lon/lat raster; and the other way round, zones
    in lon/lat (a band around the pole, a box over ±180) over a polar raster."""
    lonlat = Grid(
        RNG.random((120, 720)).astype("float32"),
        Affine(0.5, 0, -180, 0, -0.25, 90),
        crs="EPSG:4326",
    )
    polar_zones = zones_frame(
        [
            shapely.Point(0, 0).buffer(1_500_000, 64),
            shapely.box(500_000, -2_000_000, 2_500_000, 1_000_000).difference(
                shapely.Point(1_500_000, -500_000).buffer(300_000)
            ),
            shapely.Point(0, 0)
            .buffer(2_000_000, 64)
            .difference(shapely.Point(0, 0).buffer(1_000_000, 64)),
        ],
        crs="EPSG:3413",
    )
    assert_reprojected(_table(polar_zones, lonlat), polar_zones, lonlat)
    polar = Grid(
        RNG.random((240, 240)).astype("float32"),
        Affine(25_000, 0, -3_000_000, 0, -25_000, 3_000_000),
        crs="EPSG:3413",
    )
    lonlat_zones = zones_frame(
        [
            shapely.box(-180, 70, 180, 90),
            shapely.box(170, 65, 200, 80),
            shapely.box(-30, 60, 30, 89),
            shapely.box(-180, -90, 180, 0),  # the other hemisphere: clipped away
        ],
        crs="EPSG:4326",
    )
    actual = _table(lonlat_zones, polar, chunks=(64, 100))
    assert_reprojected(actual, lonlat_zones, polar)
    assert actual["count"].iloc[-1] == 0


def test_zones_beyond_a_projection_are_refused_naming_the_zone():
    """Where the raster's surroundings cannot be taken to the zones' CRS
    (an orthographic disc: its corners see no Earth), zones are reprojected
    whole, and one on the far side of the globe is refused, not dropped."""
    ortho = "+proj=ortho +lat_0=0 +lon_0=0 +datum=WGS84"
    radius = 6_378_137.0
    grid = Grid(
        RNG.random((64, 64)).astype("float32"),
        Affine(2 * radius / 64, 0, -radius, 0, -2 * radius / 64, radius),
        crs=ortho,
    )
    zones = zones_frame([shapely.box(-10, -10, 10, 10), shapely.box(170, 0, 175, 5)])
    zones = zones.set_crs("EPSG:4326", allow_override=True)
    with pytest.raises(zd.CRSError, match="zone 1 cannot be reprojected"):
        _table(zones, grid)


# -- a CRS declared wrongly ---------------------------------------------------


def test_a_wrong_prj_is_refused_and_can_be_overridden(data_dir, tmp_path):
    """rasterstats' multipolygons.shp says WGS 84 but holds the raster's
    Albers metres: refused with the way out, then read as rasterstats reads
    it (assume_same_crs) or with its true CRS (zones_crs)."""
    zones = data_dir / "rasterstats" / "multipolygons.shp"
    raster = data_dir / "rasterstats" / "slope.tif"
    with pytest.raises(zd.CRSError, match="outside the longitudes and latitudes"):
        zd.zonal_stats(zones, raster)
    assumed = zd.zonal_stats(zones, raster, assume_same_crs=True)
    with rasterio.open(raster) as src:
        declared = zd.zonal_stats(zones, raster, zones_crs=src.crs)
        grid = Grid(src.read(1), src.transform, src.nodata, src.crs)
    assert_tables_close(assumed, declared, rtol=0)
    plan = zd.ZonePlan(zones, like=raster, assume_same_crs=True)
    assert_tables_close(zd.zonal_stats(plan, raster), assumed, rtol=0)
    frame = gpd.read_file(zones).set_crs(grid.crs, allow_override=True)
    assert assumed["count"].tolist() == [125]
    assert_tables_close(
        assumed, reprojected_stats(frame.geometry, grid.crs, grid, assumed.index)
    )
    out = tmp_path / "out.csv"
    assert main([str(zones), str(raster), str(out), "--zones-crs", "EPSG:9674"]) == 0
    assert out.read_text().splitlines()[1].startswith("0,")


def test_assume_same_crs_ignores_two_declared_crss():
    """Coordinates taken as the raster's even when both sides declare a CRS:
    UTM metres declared as Web Mercator give the UTM answer."""
    zones = zones_frame([shapely.box(420_000, 5_090_000, 470_000, 5_150_000)])
    zones = zones.set_crs(UTM.crs, allow_override=True)
    expected = _table(zones, UTM)
    mislabelled = zones.set_crs("EPSG:3857", allow_override=True)
    assert_tables_close(_table(mislabelled, UTM, assume_same_crs=True), expected)
    assert_tables_close(_table(mislabelled, UTM, zones_crs=UTM.crs), expected)
    assert expected["count"].iloc[0] == 50 * 60


def test_a_raster_whose_crs_is_wrong_is_refused(tmp_path):
    metres = Grid(UTM.values, UTM.transform, crs="EPSG:4326")
    zones = zones_frame([shapely.box(14, 46, 14.2, 46.1)], crs="EPSG:4326")
    with pytest.raises(zd.CRSError, match="beyond the latitudes of its CRS"):
        zd.zonal_stats(zones, metres.write(tmp_path / "metres.tif"))


def _to_utm(xy: np.ndarray) -> np.ndarray:
    forward = Transformer.from_crs("EPSG:4326", UTM.crs, always_xy=True)
    return np.column_stack(forward.transform(xy[:, 0], xy[:, 1]))


@pytest.mark.parametrize("chunks", [None, 37])
def test_lonlat_points_land_in_the_pixel_holding_them_over_a_utm_raster(chunks):
    """Points are taken to the raster's CRS exactly: each gets the pixel its
    true place falls in (pyproj, then the affine, one point at a time); a
    point far beyond the raster is clipped away (count 0, wholly outside)."""
    xy = np.column_stack([RNG.uniform(13.6, 16.4, 12), RNG.uniform(45.4, 47.0, 12)])
    points = [shapely.Point(p) for p in xy]
    zones = zones_frame([*points, shapely.Point(-120.0, -40.0)], crs="EPSG:4326")
    table = _table(
        zones,
        UTM,
        chunks=chunks,
        split_every=2,
        stats=["count", "mean", "outside_fraction"],
    )
    col, row = ~UTM.transform * _to_utm(xy).T
    for i, (c, r) in enumerate(zip(np.floor(col), np.floor(row), strict=True)):
        inside = 0 <= r < UTM.shape[0] and 0 <= c < UTM.shape[1]
        assert table["count"].iloc[i] == int(inside)
        if inside:
            assert table["mean"].iloc[i] == pytest.approx(
                float(UTM.values[int(r), int(c)])
            )
    assert table["count"].iloc[-1] == 0
    assert table["outside_fraction"].iloc[-1] == 1.0


@pytest.mark.parametrize("chunks", [None, (64, 50)])
def test_lonlat_lines_touch_the_pixels_of_their_curve_over_a_utm_raster(chunks):
    """Lines in lon/lat are curves in UTM. With ``all_touched``, a line's
    pixels are those GDAL burns for the curve drawn with vertices every 1e-4
    degree (about 0.01 pixel) taken to UTM one by one; a pixel may differ only
    where that curve passes within 0.02 pixel of the pixel's boundary (GDAL
    takes a segment within 0.01 pixel of an edge as running along it, and the
    two curves are densified differently). A line reaching the other side of
    the world is clipped: its share outside is by length (in degrees)."""
    from rasterio import features

    lines = [
        shapely.LineString([(12.25, 45.55), (14.9, 46.95)]),
        shapely.LineString([(12.4, 46.8), (13.1, 45.7), (14.8, 46.2)]),
        shapely.LineString([(14.5, 46.3), (-100.0, 30.0)]),
    ]
    zones = zones_frame(lines, crs="EPSG:4326")
    table = _table(zones, UTM, chunks=chunks, split_every=2, all_touched=True)
    pixel = ~UTM.transform
    for i, line in enumerate(lines[:2]):
        fine = _to_utm(shapely.get_coordinates(shapely.segmentize(line, 1e-4)))
        curve = shapely.LineString(fine)
        exact = features.rasterize(
            [(curve, 1)], UTM.shape, transform=UTM.transform, all_touched=True
        ).astype(bool)
        alone = zd.rasterize_zones(
            zones.iloc[[i]], UTM.to_dataarray(), all_touched=True
        )
        mine = alone.to_numpy() == 0
        curve_px = shapely.transform(curve, lambda xy: np.column_stack(pixel * xy.T))
        for r, c in np.argwhere(mine != exact):
            square = shapely.box(c, r, c + 1, r + 1)
            gap = shapely.distance(curve_px, square.exterior)
            assert gap <= 0.02, (i, r, c, gap)
        assert table["count"].iloc[i] == mine.sum()
        assert table["mean"].iloc[i] == pytest.approx(
            UTM.values[mine].astype(float).mean(), rel=1e-6
        )
    assert table["count"].iloc[2] > 0
    outside = _table(zones.iloc[[2]], UTM, stats="outside_fraction").iloc[0, 0]
    assert 0.98 < outside < 1  # all but the degree or two over the raster
