"""The run summary on stderr, and the figures it is made of."""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely

import zonal_dask as zd
from zonal_dask.cli.main import main
from zonal_dask.cli.summary import (
    Stopwatch,
    peak_memory,
    pixels_read,
    report,
    zones_without_data,
)
from zonal_dask.io.grid import grid_chunks
from zonal_dask.io.raster import open_raster

from .synth import make_grid, zones_frame

GRID = make_grid((40, 50), seed=3)


def _corner_zones():
    """Two zones in the top-left 16 x 16 chunk, one outside the raster."""
    t = GRID.transform
    (x0, y0), (x1, y1) = t @ (1, 1), t @ (10, 12)
    inside = shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
    (x2, y2) = t @ (80, 80)
    outside = shapely.Point(x2, y2).buffer(20)
    return zones_frame([inside, inside.buffer(-15), outside])


def test_pixels_read_counts_the_chunks_that_have_a_task(tmp_path):
    raster = GRID.write(tmp_path / "g.tif")
    corner = zd.zonal_stats(_corner_zones(), raster, compute=False, chunks=16)
    chunks = grid_chunks(open_raster(raster, chunks=16))
    assert chunks == ((16, 16, 8), (16, 16, 16, 2))
    assert pixels_read(corner, chunks) == 16 * 16  # one chunk of twelve
    weighted = zd.zonal_stats(
        _corner_zones(), raster, ["mean"], weights="coverage", compute=False, chunks=16
    )
    assert pixels_read(weighted, chunks) == 16 * 16
    everywhere = zones_frame([shapely.box(*GRID.bounds())])
    lazy = zd.zonal_stats(everywhere, raster, compute=False, chunks=16)
    assert pixels_read(lazy, chunks) == 40 * 50


def test_zones_without_data_with_or_without_count():
    table = pd.DataFrame(
        {"count": [3, 0, 1], "mean": [1.0, np.nan, 2.0], "std": [0.5, np.nan, 0.0]}
    )
    assert zones_without_data(table, ["count", "mean", "std"]) == 1
    assert zones_without_data(table, ["mean", "std"]) == 1
    assert zones_without_data(table.iloc[[0, 2]], ["std"]) == 0
    # unique, histogram and the fractions are numbers for an empty zone too
    classes = pd.DataFrame({"unique": [2, 0], 7: [3, 0], "p90": [1.5, np.nan]})
    assert zones_without_data(classes, ["unique"]) is None
    assert zones_without_data(classes, ["unique", "p90"]) == 1


def test_report_and_stopwatch():
    watch = Stopwatch()
    watch.lap("planning")
    watch.lap("compute")
    assert list(watch.stages) == ["planning", "compute"]
    assert watch.total >= sum(watch.stages.values()) >= 0
    memory = peak_memory()
    assert memory is None or memory > 10_000_000  # python + numpy alone
    text = report(
        zones=1200, pixels=4_000_000, empty=3, stopwatch=watch, memory=512_000_000
    )
    assert text.startswith("zonal-dask: 1,200 zones, 4,000,000 pixels read in ")
    assert "peak memory 512 MB, 3 zones with no valid pixel" in text
    assert "\n" not in text
    verbose = report(
        zones=1, pixels=1, empty=0, stopwatch=watch, memory=None, verbose=True
    )
    assert re.search(r"\n  planning \d+\.\d\d s, compute \d+\.\d\d s$", verbose)


def test_cli_prints_the_summary_quiet_silences_it_verbose_adds_stages(tmp_path, capsys):
    raster = GRID.write(tmp_path / "g.tif")
    zones = tmp_path / "zones.gpkg"
    _corner_zones().to_file(zones, engine="pyogrio")
    args = [str(zones), str(raster)]
    assert main([*args, str(tmp_path / "a.csv"), "--chunks", "16"]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    summary = re.fullmatch(
        r"zonal-dask: 3 zones, 256 pixels read in (\S+) s \((\S+) Mpixel/s\), "
        r"peak memory (\S+) MB, 1 zone with no valid pixel",
        lines[0],
    )
    assert summary, lines[0]
    seconds, rate = float(summary[1]), float(summary[2])
    # both printed rounded: seconds to 0.01, the rate to 3 digits
    low, high = 256 / (seconds + 0.005) / 1e6, 256 / max(seconds - 0.005, 1e-3) / 1e6
    assert low * 0.99 <= rate <= high * 1.01
    assert main([*args, str(tmp_path / "b.csv"), "-q"]) == 0
    assert capsys.readouterr().err == ""
    assert main([*args, str(tmp_path / "c.csv"), "-v"]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert re.fullmatch(r"  planning \S+ s, compute \S+ s, write \S+ s", lines[1]), (
        lines[1]
    )


def test_cli_summary_for_every_band(data_dir, tmp_path, capsys):
    raster = data_dir / "rasterio" / "RGB.byte.tif"
    zones = data_dir / "rasterio" / "box.shp"
    out = tmp_path / "bands.csv"
    assert (
        main([str(zones), str(raster), str(out), "--band", "all", "--chunks", "256"])
        == 0
    )
    line = capsys.readouterr().err.strip()
    found = re.match(r"zonal-dask: 1 zone, ([\d,]+) pixels read", line)
    assert found, line
    # the 256 x 256 chunks the box meets, read for each of the three bands
    with rasterio.open(raster) as src:
        height, width = src.shape
        xmin, ymin, xmax, ymax = gpd.read_file(zones).total_bounds
        (top, left), (bottom, right) = src.index(xmin, ymax), src.index(xmax, ymin)
    rows = [min(256, height - 256 * i) for i in range(top // 256, bottom // 256 + 1)]
    cols = [min(256, width - 256 * j) for j in range(left // 256, right // 256 + 1)]
    assert int(found[1].replace(",", "")) == 3 * sum(rows) * sum(cols)
