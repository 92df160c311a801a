"""Class names from a raster attribute table (``.vat.dbf``) or GDAL's category
names (``.aux.xml``) name the class columns and the majority values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyogrio
import pytest

import zonal_dask as zd
from zonal_dask.cli.main import main
from zonal_dask.io.class_names import name_classes, read_class_names

from .synth import Grid, voronoi_zones, zones_frame

VALUES = np.random.default_rng(4).integers(0, 4, (30, 41)).astype("uint8")
GRID = Grid(VALUES, nodata=0)
FRAME = zones_frame(voronoi_zones(GRID, 5, seed=6))
NAMES = {1: "forest", 2: "water", 3: "urban"}


@pytest.fixture
def landcover(tmp_path):
    path = GRID.write(tmp_path / "landcover.tif")
    table = pd.DataFrame(
        {"VALUE": [1, 2, 3], "COUNT": [9, 9, 9], "CLASS_NAME": list(NAMES.values())}
    )
    pyogrio.write_dataframe(table, str(path) + ".vat.dbf", driver="ESRI Shapefile")
    return path


def test_an_attribute_table_names_the_classes(landcover):
    assert read_class_names(landcover) == NAMES


def test_gdal_category_names_in_the_aux_xml(tmp_path):
    path = GRID.write(tmp_path / "classes.tif")
    categories = "".join(
        f"<Category>{n}</Category>" for n in ["", "forest", "water", "urban"]
    )
    (tmp_path / "classes.tif.aux.xml").write_text(
        f'<PAMDataset><PAMRasterBand band="1"><CategoryNames>{categories}'
        f"</CategoryNames></PAMRasterBand></PAMDataset>"
    )
    assert read_class_names(path) == NAMES
    assert read_class_names(path, band=2) == {}


def test_the_command_line_names_columns_and_majority(landcover, tmp_path):
    zones, out = tmp_path / "zones.gpkg", tmp_path / "out.csv"
    FRAME.to_file(zones)
    stats = ["majority", "minority", "count"]
    args = [str(zones), str(landcover), str(out), "-q", "--stats", ",".join(stats)]
    assert main([*args, "--categorical", "--class-names"]) == 0
    got = pd.read_csv(out).set_index("fid")
    numbers = zd.zonal_stats(FRAME, landcover, stats, categorical=True)
    assert list(got.columns) == [*stats, "forest", "water", "urban"]
    for value, name in NAMES.items():
        assert (got[name].to_numpy() == numbers[value].to_numpy()).all()
    for stat in ("majority", "minority"):
        expected = [NAMES[int(v)] for v in numbers[stat]]
        assert got[stat].tolist() == expected


def test_a_raster_without_names_is_refused(tmp_path, capsys):
    path = GRID.write(tmp_path / "plain.tif")
    zones = tmp_path / "zones.gpkg"
    FRAME.to_file(zones)
    out = tmp_path / "out.csv"
    assert main([str(zones), str(path), str(out), "--class-names"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no class names found" in err[0]
    assert not out.exists()


def test_fractions_prefixes_and_repeated_names():
    table = pd.DataFrame(
        {
            "lc_majority": [1.0, np.nan, 7.0],
            "lc_1": [1, 0, 0],
            "lc_frac_2": [0.5, 0.0, 1.0],
            "lc_weighted_frac_1": [0.1, 0.2, 0.3],
        }
    )
    named = name_classes(table, {1: "forest", 2: "forest"}, prefix="lc_")
    assert list(named.columns) == [
        "lc_majority",
        "lc_forest_1",
        "lc_frac_forest_2",
        "lc_weighted_frac_forest_1",
    ]
    assert named["lc_majority"].tolist()[0] == "forest"
    assert np.isnan(named["lc_majority"].tolist()[1])
    assert named["lc_majority"].tolist()[2] == 7.0  # no name: the value stays
