"""Which scheduler runs the computation, and its progress bar.

In order: a scheduler address given explicitly (connected to, and
disconnected after); an active ``distributed.Client``, used as is; the address
in ``DASK_SCHEDULER_ADDRESS``; a ``LocalCluster`` when asked for (started, its
dashboard link printed, and shut down after); otherwise dask's threaded
scheduler on all local cores. Threads are the local default because the
kernels and GDAL's reads release the GIL and no process has to start or
receive data (README: "Sizing chunks and workers" has the measurements).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import dask
import dask.threaded

ADDRESS_VARIABLE = "DASK_SCHEDULER_ADDRESS"
CONNECT_TIMEOUT = "30s"


def active_client() -> Any | None:
    """The current ``distributed.Client``, or None (without importing distributed)."""
    if "distributed" not in sys.modules:
        return None
    from distributed import default_client

    try:
        return default_client()
    except ValueError:
        return None


def local_scheduler() -> Any | None:
    """``dask.threaded.get`` when that is what dask would pick, else None.

    Given no scheduler, or the name "threads", ``dask.compute`` imports
    ``distributed`` to look for a client (0.4 s) even when none can exist
    because ``distributed`` was never imported; handing it the threaded
    scheduler itself skips that. A configured scheduler or a client wins.
    """
    configured = dask.config.get("scheduler", None)
    if active_client() is None and configured in (None, "threads", "threading"):
        return dask.threaded.get
    return None


@contextmanager
def scheduler(
    address: str | None = None,
    workers: int | None = None,
    *,
    cluster: bool = False,
    threads_per_worker: int | None = None,
    memory_limit: str | float | None = None,
    echo: Callable[[str], Any] | None = None,
) -> Iterator[Any]:
    """Make the chosen scheduler dask's default inside the block.

    Parameters
    ----------
    address
        A ``dask.distributed`` scheduler address (``tcp://host:8786``).
    workers
        Threads of the local threaded scheduler, or the LocalCluster's worker
        processes when ``cluster``.
    cluster
        Start a ``LocalCluster`` (processes) instead of using threads.
    threads_per_worker, memory_limit
        The LocalCluster's worker sizes (memory as ``"4GB"`` or bytes; default:
        the machine's memory shared between the workers).
    echo
        Where to print the dashboard link of a started cluster (default:
        standard error).

    Yields
    ------
    distributed.Client or None
        The client in use, or None for local threads.
    """
    echo = echo or (lambda line: print(line, file=sys.stderr))
    if address:
        with _connect(address) as client:
            yield client
        return
    client = active_client()
    if client is not None:
        yield client
        return
    address = os.environ.get(ADDRESS_VARIABLE)
    if address:
        with _connect(address) as client:
            yield client
        return
    if cluster:
        with _local_cluster(workers, threads_per_worker, memory_limit) as client:
            echo(f"zonal-dask: dashboard at {client.dashboard_link}")
            yield client
        return
    with dask.config.set(scheduler="threads", num_workers=workers or os.cpu_count()):
        yield None


@contextmanager
def _connect(address: str) -> Iterator[Any]:
    from distributed import Client

    from .errors import ZonalError

    try:
        client = Client(address, timeout=CONNECT_TIMEOUT, set_as_default=True)
    except OSError as err:
        raise ZonalError(
            f"cannot reach the dask scheduler at {address} ({err})"
        ) from None
    with client:
        yield client


@contextmanager
def _local_cluster(
    workers: int | None,
    threads_per_worker: int | None,
    memory_limit: str | float | None,
) -> Iterator[Any]:
    """A LocalCluster of worker processes, closed (workers first) on exit."""
    from distributed import Client, LocalCluster

    from .runtime import gdal_settings

    # each worker process reads blocks once: bound GDAL's cache (runtime.py),
    # and give it the endpoint of AWS_ENDPOINT_URL (remote.py)
    options: dict[str, Any] = {"processes": True, "env": gdal_settings()}
    if workers:
        options["n_workers"] = workers
    if threads_per_worker:
        options["threads_per_worker"] = threads_per_worker
    if memory_limit is not None:
        options["memory_limit"] = memory_limit
    with (
        LocalCluster(**options) as local,
        Client(local, set_as_default=True) as client,
    ):
        yield client


def compute(lazy: Any, *, client: Any | None = None, progress: bool = False) -> Any:
    """Compute ``lazy`` on ``client`` (or the local default), with a progress bar."""
    with ExitStack() as stack:
        if client is not None:
            future = client.compute(lazy)
            if progress:
                from distributed import progress as distributed_progress

                distributed_progress(future)
            return future.result()
        from .runtime import gdal_scope

        stack.enter_context(gdal_scope())
        if progress:
            from dask.diagnostics import ProgressBar

            stack.enter_context(ProgressBar(out=sys.stderr))
        (result,) = dask.compute(lazy, scheduler=local_scheduler())
        return result
