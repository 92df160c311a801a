"""Which scheduler runs the computation, and its progress bar.

In order: a scheduler address given explicitly or in ``DASK_SCHEDULER_ADDRESS``
(connected to, and disconnected after); an active ``distributed.Client``,
used as is; otherwise dask's threaded scheduler on all local cores. Threads
win locally because the kernels and GDAL's reads release the GIL and no
process has to start or receive data.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import dask


def active_client() -> Any | None:
    """The current ``distributed.Client``, or None (without importing distributed)."""
    if "distributed" not in sys.modules:
        return None
    from distributed import default_client

    try:
        return default_client()
    except ValueError:
        return None


@contextmanager
def scheduler(address: str | None = None, workers: int | None = None) -> Iterator[Any]:
    """Make the chosen scheduler dask's default inside the block.

    Yields the ``distributed.Client`` in use, or None for local threads.
    """
    address = address or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
    if address:
        from distributed import Client

        with Client(address, timeout="30s", set_as_default=True) as client:
            yield client
        return
    client = active_client()
    if client is not None:
        yield client
        return
    with dask.config.set(scheduler="threads", num_workers=workers or os.cpu_count()):
        yield None


def compute(lazy: Any, *, client: Any | None = None, progress: bool = False) -> Any:
    """Compute ``lazy`` on ``client`` (or the local default), with a progress bar."""
    with ExitStack() as stack:
        if client is not None:
            future = client.compute(lazy)
            if progress:
                from distributed import progress as distributed_progress

                distributed_progress(future)
            return future.result()
        if progress:
            from dask.diagnostics import ProgressBar

            stack.enter_context(ProgressBar(out=sys.stderr))
        (result,) = dask.compute(lazy)
        return result
