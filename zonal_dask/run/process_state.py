"""Process state a run changes, scoped to the run and safe across threads.

Importing zonal_dask changes nothing in the process: no environment variable,
no exit hook, no warnings filter. A run changes only what it must, for as long
as it must, and two runs overlapping in two threads leave the process as they
found it:

- Python's cyclic collector is paused while a run plans (``planning``), not
  while it computes; pauses nest across threads (a count) and the last one
  out restores the thresholds.
- GDAL's block cache, one per process, is bounded while runs compute
  (``gdal_scope``), counted the same way, unless the caller chose its size
  (``GDAL_CACHEMAX`` in the environment or in the calling thread's
  ``rasterio.Env``): a caller's own choice is never changed.
- GDAL's endpoint settings implied by ``AWS_ENDPOINT_URL``, and the GDAL and
  AWS options a run is given (``gdal_options=``, held for the run's duration
  in a context variable, ``options_given``), are given to the thread that
  plans in a ``rasterio.Env`` and to the threads that compute, per thread
  (``task_thread_settings``), never to the whole process.

The command line, whose process is its own, pauses the collector for its
whole run (``command_scope``), may freeze it at exit and leaves by
``os._exit``; its console script keeps glibc's threshold for mapping large
blocks fixed (``large_blocks_mapped``) for the whole process.
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar

# GDAL keeps decoded blocks in a cache of 5% of RAM by default; a pass that
# reads each block once fills it with blocks nobody reads again: 16000² peaked
# at 1.6 GB with it, 0.63 GB with 64 MB, 0.57 GB with 16 MB, in the same time.
GDAL_CACHE_MB = 16

_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_thresholds = gc.get_threshold()

_cache_lock = threading.Lock()
_cache_users = 0
_cache_before: int | None = None  # GDAL's cache size before the first user bounded it

# the GDAL and AWS options given to the run in progress in this context
# (``gdal_options=``): a context variable, so that two runs in two threads
# each see their own, and nothing is left once a run ends
_given: ContextVar[tuple[tuple[str, str], ...]] = ContextVar(
    "zonal_dask_gdal_options", default=()
)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector; re-entrant and thread-safe.

    Zones become hundreds of thousands of small lists and dicts for GDAL, and
    each such burst of allocations makes the collector walk every live object
    again and again: 1.4 s of a 4.3 s run with 50,000 zones. None of those
    objects forms a cycle, so nothing is lost by not collecting meanwhile.
    A zero threshold, not ``gc.disable()``: dask's array slicing re-enables
    the collector on its way out (``dask.utils.disable_gc``).
    """
    global _gc_pauses, _gc_thresholds
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_thresholds = gc.get_threshold()
            gc.set_threshold(0)
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0:
                gc.set_threshold(*_gc_thresholds)


@contextmanager
def options_given(options: tuple[tuple[str, str], ...] | None) -> Iterator[None]:
    """The GDAL and AWS ``options`` of a run (``(KEY, value)`` pairs checked by
    ``io.remote.check_gdal_options``) for the calls inside the block, added
    to those of an enclosing block: its planning's ``rasterio.Env``, its
    computing threads and its workers get them (``endpoint_settings``)."""
    if not options:
        yield
        return
    token = _given.set(tuple({**dict(_given.get()), **dict(options)}.items()))
    try:
        yield
    finally:
        _given.reset(token)


@contextmanager
def endpoint_scope() -> Iterator[None]:
    """GDAL's endpoint settings (``endpoint_settings``) for this thread inside
    the block: in a ``rasterio.Env``, whose settings are the thread's own in
    any thread but the main one, and restored when the block ends."""
    import rasterio

    settings = endpoint_settings()
    with rasterio.Env(**settings) if settings else nullcontext():
        yield


@contextmanager
def planning() -> Iterator[None]:
    """The state of planning a run in this thread: zones read, moved to pixel
    space, split into chunk tasks, the graph built, which is what allocates
    the many small objects (the collector paused, ``gc_paused``), and the
    raster opened (GDAL's endpoint settings, ``endpoint_scope``)."""
    with gc_paused(), endpoint_scope():
        yield


# a whole time series, planning and computing in turn: the endpoint settings;
# planning and computing add their own
run_scope = endpoint_scope


@contextmanager
def command_scope() -> Iterator[None]:
    """The state of the command line's one run: its process is its own, one
    run at a time, so the collector stays paused from reading the options to
    writing the output (the zones' rows, the features written back), as
    ``planning`` pauses it for a library call's planning only; and Arrow
    allocates from the C heap (``arrow_on_system_heap``)."""
    with gc_paused(), endpoint_scope(), arrow_on_system_heap():
        yield


@contextmanager
def arrow_on_system_heap() -> Iterator[None]:
    """Arrow's allocations from the C heap inside the block (its default
    pool, mimalloc, keeps freed memory for itself: the zones' WKB read, the
    text of a table written). Writing a 50,000-row CSV after 4000² pixels
    peaked at 495 MB with mimalloc, 469 MB with the C heap."""
    import pyarrow as pa

    before = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(before)


