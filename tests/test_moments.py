"""The moments: declared partial fields, skewness and kurtosis, the kernel's
shifted power sums, and ``default_value=NaN``.

References: scipy.stats for skewness and kurtosis, exact rational arithmetic
(``statistics.pstdev`` sums fractions) for the spread, exactextract for
``default_value=NaN``.
"""

from __future__ import annotations

import json
import statistics

import numpy as np
import pytest
import scipy.stats

import zonal_dask as zd
from zonal_dask.reduce import moments as moments_module
from zonal_dask.run.checkpoint import FORMAT, MANIFEST, Checkpoint
from zonal_dask.statistics import fields
from zonal_dask.statistics.table import Statistic

from .reference import polygon_values
from .synth import Grid, make_grid, voronoi_zones, zones_frame

CHUNKINGS = [(61, 83), 7, (5, 23), (61, 3)]


@pytest.mark.parametrize("chunks", CHUNKINGS)
@pytest.mark.parametrize("loc", [100.0, 1e8])
def test_skewness_and_kurtosis_are_scipys_on_any_chunking(chunks, loc):
    grid = make_grid(dtype="float64", seed=81, loc=loc, scale=3.0)
    values = grid.values.copy()
    # skewed: squares of the noise; some nodata
    values = np.where(values == grid.nodata, values, loc + (values - loc) ** 2)
    grid = Grid(values, nodata=grid.nodata)
    geometries = voronoi_zones(grid, 9, seed=81)
    table = zd.zonal_stats(
        zones_frame(geometries),
        grid.to_dataarray(),
        ["skewness", "kurtosis", "std"],
        chunks=chunks,
        split_every=2,
    )
    found = [polygon_values(g, grid, grid.nodata) for g in geometries]
    skew = [scipy.stats.skew(v) if v.size else np.nan for v in found]
    kurt = [scipy.stats.kurtosis(v) if v.size else np.nan for v in found]
    assert np.isfinite(skew).sum() >= 5
    # scipy's own two-pass float64 loses digits at 1e8: compare to 1e-6 there
    rtol = 1e-9 if loc < 1e3 else 1e-6
    np.testing.assert_allclose(table["skewness"], skew, rtol=rtol, equal_nan=True)
    np.testing.assert_allclose(table["kurtosis"], kurt, rtol=rtol, equal_nan=True)


def test_skewness_of_equal_values_is_nan_as_scipy():
    grid = Grid(np.full((6, 7), 4.0), nodata=None)
    table = zd.zonal_stats(
        zones_frame(voronoi_zones(grid, 3, seed=1)),
        grid.to_dataarray(),
        ["skewness", "kurtosis"],
    )
    with pytest.warns(RuntimeWarning):
        assert np.isnan(scipy.stats.skew(np.full(5, 4.0)))
    assert table.isna().all().all()


@pytest.mark.parametrize("chunks", [None, 4])
def test_skewness_and_kurtosis_under_coverage_are_the_weighted_moments(
    tmp_path, chunks
):
    # exactextract's cells (coverage fractions and values) as the reference
    exactextract = pytest.importorskip("exactextract")
    grid = make_grid((21, 25), "float64", seed=4, nodata_fraction=0.1)
    path = grid.write(tmp_path / "values.tif")
    frame = zones_frame(voronoi_zones(grid, 6, seed=4))
    cells = exactextract.exact_extract(
        str(path), frame, ["coverage", "values"], output="pandas"
    )
    expected = []
    for coverage, values in zip(cells["coverage"], cells["values"], strict=True):
        c, x = np.asarray(coverage), np.asarray(values)
        c, x = c[x != grid.nodata], x[x != grid.nodata]
        if not c.sum():
            expected.append((np.nan, np.nan))
            continue
        mean = (c * x).sum() / c.sum()
        m2, m3, m4 = ((c * (x - mean) ** p).sum() / c.sum() for p in (2, 3, 4))
        expected.append(
            (m3 / m2**1.5, m4 / m2**2 - 3)
            if np.unique(x).size > 1
            else (np.nan,) * 2  # one value: NaN, as scipy
        )
    ours = zd.zonal_stats(
        frame, path, ["skewness", "kurtosis"], coverage="fraction", chunks=chunks
    )
    assert np.isfinite(ours.to_numpy()).sum() >= 8
    np.testing.assert_allclose(ours.to_numpy(), expected, rtol=1e-9, equal_nan=True)


@pytest.mark.parametrize("chunks", [(40, 40), 9])
def test_std_is_exact_when_the_first_value_is_far_from_the_mean(chunks):
    # the kernel sums powers of value - first value: a first value 1e6 away
    # from unit-spread values would leave M2 to cancellation; it is summed
    # again around the mean
    rng = np.random.default_rng(7)
    values = 1e6 + rng.normal(0, 1, (40, 40))
    values[::9, ::9] = 0.0  # each chunk's first pixel, and more: outliers
    grid = Grid(values, nodata=None)
    geometries = voronoi_zones(grid, 6, seed=7)
    table = zd.zonal_stats(
        zones_frame(geometries), grid.to_dataarray(), ["std"], chunks=chunks
    )
    exact = [
        statistics.pstdev(polygon_values(g, grid, None).tolist()) for g in geometries
    ]
    np.testing.assert_allclose(table["std"], exact, rtol=1e-12)


