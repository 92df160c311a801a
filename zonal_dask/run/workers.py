"""The workers of any cluster, for one run: what they see, and their settings.

A cluster shares nothing with the client but what both reach by name: a
shared file system or object storage. Before a graph is submitted to a
``distributed`` cluster, ``prepared`` checks, in seconds, that the scheduler
and every worker can import zonal_dask, that every worker sees each local
input, and that every worker sees each place where workers write (a marker
file the client leaves there must be visible to them: a directory of the same
name on a worker's own disk is not the client's). A failure is one line naming
the worker, the location and the fix.

It then registers a ``WorkerPlugin`` for the run, removed after, so that GDAL's
bounded block cache, the GDAL and AWS options the run gives and the kernel
warm-up reach every worker, whoever started the cluster.
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

from ..errors import ZonalError
from ..io.kept_open import kept_open, pool_of
from ..io.location import Location, filesystem, locate
from .reach import Reach

if TYPE_CHECKING:
    from ..precompiled import Shipped

PACKAGE = "zonal_dask"
FIX = "use a shared path or an object-store URL (s3://, gs://, az://)"
INSTALL = "install zonal-dask (the same version) on the scheduler and every worker"
MARKER = ".zonal-dask-reach-"
# the client's endpoint settings given to the workers (never credentials:
# each worker reads its own from its environment or its role)
ENDPOINT_VARIABLES = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_S3_ENDPOINT",
    "AWS_HTTPS",
    "AWS_VIRTUAL_HOSTING",
    "AWS_REGION",
)


def worker_environ(settings: Mapping[str, str]) -> dict[str, str]:
    """The variables a run gives its workers: ``settings`` (GDAL's cache
    bound, the endpoint implied by ``AWS_ENDPOINT_URL``) and the endpoint
    variables set in this process."""
    given = {k: os.environ[k] for k in ENDPOINT_VARIABLES if k in os.environ}
    return {**given, **settings}


def _worker_plugin() -> type:
    from distributed.diagnostics.plugin import WorkerPlugin

    return WorkerPlugin


class RunSettings:
    """What a worker is given for the duration of a run (a ``WorkerPlugin``):
    environment variables, which GDAL reads as its configuration (the block
    cache bound, the endpoint), the kernels warmed up for the raster's
    dtype, from the client's ``compiled`` code where it fits the worker, and
    a pool of open files under the run's token ``files``
    (``io.kept_open``), whose read tasks borrow from it; the worker's own
    values come back and the files are closed at ``teardown``."""

    def __init__(
        self,
        environ: Mapping[str, str],
        dtype: str | None = None,
        compiled: Sequence[Shipped] = (),
        files: str | None = None,
    ):
        self.environ = dict(environ)
        self.dtype = dtype
        self.compiled = list(compiled)
        self.files = files
        self.name = f"zonal-dask-run-{uuid.uuid4().hex}"
        self._previous: dict[str, str | None] = {}
        self._kept: ExitStack | None = None

    def setup(self, worker: Any = None) -> None:
        from rasterio.env import set_gdal_config

        for key, value in self.environ.items():
            self._previous[key] = os.environ.get(key)
            os.environ[key] = value
            set_gdal_config(key, _gdal_value(key, value))
        if self.files is not None and pool_of(self.files) is None:
            # (a worker in the client's process shares the client's pool)
            self._kept = ExitStack()
            self._kept.enter_context(kept_open(self.files))
        if self.dtype is not None:
            # on a thread: setup runs in the worker's event loop, which must
            # keep answering the scheduler while a fresh worker compiles
            threading.Thread(
                target=prepare_kernels, args=(self.dtype, self.compiled), daemon=True
            ).start()

    def teardown(self, worker: Any = None) -> None:
        from rasterio._env import del_gdal_config, set_gdal_config

        if self._kept is not None:
            self._kept.close()
            self._kept = None
        for key, value in self._previous.items():
            if value is None:
                os.environ.pop(key, None)
                del_gdal_config(key)
            else:
                os.environ[key] = value
                set_gdal_config(key, _gdal_value(key, value))
        self._previous.clear()


def _gdal_value(key: str, value: str) -> str | int:
    # rasterio resizes the block cache itself when given its size in bytes
    if key == "GDAL_CACHEMAX" and value.isdigit() and int(value) < 100_000:
        return int(value) * 2**20
    return value


WORKER_FAMILIES = ("moments", "burn")
"""The kernels a worker prepares: the moments kernel for the run's dtype and
the burner (coverage weights' kernels are prepared by the run that needs them)."""


def prepare_kernels(dtype: str, compiled: Sequence[Shipped] = ()) -> None:
    """Load (or compile) the kernels a run of ``dtype`` pixels uses, once per
    process (``WORKER_FAMILIES``), taking the client's ``compiled`` code
    (``kernels.compiled_code``) where it was compiled for this worker's CPU,
    numba version and sources."""
    from ..precompiled import unpack
    from .kernels import prepare_kernels as prepare

    unpack(compiled)
    prepare(WORKER_FAMILIES, (dtype,))


def _plugin(settings: RunSettings) -> Any:
    """``settings`` as a ``distributed.WorkerPlugin`` (imported only here:
    a run on local threads never imports distributed)."""
    plugin = type("RunSettingsPlugin", (RunSettings, _worker_plugin()), {})
    made = plugin(settings.environ, settings.dtype, settings.compiled, settings.files)
    made.name = settings.name
    return made


@contextmanager
def prepared(
    client: Any,
    reach: Reach,
    environ: Mapping[str, str] | None = None,
    dtype: str | None = None,
    files: str | None = None,
) -> Iterator[None]:
    """Check what the workers see (``check_reach``), then give every worker
    the run's settings for the duration of the block, the compiled code of
    the kernels for ``dtype`` and the pool of open files of token ``files``
    (``io.kept_open``) included."""
    from .kernels import compiled_code

    compiled = compiled_code(WORKER_FAMILIES, (dtype,)) if dtype is not None else []
    settings = RunSettings(worker_environ(environ or {}), dtype, compiled, files)
    check_reach(client, reach, settings.environ)
    client.register_plugin(_plugin(settings), name=settings.name)
    try:
        yield
    finally:
        try:
            client.unregister_worker_plugin(settings.name)
        except Exception:  # a cluster gone meanwhile: nothing left to restore
            pass


def stop_tasks(client: Any, future: Any, timeout: float = 60.0) -> None:
    """Cancel the run of ``future`` and wait, up to ``timeout`` seconds, until
    no worker still executes one of its tasks: a task a worker runs goes on
    after it is cancelled, and one writing a part would write it after the
    client removed what the run had written (``io/writers.py``)."""
    try:
        keys = client.run_on_scheduler(_processing_for, future.key)
        client.cancel([future], force=True)
    except Exception:  # the scheduler gone: nothing left to wait for
        return
    deadline = time.monotonic() + timeout
    while keys and time.monotonic() < deadline:
        try:
            running = client.run(_running_of, keys, on_error="ignore")
        except Exception:
            return
        if not any(running.values()):
            return
        time.sleep(0.1)


def _processing_for(key: Any, dask_scheduler: Any = None) -> set[Any]:
    """On the scheduler: the keys ``key`` depends on whose tasks a worker
    runs or may start before the cancellation reaches it."""
    tasks = dask_scheduler.tasks
    todo, seen, running = [key], set(), set()
    while todo:
        at = todo.pop()
        if at in seen or at not in tasks:
            continue
        seen.add(at)
        task = tasks[at]
        if task.state in ("processing", "queued", "waiting", "no-worker"):
            running.add(at)
        todo.extend(d.key for d in task.dependencies)
    return running


def _running_of(keys: set[Any], dask_worker: Any = None) -> int:
    """On a worker: how many of ``keys`` it is still running."""
    return sum(t.key in keys for t in dask_worker.state.all_running_tasks)


def check_reach(
    client: Any, reach: Reach, environ: Mapping[str, str] | None = None
) -> None:
    """Refuse, in one line, a cluster whose scheduler or workers lack the
    package or cannot see a location of ``reach``.

    Raises
    ------
    ZonalError
        Naming the worker (or the scheduler), the location and the fix.
    """
    _check_scheduler(client)
    markers: list[tuple[str, list[str]]] = []
    try:
        for where in reach.writes:
            markers.append(_leave_marker(where))
        found = client.run(
            worker_sees,
            [r.url for r in reach.reads if not r.remote],
            [(w.url, m) for w, (m, _) in zip(reach.writes, markers, strict=False)],
            dict(environ or worker_environ({})),
            on_error="return",
        )
    finally:
        for where, (marker, created) in zip(reach.writes, markers, strict=False):
            _remove_marker(where, marker, created)
    for worker, problem in sorted(found.items()):
        if isinstance(problem, BaseException):
            raise ZonalError(
                f"worker {worker}: cannot run zonal_dask ({_missing(problem)}); "
                f"{INSTALL}"
            )
        if problem:
            raise ZonalError(f"worker {worker}: {problem}")


def _check_scheduler(client: Any) -> None:
    # a function pickled by value (a lambda), so that the scheduler needs no
    # zonal_dask to run it: it names the package's absence itself
    try:
        has = client.run_on_scheduler(
            lambda name: __import__("importlib.util").util.find_spec(name) is not None,
            PACKAGE,
        )
    except Exception as err:
        has, reason = False, _first_line(err)
    else:
        reason = f"No module named {PACKAGE!r}"
    if not has:
        raise ZonalError(
            f"the dask scheduler at {client.scheduler.address} cannot unpickle "
            f"the graph ({reason}); {INSTALL}"
        )


def worker_sees(
    reads: list[str],
    writes: list[tuple[str, str]],
    environ: Mapping[str, str] | None = None,
) -> str | None:
    """Run on each worker: the first location it cannot see, as a line, or
    None; object storage at the endpoint the run gives it (``environ``)."""
    for path in reads:
        if not os.path.exists(path):
            return f"cannot see {path} (no such file on that machine); {FIX}"
    for url, marker in writes:
        where = locate(url)
        fs, root = filesystem(where, {**os.environ, **(environ or {})})
        name = f"{root.rstrip('/')}/{marker}"
        try:
            seen = fs.exists(name)
        except Exception as err:  # credentials, network: the store's own words
            return f"cannot reach {url} ({_first_line(err)}); {FIX}"
        if not seen:
            return (
                f"does not see {url} as the client does (a directory of its own, "
                f"or none); {FIX}"
            )
        probe = f"{root.rstrip('/')}/{marker}.{uuid.uuid4().hex[:8]}"
        try:
            fs.pipe_file(probe, b"")
            fs.rm(probe)
        except Exception as err:
            return f"cannot write into {url} ({_first_line(err)}); {FIX}"
    return None


def _leave_marker(where: Location) -> tuple[str, list[str]]:
    """Leave a marker file in ``where``; return its name and the local
    directories made for it (removed with it: a refused run leaves nothing)."""
    marker = f"{MARKER}{uuid.uuid4().hex[:12]}"
    fs, root = filesystem(where)
    created = []
    if not where.remote:
        missing = root.rstrip("/") or "/"
        while not os.path.isdir(missing) and os.path.dirname(missing) != missing:
            created.append(missing)
            missing = os.path.dirname(missing)
    fs.makedirs(root, exist_ok=True)
    fs.pipe_file(f"{root.rstrip('/')}/{marker}", b"")
    return marker, created


def _remove_marker(where: Location, marker: str, created: list[str]) -> None:
    fs, root = filesystem(where)
    try:
        fs.rm(f"{root.rstrip('/')}/{marker}")
    except (OSError, FileNotFoundError):
        pass
    for directory in created:  # deepest first, and only if still empty
        try:
            os.rmdir(directory)
        except OSError:
            break


def _missing(err: BaseException) -> str:
    """Python's own words for a module a worker lacks (distributed wraps the
    import error of a function it cannot unpickle), else the error's line."""
    found = re.search(r"No module named '[^']+'", f"{err} {err.__cause__}")
    return found.group(0) if found else _first_line(err)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