def caller_chose_cache() -> bool:
    """Whether the caller set GDAL's block cache size: ``GDAL_CACHEMAX`` in
    the environment or in this thread's ``rasterio.Env``."""
    if "GDAL_CACHEMAX" in os.environ:
        return True
    from rasterio.env import getenv, hasenv

    return hasenv() and "GDAL_CACHEMAX" in getenv()


def endpoint_settings() -> dict[str, str]:
    """GDAL's settings for the run in progress: the endpoint implied by
    ``AWS_ENDPOINT_URL`` (io/remote.py; the run's own ``AWS_ENDPOINT_URL``
    option first), then the options the run was given, which win."""
    from ..io.remote import gdal_options

    given = dict(_given.get())
    urls = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_S3_ENDPOINT")
    implied = gdal_options(given if any(u in given for u in urls) else os.environ)
    return {**implied, **given}


def gdal_settings() -> dict[str, str]:
    """GDAL's settings for the worker processes a run starts, as environment
    variables: the bounded block cache (in MB) unless the caller set one, the
    endpoint implied by ``AWS_ENDPOINT_URL`` and the run's options."""
    settings = endpoint_settings()
    if "GDAL_CACHEMAX" not in os.environ:  # never an option (io/remote.py)
        settings["GDAL_CACHEMAX"] = str(GDAL_CACHE_MB)
    return settings


@contextmanager
def cache_bounded() -> Iterator[None]:
    """GDAL's block cache at most ``GDAL_CACHE_MB`` inside the block.

    The cache is the process's, so overlapping runs count themselves in: the
    first one in bounds it, the last one out restores the size it found.
    A caller who chose the size (``caller_chose_cache``) keeps it, and so
    does a cache already smaller than the bound.
    """
    global _cache_users, _cache_before
    from rasterio.env import get_gdal_config, set_gdal_config

    bound = GDAL_CACHE_MB * 2**20
    with _cache_lock:
        if _cache_users == 0:
            size = int(get_gdal_config("GDAL_CACHEMAX"))
            if size > bound and not caller_chose_cache():
                _cache_before = size
                set_gdal_config("GDAL_CACHEMAX", bound)  # GDALSetCacheMax64
            else:
                _cache_before = None
        _cache_users += 1
    try:
        yield
    finally:
        with _cache_lock:
            _cache_users -= 1
            if _cache_users == 0 and _cache_before is not None:
                set_gdal_config("GDAL_CACHEMAX", _cache_before)
                _cache_before = None


def task_thread_settings(settings: dict[str, str]) -> None:
    """Give GDAL ``settings`` in this thread only: the initializer of the
    threads a run computes in (``scheduler.compute``). rasterio sets a
    thread's own GDAL options in any thread but the main one, which a pool's
    threads never are; they end with the pool."""
    from rasterio.env import set_gdal_config

    assert threading.current_thread() is not threading.main_thread()
    for key, value in settings.items():
        set_gdal_config(key, value)


@contextmanager
def gdal_scope() -> Iterator[None]:
    """GDAL's settings for computing in this thread: the block cache bounded
    (``cache_bounded``) and the endpoint settings in a ``rasterio.Env``,
    which tasks run in this thread (dask's synchronous scheduler) see."""
    with cache_bounded(), endpoint_scope():
        yield


# blocks from this size on are mapped apart from glibc's heaps (a 1024²
# chunk's arrays are 4 MB); 128 KiB (glibc's starting value) peaked 5 MB
# lower at 4000² x 50,000 zones, for more of the system time mapping costs
MMAP_THRESHOLD = 1 << 20
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)


def large_blocks_mapped() -> bool:
    """Keep glibc mapping every block of ``MMAP_THRESHOLD`` bytes or more
    apart from its heaps, for the rest of the process (no undoing it: only
    the command line's console script, whose process is its own, calls it).

    By default glibc raises the threshold to the size of each mapped block
    freed, up to 32 MB, so that after the first chunk's arrays (4 MB a
    1024² float32 block) the next ones come from the heaps of the computing
    threads, where they stay resident, scattered between small blocks.
    4000² x 50,000 zones to CSV peaked at 447 MB with the threshold
    growing, 422 MB with it fixed (``benchmarks/README.md``). Returns
    whether it was set (False off glibc, or when the environment chose:
    ``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_``).
    """
    chosen = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
    if not sys.platform.startswith("linux") or any(v in os.environ for v in chosen):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):  # not glibc
        return False


def release_freed_memory() -> None:
    """Hand memory freed by planning back to the operating system.

    The zones as read and their intermediate copies are many small blocks;
    once freed, glibc keeps them in the heap, where the chunks' large arrays
    (allocated apart, by mmap) never reuse them. Trimming after planning
    lowered the peak of 4000² x 50,000 zones from 546 to 506 MB.
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc
            pass