def test_a_statistic_reading_an_unknown_field_fails_when_declared():
    with pytest.raises(ValueError, match="varaince"):
        Statistic("typo", ("varaince",), lambda f: f["varaince"])


def test_positions_and_higher_moments_only_when_asked():
    assert fields.kernel_options(["mean", "variance", "count"]) == (False, False)
    assert fields.kernel_options(["min_center_x"]) == (True, False)
    assert fields.kernel_options(["variance", "moment4"]) == (False, True)


def test_the_kernels_columns_are_the_declared_fields():
    names = [f.name for f in fields.PARTIAL_FIELDS]
    assert moments_module.N_FIELDS == len(names) == len(set(names))
    assert fields.layout_digest(fields.PARTIAL_FIELDS[:-1]) != fields.layout_digest()


def test_a_checkpoint_of_another_layout_is_refused_clearly(tmp_path):
    directory = tmp_path / "run"
    directory.mkdir()
    identity = {"format": FORMAT, "zones": "z"}
    (directory / MANIFEST).write_text(json.dumps({**identity, "format": 3}))
    with pytest.raises(zd.CheckpointError, match="another version of zonal_dask"):
        Checkpoint.open(directory, identity)


# default_value=NaN ---------------------------------------------------------


def test_default_value_nan_is_refused_for_integer_rasters():
    grid = make_grid((8, 9), "int16", seed=3, nodata=-1)
    with pytest.raises(zd.NodataError, match="default_value nan"):
        zd.zonal_stats(
            zones_frame(voronoi_zones(grid, 3, seed=3)),
            grid.to_dataarray(),
            ["count", "mean"],
            default_value=float("nan"),
        )


def test_default_value_nan_with_order_statistics_is_refused():
    grid = make_grid((8, 9), "float32", seed=3)
    with pytest.raises(zd.NodataError, match="median"):
        zd.zonal_stats(
            zones_frame(voronoi_zones(grid, 3, seed=3)),
            grid.to_dataarray(),
            ["count", "median"],
            default_value=float("nan"),
        )


@pytest.mark.parametrize("chunks", [None, 5])
def test_default_value_nan_counts_nodata_as_exactextract(tmp_path, chunks):
    exactextract = pytest.importorskip("exactextract")
    grid = make_grid(
        (21, 25), "float64", seed=4, nodata_fraction=0.1, nan_fraction=0.05
    )
    path = grid.write(tmp_path / "values.tif")
    geometries = voronoi_zones(grid, 6, seed=4)
    frame = zones_frame(geometries)
    ops = ["count", "sum", "mean", "min", "max", "stdev", "variance"]
    theirs = exactextract.exact_extract(
        str(path), frame, [f"{op}(default_value=nan)" for op in ops], output="pandas"
    )
    theirs.columns = ops
    ours = zd.zonal_stats(
        frame,
        path,
        ["count", "sum", "mean", "min", "max", "std", "var"],
        coverage="fraction",
        default_value=float("nan"),
        chunks=chunks,
    )
    assert theirs["mean"].isna().sum() >= 3  # zones holding nodata pixels
    # a zone of no pixel: exactextract's sum is 0, ours NaN (as without)
    some = theirs["count"].to_numpy() > 0
    assert not some.all()
    for mine, op in zip(ours.columns, ops, strict=True):
        np.testing.assert_allclose(
            ours[mine][some], theirs[op][some], rtol=1e-9, equal_nan=True, err_msg=op
        )


