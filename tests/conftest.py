from __future__ import annotations

import os
import signal
from pathlib import Path

import dask
import pytest

from .shared_nothing import SET_BY_S3, client_dir, cluster, in_client_dir, s3  # noqa: F401

DATA = Path(__file__).parent / "data"

# The processes the tests start (``python -c``, ``-m zonal_dask.cli``, dask's
# scheduler and workers, notebook kernels) import zonal_dask as the tests do
# (``--import-mode=append``): not from their working directory, which Python
# would put first on sys.path (this checkout's sources, compiled again there).
# Python 3.11+; a script's own folder is left out too.
os.environ.setdefault("PYTHONSAFEPATH", "1")

# A suite started in the background by a shell without job control (``cmd &``
# in a script) inherits Ctrl-C ignored, and so would every process it starts:
# the tests that interrupt a run, or stop a server, give it as a terminal does.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Tests a developer may skip locally (``pytest -m "not slow"``); ``.ci/run``
# runs everything. Whole files: clusters of worker processes, notebooks
# executed in kernels, the peer benchmark; and any test on a shared cluster.
# Single tests carry ``@pytest.mark.slow`` themselves.
SLOW_FILES = {"test_distributed.py", "test_notebooks.py", "test_benchmark.py"}
# the shared LocalCluster, and the shared-nothing cluster and its S3 server
CLUSTER_FIXTURES = {"local_cluster", "cluster", "s3", "client_dir"}


def pytest_xdist_auto_num_workers(config) -> int:
    """``-n auto``: two workers a core. Most of the suite's time is spent
    waiting for the processes its tests start (clusters, notebook kernels,
    fresh interpreters), which a worker a core leaves half idle: on 2 cores
    the suite took 381 s with 2 workers, 303 s with 3 and 223 s with 4
    (benchmarks/README.md)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
    return 2 * (cores or os.cpu_count() or 1)


# pytest-xdist's ``--dist loadgroup`` runs a group's tests in one worker: the
# session's clusters start once, and a module's background processes once
GROUPS = {"local_cluster": "local-cluster", "cluster": "shared-nothing"}
GROUPS |= {"s3": "shared-nothing", "client_dir": "shared-nothing"}


# first: xdist's own hook reads the xdist_group marks into the node ids, and a
# conftest registered before it would otherwise run after it
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    slow = pytest.mark.slow
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if item.path.name in SLOW_FILES or CLUSTER_FIXTURES & fixtures:
            item.add_marker(slow)
        group = _group(item, fixtures)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
    # the tests waiting for a process started in the background go last, so
    # that it runs meanwhile (pytest_collection_finish); with workers, first:
    # one worker waits for them while the others run the rest
    items.sort(
        key=lambda item: (
            hasattr(getattr(item, "module", None), "start_in_background")
            != _IN_XDIST_WORKER
        )
    )


def pytest_collection_finish(session):
    """Start, once collection is done, the long processes some selected tests
    only wait for (a module's ``start_in_background(items)``, given its selected
    tests): they run on the core the serial suite leaves idle."""
    if session.config.option.collectonly or _IN_XDIST_WORKER:
        return
    for module, items in _background_modules(session.items).items():
        module.start_in_background(items)


def _group(item, fixtures: set) -> str | None:
    """The tests that must run in one worker: those of a shared cluster, and
    of a module that starts processes or shares a fixture of its own."""
    group = next((GROUPS[f] for f in sorted(fixtures) if f in GROUPS), None)
    if group is not None:
        return group
    if hasattr(getattr(item, "module", None), "start_in_background"):
        return item.module.__name__
    info = getattr(item, "_fixtureinfo", None)
    for definitions in getattr(info, "name2fixturedefs", {}).values():
        defined = definitions[-1]
        if defined.scope != "function" and defined.baseid.endswith(".py"):
            return defined.baseid
    return None


# pytest-xdist's workers each collect every test and run their share: there a
# module's processes start when the worker reaches its first test (its group's
# tests all run there), and run on the core the other worker leaves
_IN_XDIST_WORKER = "PYTEST_XDIST_WORKER" in os.environ
_started_modules: set = set()


def pytest_runtest_setup(item):
    _check_the_group_took_effect(item)
    module = getattr(item, "module", None)
    if not _IN_XDIST_WORKER or module in _started_modules:
        return
    if hasattr(module, "start_in_background"):
        _started_modules.add(module)
        module.start_in_background(_background_modules(item.session.items)[module])


def _check_the_group_took_effect(item) -> None:
    """Under ``--dist loadgroup`` a grouped test's node id ends with its group,
    which xdist schedules by: without it every worker would start its own
    clusters and background processes, silently (pytest 9.2 with
    pytest-xdist 3.8, pytest-xdist#1386)."""
    if (
        _IN_XDIST_WORKER
        and getattr(item.config.option, "loadgroup", False)
        and item.get_closest_marker("xdist_group")
        and "@" not in item.nodeid
    ):
        pytest.fail(
            "this pytest and pytest-xdist do not keep xdist_group (the node id "
            "lost its @group): see pyproject.toml's pin of pytest",
            pytrace=False,
        )


def _background_modules(items) -> dict:
    """The selected tests of each module that starts processes in the background."""
    by_module: dict = {}
    for item in items:
        module = getattr(item, "module", None)
        if hasattr(module, "start_in_background"):
            by_module.setdefault(module, []).append(item)
    return by_module


@pytest.fixture(autouse=True)
def _without_the_s3_server(request, monkeypatch):
    """A test that does not ask for the session's S3 server does not see the
    environment it set for the tests that do."""
    if "s3" not in request.fixturenames:
        for name in SET_BY_S3:
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def local_cluster():
    """A two-process LocalCluster, shared by the tests that need one."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as local,
        distributed.Client(local, set_as_default=False) as client,
    ):
        yield client


@pytest.fixture
def crash_after(monkeypatch):
    """``crash_after(n)``: the chunk step's kernel raises MemoryError after n
    chunks, as a crashed run would; ``crash_after(None)`` restores it."""
    from zonal_dask.reduce import partials

    original = partials.chunk_moments

    def arm(n):
        calls = []

        def crashing(*args):
            calls.append(1)
            if len(calls) > n:
                raise MemoryError("simulated crash")
            return original(*args)

        monkeypatch.setattr(
            partials, "chunk_moments", original if n is None else crashing
        )

    return arm


def _refuse(*args, **kwargs):
    raise AssertionError("something was computed while the graph was being built")


@pytest.fixture
def raise_if_dask_computes():
    """Fail the test if anything computes (flox's raise_if_dask_computes)."""
    with dask.config.set(scheduler=_refuse):
        yield
