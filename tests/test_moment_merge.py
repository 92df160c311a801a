"""The compiled merge of the moments' partials (``reduce/moment_merge.py``)
gives the bits of the numpy merge it replaced (``tests/numpy_merge.py``):
on the chunk step's own partials and on adversarial ones (hundreds of parts
a zone, NaN, infinities, magnitudes from 1e-300 to 1e300, zero and NaN
weights, signed zeros and ties in the extremes), for 2-D and planes."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from zonal_dask.labels.sources import ChunkLabels
from zonal_dask.reduce import moment_kernel, moment_merge
from zonal_dask.reduce.moments import N_FIELDS, Moments, chunk_moments, merge
from zonal_dask.statistics.fields import INDEX, MERGES, PARTIAL_FIELDS

from .numpy_merge import numpy_merge
from .package_copy import RECORD_COMPILES, unbuilt_copy


def assert_same_bits(found: Moments, expected: Moments) -> None:
    np.testing.assert_array_equal(found.zone, expected.zone)
    assert found.data.shape == expected.data.shape
    assert found.data.flags.c_contiguous
    differ = found.data.view(np.uint64) != expected.data.view(np.uint64)
    both_nan = np.isnan(found.data) & np.isnan(expected.data)
    where = np.argwhere(differ & ~both_nan)
    assert where.size == 0, (
        f"{len(where)} values differ, first at {where[0].tolist()} "
        f"({PARTIAL_FIELDS[where[0][1]].name}): {found.data[tuple(where[0])]!r} "
        f"against {expected.data[tuple(where[0])]!r}"
    )


def chunk_parts(rng, n_chunks, n_zones, loc, planes=None, weighted=False):
    """The chunk step's partials of ``n_chunks`` random 12 x 10 blocks whose
    pixels belong to random zones (some unclaimed), values ``loc`` + noise."""
    parts, weighted_parts = [], []
    for c in range(n_chunks):
        shape = (12, 10) if planes is None else (planes, 12, 10)
        values = loc + rng.normal(0, 3, shape)
        values[rng.random(shape) < 0.05] = -9999.0
        ids = rng.integers(-1, n_zones, (1, 12, 10)).astype(np.int32)
        present = np.unique(ids[ids >= 0])
        local = np.searchsorted(present, ids).astype(np.int32)
        local[ids < 0] = -1
        labels = ChunkLabels(
            local,
            np.empty(0, np.int64),
            np.empty(0, np.int32),
            present.astype(np.int64),
        )
        weights = rng.random((12, 10)) if weighted else None
        options = moment_kernel.POSITIONS | moment_kernel.HIGHER
        found, by_weight = chunk_moments(
            values, labels, -9999.0, weights, (0, c * 12, 0), options
        )
        parts.append(found)
        weighted_parts.append(by_weight)
    return parts, weighted_parts


@pytest.mark.parametrize("loc", [0.0, 100.0, 1e8, -1e12])
@pytest.mark.parametrize("planes", [None, 3])
def test_the_chunk_steps_partials_merge_to_numpys_bits(loc, planes):
    rng = np.random.default_rng(int(abs(loc)) % 1000 + (planes or 0))
    parts, weighted = chunk_parts(rng, 40, 30, loc, planes, weighted=True)
    for group in (parts[:2], parts[:8], parts, weighted):
        assert_same_bits(merge(group), numpy_merge(group))


def adversarial_parts(rng, n_parts, n_zones, planes=None):
    """Partials of any values a field can hold, and some it should not."""
    parts = []
    for _ in range(n_parts):
        size = int(rng.integers(0, n_zones + 1))
        zone = np.sort(rng.choice(n_zones, size, replace=False)).astype(np.int64)
        shape = (size, N_FIELDS) + (() if planes is None else (planes,))
        magnitude = 10.0 ** rng.choice([-300, -8, 0, 3, 8, 16, 300], shape)
        data = rng.standard_normal(shape) * magnitude
        counts = rng.choice([0.0, 0.0, 1.0, 3.0, 1e-9, 7.5, 1e6], shape)
        for name in ("weight", "posinf", "neginf", "nan", "nodata", "undefined"):
            data[:, INDEX[name]] = counts[:, INDEX[name]]
        ties = rng.choice([-0.0, 0.0, 1.0, -1.0, 2.5, 1e300, -np.inf, np.inf], shape)
        for name in ("min", "max"):
            data[:, INDEX[name]] = ties[:, INDEX[name]]
        at = rng.choice([-1.0, 0.0, 5.0, 7.0, 123456789.0], shape)
        odd = rng.random(shape)
        data[odd < 0.01] = np.nan
        data[(odd >= 0.01) & (odd < 0.02)] = np.inf
        data[(odd >= 0.02) & (odd < 0.03)] = -np.inf
        data[(odd >= 0.03) & (odd < 0.04)] = -0.0
        # a position is a grid index or -1 (never -0.0, whose ties with 0.0
        # numpy's minimum breaks either way depending on its loop)
        for name in ("min_at", "max_at"):
            data[:, INDEX[name]] = np.where(
                np.isnan(data[:, INDEX[name]]), -1.0, at[:, INDEX[name]]
            )
        parts.append(Moments(zone, data))
    return parts


@pytest.mark.parametrize("n_parts", [2, 3, 8, 9, 17, 130, 300, 1000])
@pytest.mark.parametrize("planes", [None, 2])
def test_adversarial_partials_merge_to_numpys_bits(n_parts, planes):
    # numpy sums 8 or more parts pairwise, more than 128 recursively
    rng = np.random.default_rng(n_parts * 10 + (planes or 0))
    with np.errstate(all="ignore"):
        for n_zones in (1, 5, 40):
            parts = adversarial_parts(rng, n_parts, n_zones, planes)
            assert_same_bits(merge(parts), numpy_merge(parts))


def test_empty_single_and_none_parts_are_passed_through():
    rng = np.random.default_rng(5)
    (one,) = adversarial_parts(rng, 1, 4)
    empty = Moments.empty()
    assert merge([None, empty]).zone.size == 0
    assert merge([None, one, empty]) is one
    with np.errstate(all="ignore"):
        assert_same_bits(merge([one, None, one]), numpy_merge([one, one]))


def test_planes_merge_as_each_plane_alone():
    rng = np.random.default_rng(6)
    parts, _ = chunk_parts(rng, 9, 12, 1e8, planes=4)
    whole = merge(parts)
    for c in range(4):
        alone = merge([Moments(p.zone, p.data[..., c]) for p in parts])
        np.testing.assert_array_equal(whole.data[..., c], alone.data)


def test_every_fields_merge_kind_is_the_kernels():
    assert set(moment_merge.KIND_CODES) == set(MERGES)
    kinds = [moment_merge.KIND_CODES[f.merge] for f in PARTIAL_FIELDS]
    assert moment_merge.FIELD_KINDS.tolist() == kinds
    orders = [f.order for f in PARTIAL_FIELDS if f.merge == "central"]
    assert moment_merge.HIGHEST_ORDER == max(orders)


def test_a_field_of_an_existing_kind_needs_no_kernel_change():
    # the kernels read each field's merge from the arrays the registry gives:
    # one more "add" and one more "max" field are merged as their kinds say
    rng = np.random.default_rng(8)
    with np.errstate(all="ignore"):
        parts = adversarial_parts(rng, 9, 6, planes=2)
    extra = [rng.normal(size=(len(p.zone), 2, 2)) for p in parts]
    data = np.concatenate(
        [np.concatenate([p.data, x], axis=1) for p, x in zip(parts, extra, strict=True)]
    )
    zone = np.concatenate([p.zone for p in parts])
    order = np.argsort(zone, kind="stable")
    starts = np.flatnonzero(np.diff(zone[order], prepend=-1) != 0)
    codes = moment_merge.KIND_CODES
    kinds = np.append(moment_merge.FIELD_KINDS, [codes["add"], codes["max"]])
    partners = np.append(moment_merge.FIELD_PARTNERS, [-1, -1])
    out = np.empty((starts.size, N_FIELDS + 2, 2))
    deviation = np.empty((zone.size, 2))
    with np.errstate(all="ignore"):
        moment_merge.merge_rows(
            data,
            order,
            starts,
            kinds,
            partners,
            moment_merge.WEIGHT,
            moment_merge.REFERENCE,
            out,
            deviation,
        )
        expected = numpy_merge(parts)
    added = np.add.reduceat(data[order, N_FIELDS], starts, axis=0)
    largest = np.maximum.reduceat(data[order, N_FIELDS + 1], starts, axis=0)
    np.testing.assert_array_equal(out[:, N_FIELDS], added)
    np.testing.assert_array_equal(out[:, N_FIELDS + 1], largest)
    for name in ("weight", "sum", "carry", "min", "max_at", "mean"):
        np.testing.assert_array_equal(
            out[:, INDEX[name]], expected.data[:, INDEX[name]], err_msg=name
        )


# the package's kernels numba compiles, in order, when the moments are prepared
PREPARE_ORDER = (
    RECORD_COMPILES
    + """
from zonal_dask.run.kernels import prepare_kernels
prepare_kernels(["moments"], ["float64"])
print(" ".join(name.rsplit(".", 1)[1] for name in compiled))
"""
)


@pytest.mark.slow  # a fresh process compiles the moments' kernels
def test_the_merges_kernels_are_prepared_before_the_chunk_kernel(tmp_path):
    # a run of one chunk never merges: it waits for the chunk kernel, then may
    # end before a daemon thread caches what it prepares after it
    env = {
        **os.environ,
        "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
        "PYTHONPATH": str(unbuilt_copy(tmp_path / "site")),
    }
    done = subprocess.run(
        [sys.executable, "-c", PREPARE_ORDER],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=tmp_path,
    )
    order = done.stdout.split()
    assert "merge_rows" in order and "merge_central" in order
    assert max(order.index("merge_rows"), order.index("merge_central")) < order.index(
        "moments"
    )
