"""A ``LocalCluster`` of worker processes started for a run (``--cluster``),
its dashboard, and its workers' preload (this module: ``dask_setup``).

The workers leave Ctrl-C to the process that started them, which shuts them
down: one interrupt, one line.
"""

from __future__ import annotations

import logging
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.util import find_spec
from typing import Any


def has_dashboard() -> bool:
    """Whether a started cluster can serve its dashboard (bokeh draws it)."""
    return find_spec("bokeh") is not None


@contextmanager
def local_cluster(
    workers: int | None,
    threads_per_worker: int | None,
    memory_limit: str | float | None,
    *,
    dashboard: bool = True,
) -> Iterator[Any]:
    """A LocalCluster of worker processes, closed (workers first) on exit."""
    from distributed import Client, LocalCluster

    from .process_state import gdal_settings

    # each worker process reads blocks once: bound GDAL's cache (run/process_state.py),
    # and give it the endpoint of AWS_ENDPOINT_URL (io/remote.py); a worker that
    # is restarted later leaves Ctrl-C to this process too (dask_setup)
    options: dict[str, Any] = {
        "processes": True,
        "env": gdal_settings(),
        "preload": [__name__],
        # the processes' own logs (tasks cancelled by Ctrl-C, heartbeats lost
        # while the cluster shuts down, memory notes) are not the user's: a
        # failure reaches the command as an error, in one line
        "silence_logs": logging.CRITICAL,
    }
    if not dashboard:
        # the scheduler serves its HTTP routes (health, metrics) even without
        # the dashboard, on dask's usual port unless told: any free one
        options["scheduler_kwargs"] = {"dashboard": False, "dashboard_address": ":0"}
    elif not _port_free(DASHBOARD_PORT):
        # another cluster has dask's usual port: any free one, without the
        # warning distributed gives (the link printed names the port)
        options["dashboard_address"] = ":0"
    if workers:
        options["n_workers"] = workers
    if threads_per_worker:
        options["threads_per_worker"] = threads_per_worker
    if memory_limit is not None:
        options["memory_limit"] = memory_limit
    with _interrupts_ignored():  # the worker processes inherit it
        local = LocalCluster(**options)
    with local, Client(local, set_as_default=True) as client:
        yield client


DASHBOARD_PORT = 8787


def _port_free(port: int) -> bool:
    """Whether nothing listens on ``port`` of this machine."""
    with socket.socket() as probe:
        try:
            probe.bind(("", port))
        except OSError:
            return False
    return True


@contextmanager
def _interrupts_ignored() -> Iterator[None]:
    """Ignore SIGINT while processes are started: an ignored signal stays
    ignored in a child, where a handler would be reset."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: signals are not ours to set
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def dask_setup(worker: Any) -> None:
    """Preload of the LocalCluster's workers: Ctrl-C is for the process that
    started them (a terminal sends it to the whole process group), and a
    warning is one line of words, as in that process."""
    import warnings

    from .faults import show_warning

    warnings.showwarning = show_warning
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        pass
