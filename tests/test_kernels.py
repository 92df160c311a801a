"""The compiled kernels: prepared as the runs call them, announced when compiled,
one moments kernel per raster dtype, exact for every one."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from zonal_dask.labels.sources import ChunkLabels
from zonal_dask.reduce.moments import chunk_moments, kernel_array, kernel_dtype
from zonal_dask.run.kernels import (
    ANNOUNCEMENT,
    FAMILIES,
    KERNEL_DTYPES,
    kernels_for,
    prepare_kernels,
)

from .background import Background, selected
from .package_copy import unbuilt_copy
from .synth import make_grid, voronoi_zones, zones_frame


def _python(code: str, *args: object, env: dict | None = None):
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )


# the sample and the first run's numba cache, made when the tests are collected
DIRECTORY = tempfile.TemporaryDirectory(prefix="kernels-")
FIRST_RUN, SIGNATURES_RUN = Background(), Background()
FIRST_TEST = "test_a_first_run_announces_the_compile_before_it_and_a_second_does_not"
SIGNATURES_TEST = "test_prepared_kernels_are_the_ones_every_route_and_dtype_calls"


def start_in_background(items) -> None:
    """A first run compiles every kernel (a minute), a second loads them all:
    both are started with the session, in processes of their own."""
    if selected(items, FIRST_TEST):
        _start_first_run()
    if selected(items, SIGNATURES_TEST):
        _start_signatures_run()


@functools.cache
def _sample() -> dict[str, Path]:
    """A small raster and zones, polygons and lines, on disk."""
    import shapely

    path = Path(DIRECTORY.name)
    grid = make_grid((30, 40), seed=41)
    polygons = voronoi_zones(grid, 5, seed=41)
    x0, y0, x1, y1 = grid.bounds()
    line = shapely.LineString([(x0, y0), (x1, y1)])
    zones, lines = path / "zones.gpkg", path / "lines.gpkg"
    zones_frame(polygons).to_file(zones, engine="pyogrio")
    zones_frame([line, *polygons[:1]]).to_file(lines, engine="pyogrio")
    weights = make_grid((30, 40), seed=42, nodata=None, loc=50.0, scale=1.0)
    return {
        "zones": zones,
        "lines": lines,
        "raster": grid.write(path / "grid.tif"),
        "weights": weights.write(path / "weights.tif"),
    }


# The end of numba's first compile of a kernel, printed by a listener
# registered before anything else: the announcement must come before it.
FIRST_COMPILE = """
import sys
from numba.core import event
class First(event.Listener):
    seen = False
    def on_start(self, ev):
        pass
    def on_end(self, ev):
        name = getattr(ev.data["dispatcher"].py_func, "__module__", "") or ""
        if name.startswith("zonal_dask.") and not First.seen:
            First.seen = True
            print("NUMBA COMPILED A KERNEL", file=sys.stderr, flush=True)
event.register("numba:compile", First())
from zonal_dask.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


@functools.cache
def _unbuilt() -> Path:
    return unbuilt_copy(Path(DIRECTORY.name) / "site")


def _first_run_command() -> tuple[list[str], dict[str, str]]:
    """The command line and the environment: an empty numba cache of its own,
    the package's sources without the build's compiled kernels."""
    sample, path = _sample(), Path(DIRECTORY.name)
    env = {
        **os.environ,
        "NUMBA_CACHE_DIR": str(path / "numba"),
        "PYTHONPATH": str(_unbuilt()),
    }
    args = [sample["zones"], sample["raster"], path / "out.csv", "--overwrite", "-q"]
    return [sys.executable, "-c", FIRST_COMPILE, *map(str, args)], env


def _start_first_run() -> None:
    command, env = _first_run_command()
    FIRST_RUN.start(command, env=env)


@pytest.mark.slow
def test_a_first_run_announces_the_compile_before_it_and_a_second_does_not():
    _start_first_run()  # unless already started
    code, _, first = FIRST_RUN.wait(timeout=240)
    assert code == 0, first
    assert first.count(ANNOUNCEMENT) == 1  # once, however many threads compile
    assert first.index(ANNOUNCEMENT) < first.index("NUMBA COMPILED A KERNEL")
    command, env = _first_run_command()
    second = _python(*command[2:], env=env).stderr
    assert ANNOUNCEMENT not in second
    assert "NUMBA COMPILED A KERNEL" not in second


