"""Lines under coverage weighting: each cell weighted by the line's length in
it, exactextract's meaning, against exactextract 0.3 itself and against the
lengths shapely measures, for several chunkings and ``split_every=2``.

exactextract is compared on lines that never come back to a point of a cell
they are walking through and whose parts span both axes inside the raster:
elsewhere it loses length or fails (docs/exactextract-semantics.md), and
zonal_dask gives the lengths shapely measures.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from affine import Affine

import zonal_dask as zd

from . import weighted_reference as wr
from .test_weighted import assert_close, dataarray, ours

pytest.importorskip("exactextract")

H, W = 9, 11
T = Affine(2, 0, 100, 0, -2, 50)  # 2 x 2 cells: lengths are in metres
CRS = "EPSG:32633"
OPS = [
    "count",
    "sum",
    "mean",
    "stdev",
    "min",
    "max",
    "median",
    "quantile(q=0.25)",
    "majority",
    "minority",
    "variety",
    "frac",
]
CHUNKS = [3, (4, 5), None]


def values(seed: int = 0) -> wr.Raster:
    rng = np.random.default_rng(seed)
    return wr.Raster(rng.integers(1, 6, (H, W)).astype(np.float64), T, None, CRS)


def _coordinate(rng: np.random.Generator, n: int) -> float:
    """A pixel coordinate on a corner, a half pixel or anywhere, reaching
    two pixels beyond the raster's ``n`` pixels."""
    kind = rng.integers(0, 3)
    if kind == 0:
        return float(rng.integers(-2, n + 3))
    if kind == 1:
        return float(rng.integers(-4, 2 * n + 6)) / 2
    return float(rng.uniform(-2, n + 2))


def monotone_lines(seed: int, count: int = 40, edges: bool = True) -> gpd.GeoDataFrame:
    """Lines whose x (or y) only grows, some along cell edges, some parts of
    multi-lines, with vertices on corners, half pixels or anywhere (without
    ``edges``: anywhere, none along an edge)."""
    rng = np.random.default_rng(seed)
    geometries = []
    for _ in range(count):
        parts = []
        for _ in range(rng.integers(1, 3)):
            n = int(rng.integers(2, 6))
            if edges:
                along = np.sort([_coordinate(rng, W) for _ in range(n)])
                across = [_coordinate(rng, H) for _ in range(n)]
            else:
                along = np.sort(rng.uniform(-2, W + 2, n))
                across = list(rng.uniform(-2, H + 2, n))
            for k in range(1, n):  # some segments along a row edge
                if edges and rng.random() < 0.3:
                    across[k] = float(round(across[k - 1]))
                    across[k - 1] = across[k]
            along = along + np.arange(n) * 1e-3 * (np.diff(along, prepend=0) == 0)
            xy = np.column_stack([along, across])
            if rng.random() < 0.5:  # y grows instead
                xy = xy[:, ::-1] * [W / H, H / W]
            parts.append(shapely.LineString(np.column_stack(T * xy.T)))
        geometries.append(
            parts[0] if len(parts) == 1 else shapely.MultiLineString(parts)
        )
    frame = gpd.GeoDataFrame(geometry=geometries, crs=CRS)
    return frame[[_exactextract_measures(g) for g in frame.geometry]]


def _exactextract_measures(line) -> bool:
    """exactextract skips a part whose box within the raster is flat."""
    x0, y0, x1, y1 = T.c, T.f + H * T.e, T.c + W * T.a, T.f
    b = shapely.bounds(shapely.get_parts(line))
    width = np.minimum(b[:, 2], x1) - np.maximum(b[:, 0], x0)
    height = np.minimum(b[:, 3], y1) - np.maximum(b[:, 1], y0)
    return bool(((width > 0) & (height > 0)).all())


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("kind", ["fraction", "none", "area_cartesian"])
def test_lines_equal_exactextract(seed, kind):
    lines, raster = monotone_lines(seed), values(seed)
    expected = wr.exactextract_reference(lines, raster, OPS, coverage_weight=kind)
    assert (expected["count"] > 0).sum() > 20
    for chunks in CHUNKS:
        table = ours(
            lines, raster, OPS, coverage_weight=kind, chunks=chunks, split_every=2
        )
        assert_close(table, expected)


def test_lines_cells_equal_exactextract():
    lines, raster = monotone_lines(2), values(2)
    expected = wr.exactextract_pixels(lines, raster).rename(columns={"zone": "id"})
    for chunks in CHUNKS:
        frame = zd.zonal_pixels(
            lines, dataarray(raster), coverage="fraction", chunks=chunks
        ).compute()
        table = frame.rename(columns={frame.columns[0]: "id"})
        key = ["id", "cell_id"]
        table, exp = table.sort_values(key), expected.sort_values(key)
        assert table[key].to_numpy().tolist() == exp[key].to_numpy().tolist()
        np.testing.assert_array_equal(table["values"], exp["values"])
        np.testing.assert_allclose(table["coverage"], exp["coverage"], rtol=1e-6)


def _shapely_lengths(line, raster: wr.Raster) -> dict[int, float]:
    """Each cell's length of ``line`` measured by shapely, segment by segment
    (a line passing twice counts twice; a segment on a border would count in
    both cells)."""
    xy = shapely.get_coordinates(line)
    segments = shapely.linestrings(np.stack([xy[:-1], xy[1:]], axis=1))
    out = {}
    for row in range(H):
        for col in range(W):
            (x0, y0), (x1, y1) = T * (col, row + 1), T * (col + 1, row)
            cell = shapely.box(x0, y0, x1, y1)
            length = shapely.length(shapely.intersection(segments, cell)).sum()
            if length > 0:
                out[row * W + col] = length
    return out


