"""Which scheduler runs the computation, and its progress bar.

In order: a scheduler address given explicitly (connected to, and
disconnected after); an active ``distributed.Client``, used as is; the address
in ``DASK_SCHEDULER_ADDRESS``; a ``LocalCluster`` when asked for (started,
its dashboard link given to ``echo``, and shut down after:
``run/local_cluster.py``); otherwise dask's
threaded scheduler on all local cores. Threads are the local default because
the kernels and GDAL's reads release the GIL and no process has to start or
receive data (``benchmarks/README.md`` has the measurements).

An address is tried with a plain TCP connection first, so a refused port or
an unknown host is reported at once rather than after the client's timeout.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import Any

import dask
import dask.threaded

from ..errors import OptionError, ZonalError
from .local_cluster import has_dashboard, local_cluster
from .progress import Report, local_progress, wait_with_progress
from .reach import Reach

ADDRESS_VARIABLE = "DASK_SCHEDULER_ADDRESS"
# the TCP probe's and the client's handshake's limits, in seconds
PROBE_TIMEOUT = 5.0
CONNECT_TIMEOUT = "10s"


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
        Called with the dashboard's address of a started cluster. No
        dashboard is served when nobody is told (None) or when bokeh, which
        draws it, is missing.

    Yields
    ------
    distributed.Client or None
        The client in use, or None for local threads.

    Raises
    ------
    OptionError
        A value out of range, or options that do not go together.
    ZonalError
        A scheduler that cannot be reached.
    """
    client = None if address else active_client()
    remote = None
    if address:
        remote = f"the scheduler at {address}"
    elif client is not None:
        remote = "the active dask client"
    elif os.environ.get(ADDRESS_VARIABLE):
        address = os.environ[ADDRESS_VARIABLE]
        remote = f"the scheduler at {address} (${ADDRESS_VARIABLE})"
    check_options(
        remote,
        workers,
        cluster=cluster,
        threads_per_worker=threads_per_worker,
        memory_limit=memory_limit,
    )
    if address:
        with _connect(address) as connected:
            yield connected
        return
    if client is not None:
        yield client
        return
    if cluster:
        dashboard = echo is not None and has_dashboard()
        with local_cluster(
            workers, threads_per_worker, memory_limit, dashboard=dashboard
        ) as started:
            if echo is not None and dashboard:
                echo(started.dashboard_link)
            yield started
        return
    with dask.config.set(scheduler="threads", num_workers=workers or os.cpu_count()):
        yield None


def check_options(
    remote: str | None,
    workers: int | None,
    *,
    cluster: bool = False,
    threads_per_worker: int | None = None,
    memory_limit: str | float | None = None,
) -> None:
    """Refuse scheduler options out of range, or that would be ignored.

    ``remote`` names the scheduler the run goes to, if not this machine's.
    """
    sizes = {"workers": workers, "threads-per-worker": threads_per_worker}
    for flag, value in sizes.items():
        if value is not None and (not isinstance(value, int) or value < 1):
            raise OptionError(
                f"--{flag} must be a whole number of at least 1, not {value}"
            )
    if memory_limit is not None:
        _check_memory(memory_limit)
    if remote and cluster:
        raise OptionError(f"--cluster starts a local cluster; the run goes to {remote}")
    if remote and workers is not None:
        raise OptionError(f"--workers: the run goes to {remote}, with its own workers")
    worker_sizes = {
        "threads-per-worker": threads_per_worker,
        "memory-limit": memory_limit,
    }
    for flag, size in worker_sizes.items():
        if size is not None and not cluster:
            raise OptionError(f"--{flag} sizes the workers of --cluster, not given")


def _check_memory(limit: str | float) -> None:
    """A worker's memory: bytes, a size such as ``4GB``, a fraction of the
    machine's (0 to 1), or ``auto``; 0 means no limit."""
    if isinstance(limit, str) and limit.strip().lower() == "auto":
        return
    try:
        value = (
            dask.utils.parse_bytes(limit) if isinstance(limit, str) else float(limit)
        )
    except (ValueError, TypeError):
        value = -1
    if value < 0:
        raise OptionError(
            f"--memory-limit {limit!r}: expected a size such as 4GB, a number of "
            "bytes, or auto"
        )


