"""Process state of a run: scoped to the run and safe across threads.

Two runs overlapping in two threads, a caller's own GDAL cache size, the
collector while computing, GDAL's endpoint settings in the threads that
compute, and no warnings filter left behind.
"""

from __future__ import annotations

import gc
import threading
import warnings

import numpy as np
import pytest
import rasterio
import rioxarray  # noqa: F401  (the .rio accessor of the synthetic rasters)
from rasterio.env import get_gdal_config

import zonal_dask as zd
from zonal_dask.run import process_state

from .synth import make_grid, voronoi_zones, zones_frame

BOUND = process_state.GDAL_CACHE_MB * 2**20
WAIT = 60  # seconds: only a broken run waits that long


@pytest.fixture(scope="module")
def small_run():
    grid = make_grid((40, 50), seed=7)
    return zones_frame(voronoi_zones(grid, 4, seed=7)), grid.to_dataarray()


def _run_seeing(small_run, seen, first_call=None):
    """A run whose custom statistic records what the computing thread sees."""
    zones, raster = small_run
    called = []

    def look(values):
        if not called:
            called.append(True)
            if first_call is not None:
                first_call()
        seen.append(
            {
                "cache": get_gdal_config("GDAL_CACHEMAX"),
                "gc": gc.get_threshold()[0],
                "endpoint": get_gdal_config("AWS_S3_ENDPOINT"),
            }
        )
        return float(np.size(values))

    return zd.zonal_stats(zones, raster, {"look": look, "count": "count"})


def test_two_runs_overlapping_in_threads_leave_the_process_as_found(small_run):
    before = (get_gdal_config("GDAL_CACHEMAX"), gc.get_threshold(), warnings.filters[:])
    assert before[0] > BOUND  # GDAL's default: 5% of RAM
    a_inside, b_inside, a_done = threading.Event(), threading.Event(), threading.Event()
    seen_a: list[dict] = []
    seen_b: list[dict] = []
    errors: list[BaseException] = []

    def first_a():
        a_inside.set()
        assert b_inside.wait(WAIT)

    def first_b():
        b_inside.set()
        assert a_done.wait(WAIT)  # b computes on after a has ended

    def run(seen, first):
        try:
            _run_seeing(small_run, seen, first)
        except BaseException as error:  # reported by the test thread
            errors.append(error)
            a_inside.set(), b_inside.set(), a_done.set()

    a = threading.Thread(target=run, args=(seen_a, first_a))
    b = threading.Thread(target=run, args=(seen_b, first_b))
    a.start()
    assert a_inside.wait(WAIT)
    b.start()
    a.join(WAIT)
    a_done.set()
    b.join(WAIT)
    assert not errors, errors
    assert seen_a and seen_b
    # bounded while either computes, b's bound outlives a's end
    assert {s["cache"] for s in seen_a + seen_b} == {BOUND}
    # collecting while computing: the collector pauses only for planning
    assert all(s["gc"] > 0 for s in seen_a + seen_b)
    after = (get_gdal_config("GDAL_CACHEMAX"), gc.get_threshold(), warnings.filters[:])
    assert after == before


def test_a_callers_own_cache_size_is_kept_while_and_after_a_run(small_run):
    seen: list[dict] = []
    mine = 1_260_000_000
    with rasterio.Env(GDAL_CACHEMAX=mine):
        _run_seeing(small_run, seen)
        assert get_gdal_config("GDAL_CACHEMAX") == mine
    assert seen and {s["cache"] for s in seen} == {mine}


def test_a_cache_size_from_the_environment_is_kept(small_run, monkeypatch):
    current = get_gdal_config("GDAL_CACHEMAX")
    monkeypatch.setenv("GDAL_CACHEMAX", "1200")
    seen: list[dict] = []
    _run_seeing(small_run, seen)
    assert seen and {s["cache"] for s in seen} == {current}
    assert get_gdal_config("GDAL_CACHEMAX") == current
    assert process_state.gdal_settings().get("GDAL_CACHEMAX") is None


def test_endpoint_settings_reach_the_computing_threads_of_a_run_in_a_thread(
    small_run, monkeypatch
):
    # a run started from a thread: GDAL options set there are that thread's
    # own, so its computing threads must be given them
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    seen: list[dict] = []
    errors: list[BaseException] = []

    def run():
        try:
            _run_seeing(small_run, seen)
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(WAIT)
    assert not errors, errors
    assert seen and {s["endpoint"] for s in seen} == {"127.0.0.1:1"}
    assert get_gdal_config("AWS_S3_ENDPOINT") is None  # nothing left behind


def test_planning_pauses_the_collector_and_restores_it():
    thresholds = gc.get_threshold()
    with process_state.planning():
        assert gc.get_threshold()[0] == 0
    assert gc.get_threshold() == thresholds


def test_the_command_s_arrow_allocations_come_from_the_c_heap_and_are_restored():
    import pyarrow as pa

    before = pa.default_memory_pool().backend_name
    with process_state.command_scope():
        assert pa.default_memory_pool().backend_name == "system"
        assert pa.array(np.arange(10)).to_numpy().sum() == 45
    assert pa.default_memory_pool().backend_name == before


# In a fresh process: free a 16 MB block (glibc then raises its threshold for
# mapping blocks apart from the heap to 16 MB, unless it is fixed), then
# allocate 4 MB and say whether that block was mapped (``mallinfo2``).
_MAPPED_PROBE = """
import ctypes, sys
import numpy as np

class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks "
        "keepcost").split()]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info

def probe():
    big = np.ones(1 << 21)  # 16 MB
    del big
    before = libc.mallinfo2().hblkhd
    block = np.ones(1 << 19)  # 4 MB
    print("mapped" if libc.mallinfo2().hblkhd - before >= block.nbytes else "heap")
    return 0
"""


def _probe(code: str, env_extra: dict[str, str] | None = None) -> str:
    import os
    import subprocess
    import sys

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
    }
    env.update(env_extra or {})
    done = subprocess.run(
        [sys.executable, "-c", _MAPPED_PROBE + code],
        capture_output=True,
        text=True,
        env=env,
        timeout=WAIT,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.skipif(
    not __import__("sys").platform.startswith("linux"), reason="glibc's allocator"
)
def test_the_console_script_keeps_large_blocks_mapped_apart_from_the_heap():
    # the control: glibc's own growing threshold puts the 4 MB in the heap
    assert _probe("probe()") == "heap"
    console = "import zonal_dask.cli.main as cli\ncli.main = probe\ncli.console()\n"
    assert _probe(console) == "mapped"
    # a threshold the environment chose is left alone
    assert _probe(console, {"MALLOC_MMAP_THRESHOLD_": str(32 << 20)}) == "heap"
