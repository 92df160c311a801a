"""A run in which no zone meets the raster says so in one line (both extents,
both CRSs); the command line exits 0 but warns, or 1 with --strict."""

from __future__ import annotations

import warnings

import pytest
import rioxarray  # noqa: F401  (the .rio accessor)
import shapely

import zonal_dask as zd
from zonal_dask.cli.main import main
from zonal_dask.errors import NoOverlapWarning

from .synth import make_grid, voronoi_zones, zones_frame

GRID = make_grid((30, 41), seed=5)
FRAME = zones_frame(voronoi_zones(GRID, 5, seed=2))  # EPSG:32633, on the raster
# the same coordinates mislabelled: plausible numbers, elsewhere on Earth
WRONG = FRAME.set_crs("EPSG:3857", allow_override=True)


def test_no_zone_meeting_the_raster_warns_naming_extents_and_crss():
    raster = GRID.to_dataarray()
    with pytest.warns(NoOverlapWarning) as caught:
        table = zd.zonal_stats(WRONG, raster, ["count", "mean"])
    (message,) = [str(w.message) for w in caught if w.category is NoOverlapWarning]
    assert "EPSG:3857" in message and "EPSG:32633" in message
    x0 = WRONG.total_bounds[0]
    assert f"{x0:.6g}" in message and f"{raster.rio.bounds()[0]:.6g}" in message
    assert "\n" not in message
    assert (table["count"] == 0).all() and table["mean"].isna().all()


def test_zones_that_meet_the_raster_do_not_warn():
    far = shapely.box(0, 0, 1000, 1000)  # one zone far away, the others on it
    mixed = zones_frame([far, *voronoi_zones(GRID, 5, seed=2)])
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoOverlapWarning)
        table = zd.zonal_stats(mixed, GRID.to_dataarray(), ["count"])
    assert table["count"].iloc[0] == 0 and table["count"].iloc[1:].sum() > 0


def test_a_series_warns_too(tmp_path):
    path = GRID.write(tmp_path / "a.tif")
    with pytest.warns(NoOverlapWarning, match="EPSG:3857"):
        zd.zonal_series(WRONG, [path], ["count"])


def test_the_command_line_warns_or_with_strict_fails(tmp_path, capsys):
    zones, raster = tmp_path / "zones.gpkg", GRID.write(tmp_path / "r.tif")
    WRONG.to_file(zones)
    out = tmp_path / "out.csv"
    assert main([str(zones), str(raster), str(out), "-q"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("zonal-dask: warning: no zone of")
    assert out.exists()
    strict = tmp_path / "strict.csv"
    assert main([str(zones), str(raster), str(strict), "-q", "--strict"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("zonal-dask: error: no zone of")
    assert not strict.exists()