SIGNATURES = """
import json, sys
import zonal_dask as zd
from zonal_dask.burn import prepare
from zonal_dask.coverage import fraction_kernel, line_walk
from zonal_dask.reduce import moment_kernel
from zonal_dask.run.kernels import FAMILIES, prepare_kernels
import numpy as np, rioxarray
kernels = [moment_kernel.moments, prepare.burn_claims, fraction_kernel.coverage,
           line_walk.line_lengths]
DTYPES = ["uint8", "int16", "uint32", "float32", "float64", "int64", "uint64"]
prepare_kernels(FAMILIES, DTYPES)
before = [sorted(map(str, k.signatures)) for k in kernels]
zones, lines, raster, weights = sys.argv[1:5]
da = rioxarray.open_rasterio(raster, chunks=(1, 16, 16)).squeeze("band", drop=True)
for dtype in DTYPES:
    zd.zonal_stats(zones, da.astype(dtype), ["count", "mean", "majority"])
zd.zonal_stats(zones, raster, ["mean"], all_touched=True)
zd.zonal_stats(zones, raster, ["mean"], weights="coverage")
zd.zonal_stats(lines, raster, ["sum"], weights="coverage")
zd.zonal_stats(zones, raster, ["mean"], weights=weights)
after = [sorted(map(str, k.signatures)) for k in kernels]
print(json.dumps({"before": before, "after": after}))
"""


def _start_signatures_run() -> None:
    sample = _sample()
    paths = [str(sample[name]) for name in ("zones", "lines", "raster", "weights")]
    SIGNATURES_RUN.start([sys.executable, "-c", SIGNATURES, *paths])


@pytest.mark.slow
def test_prepared_kernels_are_the_ones_every_route_and_dtype_calls():
    """After ``prepare_kernels``, no run compiles another specialization:
    the prepared signatures are the ones the chunk tasks call, for every
    dtype (each maps to a kernel dtype), rule and coverage kind."""
    _start_signatures_run()  # unless already started
    code, output, err = SIGNATURES_RUN.wait(timeout=240)
    assert code == 0, err
    seen = json.loads(output.splitlines()[-1])
    assert seen["after"] == seen["before"]
    moments, burn, coverage, lines = seen["before"]
    assert len(moments) == 7  # one per dtype
    assert len(burn) == len(coverage) == len(lines) == 1


def test_prepare_kernels_refuses_an_unknown_family():
    with pytest.raises(ValueError, match="unknown kernel families"):
        prepare_kernels(["moments", "histogram"])


def test_prepare_kernels_compiles_nothing_when_the_kernels_are_loaded():
    prepare_kernels(FAMILIES, ["float32"])
    heard: list[str] = []
    assert prepare_kernels(FAMILIES, ["float32"], announce=heard.append) == ()
    assert heard == []


def test_kernels_for_names_what_each_route_calls():
    from zonal_dask.api import request_for
    from zonal_dask.request import Request

    def families(**options):
        return kernels_for(request_for("zones.gpkg", **options))

    assert families() == ("moments", "burn")
    assert families(all_touched=True) == ("moments", "burn")
    assert families(weights="coverage") == ("moments", "coverage")
    assert families(small="touched") == ("moments", "burn")
    assert kernels_for(Request.build("label raster", ["mean"])) == ("moments",)


@pytest.mark.parametrize(
    ("dtype", "kernel"),
    [
        ("bool", "uint8"),
        ("uint8", "uint8"),
        ("int8", "int8"),
        ("uint16", "uint16"),
        ("int32", "int32"),
        ("uint32", "uint32"),
        ("int64", "int64"),
        ("uint64", "uint64"),
        ("float16", "float32"),
        ("float32", "float32"),
        ("float64", "float64"),
    ],
)
def test_every_dtype_goes_to_one_of_the_kernel_dtypes(dtype, kernel):
    assert kernel_dtype(np.dtype(dtype)) == np.dtype(kernel)
    assert kernel in KERNEL_DTYPES


@pytest.mark.parametrize("dtype", ["uint8", "int16", "uint32", "int32"])
def test_integers_keep_their_nodata_and_extremes(dtype):
    """The nodata value compared in the block's dtype, its extremes exact."""
    info = np.iinfo(dtype)
    values = np.array([[info.min, info.max, 7], [7, info.max, info.min]], dtype)
    labels = ChunkLabels(
        np.array([[[0, 0, 0], [1, 1, 1]]], np.int32),
        np.empty(0, np.int64),
        np.empty(0, np.int32),
        np.array([0, 1], np.int64),
    )
    got, _ = chunk_moments(values, labels, nodata=7)
    assert got.field("nodata").tolist() == [1.0, 1.0]
    assert got.field("min").tolist() == [float(info.min), float(info.min)]
    assert got.field("max").tolist() == [float(info.max), float(info.max)]
    assert got.field("sum").tolist() == [float(info.min) + info.max] * 2
    # a nodata value the dtype cannot hold matches no pixel
    other, _ = chunk_moments(values, labels, nodata=-1 if info.min == 0 else None)
    assert other.field("nodata").tolist() == [0.0, 0.0]


def test_a_read_only_block_takes_the_same_kernel():
    """A cluster hands tasks read-only arrays (deserialized buffers): numba
    would compile a specialization for them; the chunk step passes a
    writeable copy instead."""
    block = np.arange(6, dtype=np.float32).reshape(2, 3)
    block.flags.writeable = False
    same = kernel_array(block, np.float32)
    assert same.flags.writeable and same.flags.c_contiguous
    assert np.array_equal(same, block)
    fine = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert kernel_array(fine, np.float32) is fine