@contextmanager
def _connect(address: str) -> Iterator[Any]:
    from distributed import Client

    _probe(address)
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT, set_as_default=True)
    except Exception as err:  # a timeout, or a server that is not a scheduler
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ZonalError(
            f"cannot reach the dask scheduler at {address} ({reason})"
        ) from None
    with client:
        yield client


def _probe(address: str) -> None:
    """Open and close a TCP connection to a ``tcp://`` or ``tls://`` address,
    so that a refused port or an unknown host fails at once."""
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
        if scheme not in ("tcp", "tls"):
            return
        host, port = parse_host_port(location)
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT):
            pass
    except socket.gaierror:
        reason = "unknown host"
    except ConnectionRefusedError:
        reason = "connection refused"
    except TimeoutError:
        reason = f"no answer within {PROBE_TIMEOUT:g} s"
    except (OSError, ValueError, TypeError) as err:
        reason = str(err) or type(err).__name__
    else:
        return
    raise ZonalError(f"cannot reach the dask scheduler at {address} ({reason})")


def cluster_client(client: Any | None = None) -> Any | None:
    """The ``distributed`` client a run computes on (``client`` if given,
    else the active one unless dask is configured otherwise), or None."""
    configured = dask.config.get("scheduler", None)
    if client is None and configured in (None, "dask.distributed", "distributed"):
        client = active_client()
    return client


def check_writes(*writes: Any) -> None:
    """On a cluster, refuse a place the workers will write (a checkpoint)
    that some worker does not see, before the client creates anything
    there (``workers.check_reach``); nothing to check on local threads."""
    client = cluster_client()
    if client is not None:
        from .process_state import gdal_settings
        from .workers import check_reach, worker_environ

        environ = worker_environ(gdal_settings())  # the run's, as in compute
        check_reach(client, Reach.of(writes=writes), environ)


def compute(
    lazy: Any,
    *,
    client: Any | None = None,
    report: Report | None = None,
    reach: Reach | None = None,
    dtype: Any = None,
    files: str | None = None,
) -> Any:
    """Compute ``lazy`` on ``client`` (or the local default), reporting
    progress to ``report`` (``progress.reporter``).

    On a ``distributed`` cluster, the scheduler and workers are checked first
    (the package, the locations of ``reach``) and given the run's settings,
    with the kernels for ``dtype`` pixels warmed up and a pool of open files
    under the token ``files`` (``io.kept_open``) for the duration of the
    computation (``run/workers.py``).
    """
    client = cluster_client(client)
    if client is not None:
        from .process_state import gdal_settings
        from .workers import prepared, stop_tasks

        dtype = None if dtype is None else str(dtype)
        with prepared(client, reach or Reach(), gdal_settings(), dtype, files):
            future = client.compute(lazy)
            try:
                return wait_with_progress(future, report)
            except BaseException:  # Ctrl-C, a failure: nothing runs on after it
                stop_tasks(client, future)
                raise
    from .process_state import (
        endpoint_settings,
        gdal_scope,
        release_freed_memory,
        task_thread_settings,
    )

    get = local_scheduler()
    settings = endpoint_settings()
    with ExitStack() as stack:
        stack.enter_context(gdal_scope())
        stack.enter_context(local_progress(report))
        options: dict[str, Any] = {}
        if get is dask.threaded.get and settings:
            # the run's own threads, each given GDAL's endpoint settings for
            # itself: another run's settings, or their end, never reach them
            workers = dask.config.get("num_workers", None) or os.cpu_count() or 1
            options["pool"] = stack.enter_context(
                ThreadPoolExecutor(
                    workers,
                    thread_name_prefix="zonal-dask",
                    initializer=task_thread_settings,
                    initargs=(settings,),
                )
            )
        (result,) = dask.compute(lazy, scheduler=get, **options)
    # the chunks' freed arrays back to the system before the caller makes
    # the table's text (4000² x 50k zones to CSV: 473 -> 456-460 MB peak)
    release_freed_memory()
    return result