def awkward_lines(seed: int, count: int = 30) -> gpd.GeoDataFrame:
    """Lines exactextract does not measure: turning back, repeated vertices,
    zero length, straight along an axis, anywhere on the plane."""
    rng = np.random.default_rng(seed)
    geometries = []
    for i in range(count):
        xy = np.column_stack([rng.uniform(-2, W + 2, 5), rng.uniform(-2, H + 2, 5)])
        if i % 3 == 0:
            xy[2] = xy[1]  # a repeated vertex
            xy[3] = xy[0]  # back to the start
        if i % 5 == 0:
            xy[:, rng.integers(0, 2)] = xy[0, rng.integers(0, 2)]  # flat
        if i % 7 == 0:
            xy[:] = xy[0]  # no length
        geometries.append(shapely.LineString(np.column_stack(T * xy.T)))
    return gpd.GeoDataFrame(geometry=geometries, crs=CRS)


@pytest.mark.parametrize("seed", [0, 1])
def test_awkward_lines_are_the_lengths_shapely_measures(seed):
    lines, raster = awkward_lines(seed), values(seed)
    for chunks in CHUNKS:
        frame = zd.zonal_pixels(
            lines, dataarray(raster), coverage="fraction", chunks=chunks
        ).compute()
        zone = frame.columns[0]
        for i, line in enumerate(lines.geometry):
            rows = frame[frame[zone] == lines.index[i]]
            ours_ = dict(
                zip(rows["cell_id"], rows["coverage"].astype(float), strict=True)
            )
            theirs = _shapely_lengths(line, raster)
            assert ours_.keys() == theirs.keys(), i
            np.testing.assert_allclose(
                [ours_[k] for k in theirs], list(theirs.values()), rtol=1e-6
            )


def test_a_line_along_cell_edges_counts_once_in_the_cells_walked():
    # along the row edge y = 46 from x = 101 to 107, then down the column
    # edge x = 107: exactextract's walk keeps the cells south and east
    line = shapely.LineString([(101, 46), (107, 46), (107, 40)])
    frame = gpd.GeoDataFrame(geometry=[line], crs=CRS)
    raster = values()
    table = zd.zonal_pixels(frame, dataarray(raster), coverage="fraction").compute()
    assert table["coverage"].astype(float).sum() == pytest.approx(line.length)
    expected = wr.exactextract_pixels(frame, raster)
    assert sorted(table["cell_id"]) == sorted(expected["cell_id"])
    np.testing.assert_allclose(
        table.sort_values("cell_id")["coverage"],
        expected.sort_values("cell_id")["coverage"],
        rtol=1e-6,
    )


def test_lines_pooled_by_group_are_the_dissolved_multi_line():
    # (exactextract is given each group's union, whose parts along an axis it
    # would skip: no segment here runs along one)
    lines = monotone_lines(3, edges=False)
    lines = lines.assign(g=np.arange(len(lines)) % 4)
    # two parts of one group overlapping along a stretch: counted once
    lines.loc[lines.index[0], "geometry"] = shapely.LineString([(101, 45), (111, 43)])
    lines.loc[lines.index[4], "geometry"] = shapely.LineString([(106, 44), (116, 42)])
    raster = values(3)
    ops = ["count", "sum", "mean", "median", "majority", "frac"]
    expected = wr.exactextract_reference(lines, raster, ops, group_by="g")
    for chunks in CHUNKS:
        table = ours(lines, raster, ops, group_by="g", chunks=chunks, split_every=2)
        assert_close(table, expected)


def test_points_and_lines_with_polygons_are_refused_under_coverage():
    raster = dataarray(values())
    points = gpd.GeoDataFrame(geometry=[shapely.Point(103, 45)], crs=CRS)
    with pytest.raises(zd.GeometryTypeError, match="found Point"):
        zd.zonal_stats(points, raster, ["count"], coverage="fraction")
    mixed = gpd.GeoDataFrame(
        {"g": [1, 1]},
        geometry=[
            shapely.LineString([(101, 45), (111, 41)]),
            shapely.box(101, 41, 105, 45),
        ],
        crs=CRS,
    )
    with pytest.raises(zd.GeometryTypeError, match="group 1 pools lines with polygons"):
        zd.zonal_stats(mixed, raster, ["count"], coverage="fraction", group_by="g")
    # lines and polygons as separate zones of one layer are fine
    table = zd.zonal_stats(mixed, raster, ["count"], coverage="fraction")
    assert table["count"].tolist() == pytest.approx(
        [mixed.geometry[0].length, 4.0], rel=1e-6
    )


def test_rasterstats_lines_over_slope_equal_exactextract(data_dir):
    path = data_dir / "rasterstats" / "slope.tif"
    lines = gpd.read_file(data_dir / "rasterstats" / "lines.shp")
    ops = ["count", "sum", "mean", "min", "max", "median"]
    expected = wr.exactextract_reference(lines, path, ops)
    assert (expected["count"] > 0).all()
    for chunks in [16, None]:
        table = ours(lines, path, ops, chunks=chunks, split_every=2)
        assert_close(table, expected)


def test_lines_with_a_weights_raster_equal_exactextract():
    lines, raster, weights = monotone_lines(4), values(4), values(5)
    ops = [
        "weighted_sum",
        "weighted_mean",
        "weighted_stdev",
        "weighted_frac",
        "min_center_x",
        "max_center_y",
    ]
    expected = wr.exactextract_reference(lines, raster, ops, weights=weights)
    for chunks in CHUNKS:
        table = ours(lines, raster, ops, weights=weights, chunks=chunks, split_every=2)
        assert_close(table, expected)
