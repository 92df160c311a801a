"""The quick-look map: rendered to PNG and read back pixel by pixel."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely

import zonal_dask as zd
from zonal_dask.cli.main import main
from zonal_dask.io.maps import choropleth, raster_units

from .synth import Grid, zones_frame

mpl_image = pytest.importorskip("matplotlib.image")
colormaps = pytest.importorskip("matplotlib").colormaps

# Four quadrants of constant value, so each zone's mean is known exactly.
QUADRANTS = np.block(
    [
        [np.full((10, 10), 1.0), np.full((10, 10), 2.0)],
        [np.full((10, 10), 4.0), np.full((10, 10), 8.0)],
    ]
).astype("float32")
GRID = Grid(QUADRANTS, nodata=None)
MEANS = [1.0, 2.0, 4.0, 8.0]


@pytest.fixture(scope="module")
def raster(tmp_path_factory):
    path = GRID.write(tmp_path_factory.mktemp("plot") / "grid.tif")
    with rasterio.open(path, "r+") as dst:
        dst.set_band_unit(1, "mm/day")
    return path


@pytest.fixture(scope="module")
def zones():
    """One zone inside each quadrant, and one beside the raster (no data)."""
    t = GRID.transform
    boxes = []
    for row, col in [(1, 1), (1, 11), (11, 1), (11, 11), (1, 25)]:
        (x0, y0), (x1, y1) = t @ (col, row), t @ (col + 8, row + 8)
        boxes.append(shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
    return zones_frame(boxes)


def _pixels_at(figure, points):
    """RGB of the rendered figure at data coordinates (no tight bbox: the
    saved PNG is exactly the canvas)."""
    image = mpl_image.imread(figure.saved_path)[..., :3]
    ax = figure.axes[0]
    height = image.shape[0]
    out = []
    for x, y in points:
        px, py = ax.transData.transform((x, y))
        out.append(image[round(height - py), round(px)])
    return np.array(out), image


@pytest.fixture(scope="module")
def drawn(zones, raster, tmp_path_factory):
    features = zd.zonal_stats(zones, raster, ["count", "mean"], geometry=True)
    path = tmp_path_factory.mktemp("map") / "mean.png"
    figure = choropleth(
        features, "mean", raster=raster, path=path, figsize=(4, 3), dpi=80
    )
    figure.saved_path = path
    return features, figure


def test_png_size_and_distinct_colours_by_value(drawn, zones):
    features, figure = drawn
    np.testing.assert_array_equal(features["mean"].to_numpy()[:4], MEANS)
    assert np.isnan(features["mean"].iloc[4])
    centres = [(p.x, p.y) for p in zones.geometry.centroid]
    colours, image = _pixels_at(figure, centres[:4])
    assert image.shape[:2] == (3 * 80, 4 * 80)
    assert len({tuple(np.round(c, 2)) for c in colours}) == 4
    norm = (np.array(MEANS) - 1.0) / (8.0 - 1.0)
    expected = colormaps["viridis"](norm)[:, :3]
    np.testing.assert_allclose(colours, expected, atol=2 / 255)


def test_zone_without_data_is_hatched(drawn, zones):
    _, figure = drawn
    _, image = _pixels_at(figure, [])
    ax = figure.axes[0]
    box = zones.geometry.iloc[4].bounds  # no valid pixel: white with hatch lines
    (x0, y0), (x1, y1) = ax.transData.transform([(box[0], box[1]), (box[2], box[3])])
    height = image.shape[0]
    inner = image[
        int(height - y1) + 3 : int(height - y0) - 3, int(x0) + 3 : int(x1) - 3
    ]
    grey = inner.mean(axis=2)
    assert (grey > 0.95).mean() > 0.3  # white background
    assert (grey < 0.8).mean() > 0.05  # hatch lines
    legend = ax.get_legend()
    assert legend is not None and legend.get_texts()[0].get_text() == "no data (1 zone)"


def test_title_and_units_come_from_the_raster(drawn, raster):
    _, figure = drawn
    assert figure._suptitle.get_text() == "mean of grid.tif"
    colourbar = figure.axes[1]
    assert colourbar.get_ylabel() == "mean (mm/day)"
    assert raster_units(raster) == "mm/day"
    da = GRID.to_dataarray()
    da.attrs["units"] = "K"
    assert raster_units(da) == "K"


def test_unknown_column_is_an_error(drawn):
    features, _ = drawn
    with pytest.raises(zd.OutputError, match="no column 'p90' to map"):
        choropleth(features, "p90")


def test_cli_map_and_bad_map_paths(zones, raster, tmp_path, capsys, monkeypatch):
    source = tmp_path / "zones.gpkg"
    zones.to_file(source, engine="pyogrio")
    out, png = tmp_path / "stats.csv", tmp_path / "max.png"
    args = [str(source), str(raster), str(out), "--stats", "count,max"]
    map_args = ["--map", str(png), "--map-stat", "max", "--id-field", "name", "-q"]
    assert main([*args, *map_args]) == 0
    assert mpl_image.imread(png).shape[:2] == (600, 800)
    table = pd.read_csv(out, index_col="name")  # the table, as without --map
    expected = zd.zonal_stats(source, raster, ["count", "max"], zone_id="name")
    pd.testing.assert_frame_equal(table, expected)
    for extra, message in [
        (["--map", str(tmp_path / "m.xyz")], "cannot draw a map as 'xyz'"),
        (["--map", str(tmp_path / "m.png"), "--map-stat", "std"], "not among"),
        (["--map-stat", "max"], "--map-stat needs --map"),
    ]:
        capsys.readouterr()
        assert main([*args[:2], str(tmp_path / "o.csv"), *args[3:], *extra]) == 1
        err = capsys.readouterr().err
        assert err.startswith("zonal-dask: error: ") and message in err
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    assert (
        main([*args[:2], str(tmp_path / "o.csv"), "--map", str(tmp_path / "m.png")])
        == 1
    )
    assert "needs matplotlib: pip install matplotlib" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "max.png",
        "stats.csv",
        "zones.gpkg",
    ]
