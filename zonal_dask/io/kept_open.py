"""Rasters kept open for one run, so that its read tasks do not reopen them.

A time series reads each step's file in many windows, one task a window:
opening a GeoTIFF costs about 1.7 ms of CPU (its header, its tile offsets,
rasterio's ``Env``), 64 times a step at 7800 x 8100 in 1024² chunks: 0.11
CPU s a step, a seventh of what decoding the step costs
(``benchmarks/README.md``). ``kept_open`` gives a run a pool of open datasets
that its tasks borrow by path and give back (``reading``):

- a dataset is used by one thread at a time: a task takes it out of the pool
  while it reads, so two threads never share one, and a thread finding none
  idle opens another;
- the pool belongs to one run (a token the tasks carry, registered in this
  process for the run's duration): another run, or the same run started
  again after a file changed, never reads through this run's handles;
- when the run ends every idle dataset is closed, and a dataset still being
  read then (a task left running by a failure) is closed by its reader;
- at most ``max_idle()`` idle datasets, the least recently used closed first,
  so open files follow the threads and the steps a batch reads at once,
  never the number of steps.

A task whose token is not registered in the process running it (a worker of
a ``distributed`` cluster that was not given the run, a task run after its
run ended) opens and closes the file itself, as without a pool. Importing
this module changes nothing in the process (nor imports rasterio: the
cluster's run settings, ``run/workers.py``, hold a pool).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")


def max_idle() -> int:
    """Idle datasets a run keeps at most: a thread reads the steps of a batch
    in turn, so 2 threads over the 10 steps of a batch hold about 20; 8 a
    core, at least 32, at most 256 (file descriptors are a process's)."""
    return max(32, min(256, 8 * (os.cpu_count() or 1)))


class OpenFiles:
    """The idle datasets of one run, by path, borrowed one thread at a time."""

    def __init__(self, most: int | None = None) -> None:
        self.max_idle = most or max_idle()
        self._lock = threading.Lock()
        self._idle: OrderedDict[int, tuple[str, Any]] = OrderedDict()
        self._closed = False
        self.opened = 0  # datasets opened so far (tests check reuse with it)

    def read(self, path: str, read: Callable[[Any], T]) -> T:
        """``read(dataset)`` on an idle dataset of ``path`` (opened when none
        is idle), given back to the pool afterwards unless the read failed
        or the run ended meanwhile."""
        dataset = self._borrow(path)
        if dataset is None:
            import rasterio

            dataset = rasterio.open(path)
            with self._lock:
                self.opened += 1
        try:
            result = read(dataset)
        except BaseException:
            dataset.close()
            raise
        self._give_back(path, dataset)
        return result

    def _borrow(self, path: str) -> Any:
        with self._lock:
            for key, (held, dataset) in reversed(self._idle.items()):
                if held == path:
                    del self._idle[key]
                    return dataset
        return None

    def _give_back(self, path: str, dataset: Any) -> None:
        evicted = []
        with self._lock:
            if self._closed:
                evicted.append(dataset)
            else:
                self._idle[id(dataset)] = (path, dataset)
                while len(self._idle) > self.max_idle:
                    evicted.append(self._idle.popitem(last=False)[1][1])
        for old in evicted:
            old.close()

    def close(self) -> None:
        """Close every idle dataset; those being read close when given back."""
        with self._lock:
            self._closed = True
            idle = [dataset for _, dataset in self._idle.values()]
            self._idle.clear()
        for dataset in idle:
            dataset.close()

    @property
    def idle(self) -> int:
        with self._lock:
            return len(self._idle)


_runs_lock = threading.Lock()
_runs: dict[str, OpenFiles] = {}


@contextmanager
def kept_open(token: str | None = None) -> Iterator[str]:
    """Register a pool of open datasets for the block and yield its token,
    which read tasks carry (``reading``); every dataset it opened is closed
    when the block ends. ``token``: register under a token made elsewhere
    (a cluster worker given the client's run)."""
    token = token or f"zonal-dask-files-{uuid.uuid4().hex}"
    pool = OpenFiles()
    with _runs_lock:
        if token in _runs:
            raise RuntimeError(f"{token}: already registered")
        _runs[token] = pool
    try:
        yield token
    finally:
        with _runs_lock:
            del _runs[token]
        pool.close()


def pool_of(token: str | None) -> OpenFiles | None:
    """The pool registered under ``token`` in this process, if any."""
    if token is None:
        return None
    with _runs_lock:
        return _runs.get(token)


def reading(path: str, token: str | None, read: Callable[[Any], T]) -> T:
    """``read(dataset)`` on ``path`` opened, through the pool of the run
    ``token`` when this process holds it, else opened and closed here."""
    import rasterio

    pool = pool_of(token)
    if pool is not None:
        return pool.read(path, read)
    with rasterio.open(path) as dataset:
        return read(dataset)
