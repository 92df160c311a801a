"""Weighted time series: coverage fractions and a weights raster, made once
per grid and kept for every step, equal to a weighted ``zonal_stats`` of each
step alone (itself checked against exactextract in test_exactextract.py and
test_weighted_reference.py), and one step against exactextract here.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from affine import Affine

import zonal_dask as zd
from zonal_dask.labels import coverage_source

from .reference import assert_tables_close
from .synth import TRANSFORM, make_grid, voronoi_zones, zones_frame

SHAPE = (30, 41)
GRIDS = [make_grid(SHAPE, "float32", seed=300 + t, loc=10 + t) for t in range(4)]
FRAME = zones_frame(voronoi_zones(GRIDS[0], 7, seed=9))
WEIGHTS = make_grid(SHAPE, "float64", seed=310, nodata=None, loc=3, scale=0.5)
# weights on a grid twice as fine in both directions
FINE = dataclasses.replace(
    make_grid((60, 82), "float64", seed=311, nodata=None, loc=3, scale=0.5),
    transform=TRANSFORM * Affine.scale(0.5, 0.5),
)
STATS = ["count", "mean", "sum", "weighted_mean", "weighted_sum", "median"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("weighted")
    return [g.write(directory / f"day{t + 1}.tif") for t, g in enumerate(GRIDS)]


def step_frame(cube, t: int, columns) -> pd.DataFrame:
    step = cube.isel(time=t)
    table = pd.DataFrame({c: step[c].to_numpy() for c in columns})
    return table.set_axis(pd.Index(step["fid"].to_numpy(), name="fid"))


@pytest.mark.parametrize("weights", [WEIGHTS, FINE], ids=["same grid", "finer"])
@pytest.mark.parametrize("batch", [1, 3])
def test_a_weighted_series_equals_each_step_weighted_alone(
    files, tmp_path, weights, batch
):
    path = weights.write(tmp_path / "w.tif")
    options = {"coverage": "fraction", "weights": path, "chunks": (16, 20)}
    cube = zd.zonal_series(FRAME, files, STATS, batch=batch, **options)
    for t, f in enumerate(files):
        expected = zd.zonal_stats(FRAME, f, STATS, **options)
        assert_tables_close(step_frame(cube, t, STATS), expected, rtol=1e-12)


@pytest.mark.parametrize(
    "options",
    [
        {"weights": "coverage"},  # the older spelling of coverage="fraction"
        {"coverage": "area_cartesian", "min_coverage_frac": 0.3},
        {"coverage": "none", "default_value": 0.0},
    ],
)
def test_coverage_weighting_over_a_series(files, options):
    stats = ["count", "mean", "std", "max"]
    cube = zd.zonal_series(FRAME, files, stats, **options)
    for t, f in enumerate(files):
        expected = zd.zonal_stats(FRAME, f, stats, **options)
        assert_tables_close(step_frame(cube, t, stats), expected, rtol=1e-12)
    plain = zd.zonal_series(FRAME, files[:1], ["count"])
    assert not np.allclose(cube["count"][:, 0], plain["count"][:, 0])


def test_one_weighted_step_is_exactextract_s(files, tmp_path):
    exactextract = pytest.importorskip("exactextract")
    path = WEIGHTS.write(tmp_path / "w.tif")
    stats = ["mean", "weighted_mean"]
    cube = zd.zonal_series(FRAME, files, stats, weights=path, coverage="fraction")
    found = exactextract.exact_extract(
        str(files[2]),
        FRAME.reset_index(),
        ["mean", "weighted_mean"],
        weights=str(path),
        include_cols=["fid"],
        output="pandas",
    ).set_index("fid")
    got = step_frame(cube, 2, ["mean", "weighted_mean"])
    assert np.allclose(
        got.to_numpy(), found.loc[got.index].to_numpy(), rtol=1e-6, equal_nan=True
    )


def test_the_fractions_and_weights_are_made_once(files, tmp_path, monkeypatch):
    made = []
    coverage_labels = coverage_source.coverage_labels

    def counted(*args, **kwargs):
        made.append(1)
        return coverage_labels(*args, **kwargs)

    monkeypatch.setattr(coverage_source, "coverage_labels", counted)
    path = WEIGHTS.write(tmp_path / "w.tif")
    zd.zonal_series(
        FRAME, files, ["weighted_mean"], weights=path, coverage="fraction", batch=1
    )
    per_grid = len(made)
    assert per_grid > 0
    made.clear()
    zd.zonal_series(
        FRAME, files[:1], ["weighted_mean"], weights=path, coverage="fraction"
    )
    assert len(made) == per_grid  # four steps in four batches: no more than one


def test_the_command_line_weights_a_series(files, tmp_path):
    from zonal_dask.cli.main import main

    zones, out = tmp_path / "zones.gpkg", tmp_path / "w.parquet"
    FRAME.to_file(zones)
    path = WEIGHTS.write(tmp_path / "w.tif")
    args = [str(zones), *map(str, files), str(out), "-q", "--stats", "weighted_mean"]
    assert main([*args, "--coverage", "--weights", str(path)]) == 0
    table = pd.read_parquet(out)
    for f in files:
        expected = zd.zonal_stats(
            FRAME, f, ["weighted_mean"], coverage="fraction", weights=path
        )
        got = table[table["source"] == f.name]["weighted_mean"].to_numpy()
        np.testing.assert_allclose(got, expected["weighted_mean"].to_numpy(), 1e-12)
