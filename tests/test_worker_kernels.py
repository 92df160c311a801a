"""A fresh cluster worker loads the client's compiled kernels instead of
compiling them, when they were compiled for its CPU, numba and sources."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from zonal_dask.run.kernels import ANNOUNCEMENT, compiled_code, prepare_kernels

from .package_copy import unbuilt_copy
from .synth import make_grid, voronoi_zones, zones_frame

ROOT = Path(__file__).resolve().parents[1]

# unpacks the shipped code, prepares the kernels, sums a block per zone
WORKER = """
import json, pickle, sys
from zonal_dask.precompiled import unpack
from zonal_dask.run.kernels import prepare_kernels
with open(sys.argv[1], "rb") as f:
    taken = unpack(pickle.load(f))
compiled = prepare_kernels(sys.argv[2].split(","), ["float64"])
from tests.test_worker_kernels import block_sums
print(json.dumps({"taken": taken, "compiled": compiled, "sums": block_sums()}))
"""


def block_sums() -> list[float]:
    """Per-zone sums of a 3 x 4 float64 block over two zones, by the kernel."""
    from zonal_dask.labels.sources import ChunkLabels
    from zonal_dask.reduce.moments import chunk_moments

    values = np.arange(12, dtype=np.float64).reshape(3, 4) * 1.5
    labels = ChunkLabels(
        np.array([[[0, 0, 1, 1]] * 3], np.int32),
        np.empty(0, np.int64),
        np.empty(0, np.int32),
        np.array([0, 1], np.int64),
    )
    got, _ = chunk_moments(values, labels, nodata=None)
    return got.field("sum").tolist()


def _worker(shipped, families, tmp_path, **variables):
    """A fresh worker: the package's sources without the build's compiled
    kernels, and an empty numba cache; it imports this module from ROOT."""
    path = tmp_path / "shipped.pickle"
    path.write_bytes(pickle.dumps(shipped))
    cache = tmp_path / "numba"
    cache.mkdir()
    site = os.pathsep.join([str(unbuilt_copy(tmp_path / "site")), str(ROOT)])
    env = {**os.environ, **variables, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": site}
    done = subprocess.run(
        [sys.executable, "-c", WORKER, path, ",".join(families)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return json.loads(done.stdout.splitlines()[-1]), done.stderr


@pytest.mark.slow  # a fresh process
def test_a_fresh_process_loads_the_shipped_kernels_and_compiles_none(tmp_path):
    families = ("moments", "burn")
    prepare_kernels(families, ["float64"])  # loaded, or compiled once, here
    shipped = compiled_code(families, ["float64"])
    names = ["_take", "burn_claims", "merge_central", "merge_rows", "moments"]
    assert sorted(s[1] for s in shipped) == names
    got, stderr = _worker(shipped, families, tmp_path)
    assert got["taken"] == 5
    assert got["compiled"] == []
    assert ANNOUNCEMENT not in stderr
    assert got["sums"] == block_sums() == [40.5, 58.5]


def _for_this_cpu(shipped):
    """``shipped`` keyed as this CPU's own compile keys it: the build's code
    (for any CPU of the architecture) relabelled, numba's left as it is."""
    from numba.core.registry import cpu_target

    this_cpu = cpu_target.target_context.codegen().magic_tuple()
    relabelled = []
    for *head, key, code in shipped:
        signature, _, bytecode = pickle.loads(key)
        relabelled.append((*head, pickle.dumps((signature, this_cpu, bytecode)), code))
    return relabelled


@pytest.mark.slow  # a fresh process
def test_code_compiled_for_another_cpu_is_not_taken(tmp_path):
    prepare_kernels(["moments"], ["float64"])
    shipped = _for_this_cpu(compiled_code(["moments"], ["float64"]))
    got, stderr = _worker(shipped, ["moments"], tmp_path, NUMBA_CPU_NAME="generic")
    assert got["taken"] == 0
    # the kernels, and the compiled functions they call, compiled afresh
    assert "zonal_dask.reduce.moment_kernel.moments" in got["compiled"]
    assert "zonal_dask.reduce.moment_merge.merge_rows" in got["compiled"]
    assert "zonal_dask.reduce.moment_merge.merge_central" in got["compiled"]
    assert all(
        name.startswith(
            ("zonal_dask.reduce.moment_kernel.", "zonal_dask.reduce.moment_merge.")
        )
        for name in got["compiled"]
    )
    assert ANNOUNCEMENT in stderr


def test_only_the_requested_dtypes_are_shipped():
    prepare_kernels(["moments"], ["float32", "float64"])
    shipped = compiled_code(["moments"], ["float32"])
    keys = [pickle.loads(s[4]) for s in shipped if s[1] == "moments"]
    assert [str(key[0][0].dtype) for key in keys] == ["float32"]
    # the merge's kernels take float64 partials whatever the raster's dtype
    assert sorted(s[1] for s in shipped if s[1] != "moments") == [
        "merge_central",
        "merge_rows",
    ]


# A client whose numba cache is warm, its one worker process started with an
# empty one: after a run, the worker's cache holds none of the run's kernels
# (it compiled none of them); the table is the local run's.
CLUSTER = """
import json, os, sys
from pathlib import Path
import zonal_dask as zd
from zonal_dask.run.kernels import prepare_kernels
zones, raster, cache = sys.argv[1:4]
prepare_kernels(["moments", "burn"], ["float32"])
local = zd.zonal_stats(zones, raster, ["count", "mean", "std"])
os.environ["NUMBA_CACHE_DIR"] = cache  # read by the worker's numba, not ours
from distributed import Client, LocalCluster
with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                  dashboard_address=None) as cluster, Client(cluster) as client:
    remote = zd.zonal_stats(zones, raster, ["count", "mean", "std"])
saved = sorted(p.name for p in Path(cache).rglob("*.nbi"))
print(json.dumps({"same": local.equals(remote), "saved": saved}))
"""


@pytest.mark.slow
def test_a_fresh_cluster_worker_compiles_none_of_the_runs_kernels(tmp_path):
    grid = make_grid((40, 50), seed=44)
    zones = tmp_path / "zones.gpkg"
    zones_frame(voronoi_zones(grid, 6, seed=44)).to_file(zones, engine="pyogrio")
    raster = grid.write(tmp_path / "grid.tif")
    cache = tmp_path / "worker-numba"
    cache.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", CLUSTER, zones, raster, cache],
        capture_output=True,
        text=True,
        check=True,
    )
    got = json.loads(done.stdout.splitlines()[-1])
    assert got["same"]
    # gather: a task's zones; merge_*: the merge tasks'
    kernels = ("moments", "burn_claims", "gather", "merge_rows", "merge_central")
    assert not [n for n in got["saved"] if any(k in n for k in kernels)]
