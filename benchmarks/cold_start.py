"""A first run against a warm one, whole processes, numba's cache empty then full.

    python benchmarks/cold_start.py [demo] [small] [worker] [kernels] [--dir DIR]

Each case runs twice with ``NUMBA_CACHE_DIR`` set to a fresh directory: the
first run finds the cache empty (a fresh install, a fresh cluster pod), the
second finds what the first compiled. Printed per run: wall seconds, CPU
seconds of the process, and whether the announcement line was printed.

What is measured is the install of the Python running this script: a built
install (``pip install .``) loads the kernels its build compiled, whatever
``NUMBA_CACHE_DIR`` (``zonal_dask/precompiled.py``); a source tree
(``PYTHONPATH=.``) or an editable install compiles them into the empty cache.

* ``demo``: ``zonal-dask demo DIR`` (a 2048² float32 raster, 300 zones).
* ``small``: a rasterstats-sized case, ``zonal-dask zones.gpkg raster.tif
  out.csv`` over 1024² and 200 zones (uint16: the moments kernel of uint16).
* ``worker``: a ``dask worker`` process (one thread, no nanny) joins a local
  scheduler; the client (whose own cache is warm) runs the small case on it;
  printed is the CPU the worker spent on the run, i.e. on its first tasks.
  The run gives the worker the client's compiled kernels (``run/workers.py``):
  from a source tree, that is what spares the worker compiling them.
* ``kernels``: the CPU of a process compiling one kernel family
  (``prepare_kernels([family], ["float32"])``) into an empty cache, and of
  one importing the same modules only (its baseline).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ANNOUNCEMENT = "preparing compiled kernels, first run only"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(command: list[str], env: dict[str, str]) -> dict:
    """Wall and CPU seconds of one whole process, and its announcement."""
    cpu, start = _children_cpu(), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return {
        "wall": round(wall, 2),
        "cpu": round(_children_cpu() - cpu, 2),
        "announced": ANNOUNCEMENT in done.stderr,
    }


def cold_and_warm(command: list[str], cache: Path) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    return {"cold": run(command, env), "warm": run(command, env)}


def small_case(directory: Path) -> tuple[Path, Path]:
    """200 zones over a 1024² uint16 raster (the demo's generator, rescaled)."""
    import numpy as np
    import rasterio

    from zonal_dask.cli.demo import make_sample

    zones, raster = make_sample(directory, size=1024, n_zones=200, seed=3)
    with rasterio.open(raster) as src:
        profile = src.profile | {"dtype": "uint16", "nodata": 0}
        values = np.clip(src.read(1), 0, None).astype("uint16")
    uint16 = directory / "raster_uint16.tif"
    with rasterio.open(uint16, "w", **profile) as dst:
        dst.write(values, 1)
    return zones, uint16


WORKER_RUN = """
import json, sys, time
import psutil
from distributed import Client
import zonal_dask as zd
scheduler_file, pid, zones, raster = sys.argv[1:5]
worker = psutil.Process(int(pid))
with Client(scheduler_file=scheduler_file) as client:
    client.wait_for_workers(1)
    time.sleep(1.0)  # let the worker settle after joining
    before = sum(worker.cpu_times()[:2])
    start = time.perf_counter()
    zd.zonal_stats(zones, raster, ["count", "mean", "std"])
    wall = time.perf_counter() - start
    print(json.dumps({"worker_cpu": round(sum(worker.cpu_times()[:2]) - before, 2),
                      "wall": round(wall, 2)}))
"""


def worker_first_task(zones: Path, raster: Path, cache: Path, work: Path) -> dict:
    """CPU seconds a fresh ``dask worker`` spends on its first run."""
    bin_dir = Path(sys.executable).parent
    scheduler_file = work / "scheduler.json"
    scheduler_file.unlink(missing_ok=True)
    scheduler = subprocess.Popen(
        [bin_dir / "dask", "scheduler", "--scheduler-file", scheduler_file],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    worker = None
    try:
        while not scheduler_file.exists():
            time.sleep(0.1)
        worker = subprocess.Popen(
            [
                *(bin_dir / "dask", "worker", "--scheduler-file", scheduler_file),
                *("--nthreads", "1", "--no-nanny", "--memory-limit", "0"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        code = [sys.executable, "-c", WORKER_RUN, scheduler_file, worker.pid]
        done = subprocess.run(
            [*map(str, code), str(zones), str(raster)],
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(done.stdout.splitlines()[-1])
    finally:
        for process in (worker, scheduler):
            if process is not None:
                process.terminate()
                process.wait()


IMPORTS = (
    "import numpy, shapely, zonal_dask.run.kernels, zonal_dask.reduce.moments, "
    "zonal_dask.burn.rules, zonal_dask.coverage.weights"
)


def kernel_families(work: Path) -> dict:
    """CPU seconds to compile each family into an empty cache, imports included."""
    from zonal_dask.run.kernels import FAMILIES

    python = [sys.executable, "-c"]
    out = {}
    for family in ("imports only", *FAMILIES):
        code = IMPORTS
        if family != "imports only":
            code += "; from zonal_dask.run.kernels import prepare_kernels"
            code += f"; prepare_kernels([{family!r}], ['float32'])"
        env = {**os.environ, "NUMBA_CACHE_DIR": tempfile.mkdtemp(dir=work)}
        out[family] = run([*python, code], env)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", default=["demo", "small", "worker"])
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="cold_start_"))
    work.mkdir(parents=True, exist_ok=True)
    cli = str(Path(sys.executable).parent / "zonal-dask")
    results: dict[str, dict] = {}
    if "demo" in args.cases:
        cache = Path(tempfile.mkdtemp(dir=work))
        results["demo"] = cold_and_warm([cli, "demo", str(work / "demo")], cache)
    if {"small", "worker"} & set(args.cases):
        zones, raster = small_case(work / "small")
    if "small" in args.cases:
        cache = Path(tempfile.mkdtemp(dir=work))
        out = work / "small" / "out.csv"
        command = [cli, str(zones), str(raster), str(out), "--overwrite", "-q"]
        results["small"] = cold_and_warm(command, cache)
    if "worker" in args.cases:
        cache = Path(tempfile.mkdtemp(dir=work))
        results["worker"] = {
            "cold": worker_first_task(zones, raster, cache, work),
            "warm": worker_first_task(zones, raster, cache, work),
        }
    if "kernels" in args.cases:
        results["kernels"] = kernel_families(work)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