def test_central_moments_are_summed_again_when_the_shift_is_far_from_the_mean():
    # the kernel sums powers of value - (first value): a first claim of tiny
    # weight far from the others leaves M2 to cancellation (about 1e12 times
    # eps); the chunk step sums the zone again around its mean
    from fractions import Fraction

    from zonal_dask.labels.sources import ChunkLabels

    rng = np.random.default_rng(11)
    values = 1e6 + rng.normal(0, 1, (12, 10))
    values[0, 0] = 0.0
    weights = np.ones(values.size)
    weights[0] = 1e-9
    labels = ChunkLabels(
        np.full((1, 12, 10), -1, np.int32),
        np.arange(values.size, dtype=np.int64),
        np.zeros(values.size, np.int32),
        np.array([0], np.int64),
        weights,
    )
    higher = moments_module.moment_kernel.HIGHER
    found, _ = moments_module.chunk_moments(values, labels, None, options=higher)
    exact_w = [Fraction(float(w)) for w in weights]
    exact_x = [Fraction(float(x)) for x in values.ravel()]
    mean = sum(w * x for w, x in zip(exact_w, exact_x, strict=True)) / sum(exact_w)
    for p in (2, 4):
        exact = float(
            sum(w * (x - mean) ** p for w, x in zip(exact_w, exact_x, strict=True))
        )
        np.testing.assert_allclose(found.field(f"m{p}")[0], exact, rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int16"])
@pytest.mark.parametrize("options", range(8))
def test_a_layers_zone_runs_give_the_generic_loops_bits(dtype, options):
    # without a weights raster the kernel takes a layer's claims a zone run at
    # a time (its columns in locals); with one, every claim goes through the
    # generic loop, whose first set of columns weighs claims alone: the two
    # must agree to the bit, on runs cut by holes, nodata, NaN, infinities,
    # large values and zones met again further on
    kernel = moments_module.moment_kernel.moments
    rng = np.random.default_rng(options)
    rows, cols = 37, 53
    values = 1e8 + rng.normal(0, 3, (rows, cols))
    # magnitudes from 1e-3 to 1e12, both signs: the compensated sum rounds
    # both ways (a running total smaller and larger than the next value)
    scale = rng.choice([-1.0, 1.0], values.shape) * 10.0 ** rng.integers(
        -11, 5, values.shape
    )
    values = values * scale
    if dtype == "int16":
        values = rng.integers(-300, 300, (rows, cols))
    values = values.astype(dtype)
    values.ravel()[rng.choice(values.size, 60, replace=False)] = -7
    if dtype != "int16":
        picks = rng.choice(values.size, 90, replace=False)
        values.ravel()[picks[:30]] = np.nan
        values.ravel()[picks[30:60]] = np.inf
        values.ravel()[picks[60:]] = -np.inf
    # runs of random length, zones repeating, holes (-1) between them
    run_zones = rng.integers(-1, 9, 2 * rows * cols)
    run_lengths = rng.integers(1, 40, run_zones.size)
    flat = np.repeat(run_zones, run_lengths)[: 2 * rows * cols]
    labels = flat.astype(np.int32).reshape(2, rows, cols)
    extra_pixels = rng.choice(values.size, 50).astype(np.int64)
    extra_zones = rng.integers(0, 9, 50).astype(np.int32)

    def sweep(pixel_weights):
        return kernel(
            values,
            labels,
            extra_pixels,
            extra_zones,
            np.empty(0),
            9,
            values.dtype.type(-7),
            True,
            pixel_weights,
            np.array([3, 5, 200], np.int64),
            np.empty((0, 0)),
            options,
        )

    by_runs = sweep(np.empty((0, 0)))
    generic = sweep(np.ones((rows, cols)))
    assert by_runs.shape == (9, 1, 17) and generic.shape == (9, 2, 17)
    assert (by_runs[:, 0, 0] > 0).all()
    np.testing.assert_array_equal(by_runs[:, 0], generic[:, 0])


@pytest.mark.parametrize("planes", [0, 1, 3])
def test_a_chunks_zones_come_sorted_and_present_whatever_its_zone_list(planes):
    # the label sources list a chunk's zones in their own order, some with no
    # pixel in it: the partials hold only the zones present, sorted, each
    # with the columns of its own pixels, as the same chunk listed in order
    from zonal_dask.labels.sources import ChunkLabels

    rng = np.random.default_rng(planes)
    shape = (planes, 20, 30) if planes else (20, 30)
    values = rng.normal(50, 5, shape)
    local = rng.integers(-1, 6, (1, 20, 30)).astype(np.int32)
    local[local == 4] = 5  # local zone 4 has no pixel
    listed = np.array([70, 10, 40, 30, 90, 20], np.int64)  # global ids, unsorted
    found, _ = moments_module.chunk_moments(
        values,
        ChunkLabels(local, np.empty(0, np.int64), np.empty(0, np.int32), listed),
        None,
    )
    order = np.argsort(listed)
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    in_order = np.where(local >= 0, rank[np.maximum(local, 0)], -1).astype(np.int32)
    expected, _ = moments_module.chunk_moments(
        values,
        ChunkLabels(
            in_order, np.empty(0, np.int64), np.empty(0, np.int32), listed[order]
        ),
        None,
    )
    assert found.zone.tolist() == [10, 20, 30, 40, 70]  # 90 (local 4): no pixel
    assert expected.zone.tolist() == found.zone.tolist()
    assert found.data.tobytes() == expected.data.tobytes()
    for i, zone in enumerate(found.zone):
        pixels = values[..., local[0] == list(listed).index(zone)]
        count = found.data[i, fields.INDEX["weight"]]
        assert np.all(count == pixels.shape[-1])
        np.testing.assert_allclose(
            found.data[i, fields.INDEX["sum"]], pixels.sum(axis=-1), rtol=1e-12
        )
