"""--map out.html: an interactive choropleth in one HTML file, every statistic
in each zone's tooltip, the values those of the table."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import zonal_dask as zd
from zonal_dask.cli.main import main
from zonal_dask.io.maps import interactive_map

from .synth import make_grid, special_zones, voronoi_zones, zones_frame

pytest.importorskip("folium")
pytest.importorskip("mapclassify")

GRID = make_grid((30, 41), seed=8)
# adjacent cells, and one zone wholly outside the raster (no data)
FRAME = zones_frame([*voronoi_zones(GRID, 5, seed=3), special_zones(GRID)[2]])
STATS = ["count", "mean", "max"]


def page_features(text: str) -> tuple[list[dict], list[str]]:
    """The zones' GeoJSON properties and the tooltip's fields in the page."""
    data = re.search(r"geo_json_\w+_add\((\{.*\})\);", text)
    fields = re.search(r"let fields = (\[[^\]]*\]);", text)
    assert data is not None and fields is not None
    features = json.loads(data.group(1))["features"]
    return [f["properties"] for f in features], json.loads(fields.group(1))


def test_the_command_line_writes_an_interactive_map(tmp_path, capsys):
    zones, raster = tmp_path / "zones.gpkg", GRID.write(tmp_path / "r.tif")
    FRAME.to_file(zones)
    out, page = tmp_path / "out.csv", tmp_path / "mean.html"
    args = [str(zones), str(raster), str(out), "--stats", ",".join(STATS), "-q"]
    assert main([*args, "--map", str(page), "--id-field", "name"]) == 0
    text = page.read_text()
    properties, fields = page_features(text)
    assert fields == ["name", *STATS]
    table = zd.zonal_stats(FRAME, raster, STATS, zone_id="name")
    assert [p["name"] for p in properties] == table.index.tolist()
    for stat in STATS:
        shown = np.array([np.nan if p[stat] is None else p[stat] for p in properties])
        np.testing.assert_allclose(shown, table[stat].to_numpy(), rtol=1e-6)
    assert table["count"].iloc[-1] == 0 and "no data" in text
    # an existing page is refused before anything is computed
    assert main([*args, "--overwrite", "--map", str(page)]) == 0
    assert main([*args[:2], str(tmp_path / "o2.csv"), "--map", str(page)]) == 1
    assert "exists" in capsys.readouterr().err


def test_every_zone_without_data_and_zones_without_a_crs(tmp_path):
    far = FRAME.iloc[[-1]]  # outside the raster: count 0, mean NaN
    with pytest.warns(zd.errors.NoOverlapWarning):
        features = zd.zonal_stats(far, GRID.to_dataarray(), STATS, geometry=True)
    page = interactive_map(features, "mean", path=tmp_path / "empty.html")
    properties, _ = page_features(page.get_root().render())
    assert properties[0]["mean"] is None and properties[0]["count"] == 0
    with pytest.raises(zd.OutputError, match="needs zones with a CRS"):
        interactive_map(features.set_crs(None, allow_override=True), "mean")
