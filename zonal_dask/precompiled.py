"""Kernels compiled when the package is built, found whatever the user's cache.

numba compiles a kernel on its first call in a process unless a cache holds
it, keyed by numba's version, the CPU (name and features), the function's
bytecode and its argument types (``numba/core/caching.py``). Building the
package (``pip install .``: ``setup.py``'s ``build_py``) calls ``build``,
which compiles every kernel a run calls, for the signatures of ``KERNELS``
and for any CPU of the machine's architecture (``NUMBA_CPU_NAME=generic``),
into ``zonal_dask/_precompiled/`` of the built package.

At run time each kernel (declared with this module's ``njit``) looks there
first, then in numba's usual cache (``NUMBA_CACHE_DIR``, else ``__pycache__``
beside the sources), where what the build did not hold is compiled and saved
as before: another architecture, numba or Python version than the build's,
an editable install (nothing built), a signature missing from ``KERNELS``.
The built files are found by the module's name, and trusted only for the
same source file content (a SHA-256 of it), bytecode, numba version, Python
version and architecture.

A run's cluster workers are given the compiled code the client holds for
the run's kernels (``packed``, ``unpack``): a worker of the same
architecture (the build's code) or CPU (numba's own) loads it.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numba
import numba.core.errors
from numba import types
from numba.core import caching

from .run.kernels import KERNEL_DTYPES

__all__ = [
    "BUILT",
    "KERNELS",
    "build",
    "compile_kernels",
    "njit",
    "packed",
    "unpack",
]

BUILT = Path(__file__).resolve().parent / "_precompiled"
"""Where the build leaves the compiled kernels (absent in a source tree)."""

PORTABLE_CPU = "generic"
"""The CPU the build compiles for: any of the architecture (measured: the
kernels run as fast as the host CPU's, ``benchmarks/README.md``)."""


def njit(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``numba.njit(**options)``; with ``cache=True`` the kernel loads the
    build's compiled code first (``BUILT``), then numba's own cache."""

    def decorate(function: Callable[..., Any]) -> Any:
        dispatcher = numba.njit(**options)(function)
        if options.get("cache"):
            dispatcher._cache = _LayeredCache(dispatcher._cache, dispatcher.py_func)
        return dispatcher

    return decorate


def _array(dtype: str, ndim: int = 1) -> types.Array:
    return types.Array(getattr(types, dtype), ndim, "C")


def _moments(dtype: str) -> tuple[types.Type, ...]:
    i64, f64 = _array("int64"), _array("float64")
    return (
        *(_array(dtype, 2), _array("int32", 3), i64, _array("int32"), f64),
        *(types.int64, getattr(types, dtype), types.boolean, _array("float64", 2)),
        *(i64, _array("float64", 2), types.int64),
    )


def _kernels() -> list[tuple[str, str, tuple[types.Type, ...]]]:
    i64, f64, u8, i8 = (_array(d) for d in ("int64", "float64", "uint8", "int8"))
    pair, box = types.UniTuple(types.int64, 2), types.UniTuple(types.int64, 4)
    n = types.int64
    f2, f3 = _array("float64", 2), _array("float64", 3)
    burn = (i64, i64, i64, i64, _array("float64", 2), f64, pair, box)
    wkb_out = types.Tuple((i64, i64, i64, i64, u8, i8))
    # the costliest first: ``build`` deals them out to its processes in turn
    return [
        ("burn.prepare", "burn_claims", (*burn, types.boolean, i64, n, n, n)),
        (
            "coverage.line_walk",
            "line_lengths",
            (f64, f64, i64, i64, f64, i64, i64, f64),
        ),
        (
            "coverage.fraction_kernel",
            "coverage",
            (f64, f64, i64, f64, i64, i64, types.float64),
        ),
        *(("reduce.moment_kernel", "moments", _moments(d)) for d in KERNEL_DTYPES),
        # the merge of the moments' partials (reduce.moments.merge)
        (
            "reduce.moment_merge",
            "merge_rows",
            (f3, i64, i64, i64, i64, n, n, f3, f2),
        ),
        (
            "reduce.moment_merge",
            "merge_central",
            (f3, i64, i64, i64, f2, n, f2, f3, f3),
        ),
        # WKB from Arrow's buffers: writable, or read-only (immutable buffers)
        *(
            ("zones.wkb", "_walk", (data, i64, i64, wkb_out, types.boolean, box))
            for data in (u8, types.Array(types.uint8, 1, "C", readonly=True))
        ),
        # some zones' arrays gathered (zones.arrays)
        (
            "zones.gather",
            "_take",
            (i64, i64, i64, i64, _array("float64", 2), i64),
        ),
        # each zone's bounds (zones.arrays)
        (
            "zones.bounds",
            "_zone_bounds",
            (i64, i64, i64, _array("float64", 2), _array("float64", 2)),
        ),
        # the validity pass over a large layer's flat arrays (zones.table)
        (
            "zones.validity",
            "_needs_geos",
            (i64, i64, i64, i64, _array("float64", 2), _array("boolean"), n, n),
        ),
    ]


KERNELS = _kernels()
"""(module under ``zonal_dask``, kernel, argument types): every compiled
specialization the package's Python code calls (the moments kernel once per
raster dtype, ``run.kernels.KERNEL_DTYPES``; ``tests/test_precompiled.py``
holds it to the runs' calls)."""


def compile_kernels(kernels: Iterable[int]) -> None:
    """Compile ``KERNELS[i]`` for each ``i`` into ``BUILT``, in this process,
    which runs with ``NUMBA_CPU_NAME=generic`` (as ``build`` starts it) so
    that the code serves any CPU of the architecture."""
    import importlib

    if getattr(numba.config, "CPU_NAME", None) != PORTABLE_CPU:
        raise RuntimeError(f"compile_kernels needs NUMBA_CPU_NAME={PORTABLE_CPU}")
    for index in kernels:
        module, name, signature = KERNELS[index]
        dispatcher = getattr(importlib.import_module(f"zonal_dask.{module}"), name)
        dispatcher._cache = _BuiltCache(dispatcher.py_func, create=True)
        try:
            dispatcher.compile(signature)
        except (TypeError, numba.core.errors.NumbaError) as err:
            # KERNELS behind the kernel's arguments: the install goes on (the
            # kernel compiles on first use); tests/test_precompiled.py fails
            first = str(err).strip().splitlines()[0]
            print(f"zonal_dask: {module}.{name}{signature} not precompiled: {first}")


# Run by ``build`` in a fresh process: the package is imported without its
# ``__init__`` (which imports xarray, absent from a build's environment).
_COMPILE = """
import sys, types
package = types.ModuleType("zonal_dask")
package.__path__ = [sys.argv[1]]
sys.modules["zonal_dask"] = package
from zonal_dask.precompiled import compile_kernels
compile_kernels(int(i) for i in sys.argv[2:])
"""


def build(package: Path, processes: int = 2) -> None:
    """Compile ``KERNELS`` into ``package``'s ``_precompiled`` (``package``: a
    built ``zonal_dask`` directory), in ``processes`` processes at once.

    A signature of ``KERNELS`` the kernel does not take is printed and left
    out (compiled on first use, as without a build).

    Raises
    ------
    RuntimeError
        When a process fails otherwise (its stderr).
    """
    shutil.rmtree(Path(package) / BUILT.name, ignore_errors=True)  # a former build's
    indices = list(range(len(KERNELS)))
    shares = [indices[i::processes] for i in range(processes) if indices[i::processes]]
    with tempfile.TemporaryDirectory() as scratch:
        # the callees' own cache files go to a scratch cache, not the package
        path = [str(Path(package).resolve().parent), os.environ.get("PYTHONPATH", "")]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(p for p in path if p),
            "NUMBA_CACHE_DIR": scratch,
            "NUMBA_CPU_NAME": PORTABLE_CPU,
            "NUMBA_CPU_FEATURES": "",
        }
        running = [
            subprocess.Popen(
                [sys.executable, "-c", _COMPILE, str(package), *map(str, share)],
                env=env,
                stderr=subprocess.PIPE,
                text=True,
            )
            for share in shares
        ]
        errors = [p.communicate()[1] for p in running]  # read: no full pipe
        failed = [e for p, e in zip(running, errors, strict=True) if p.returncode]
    if failed:
        raise RuntimeError(f"compiling zonal_dask's kernels failed:\n{failed[0]}")


def _built_path(py_func: Any) -> Path:
    return BUILT / py_func.__module__.removeprefix("zonal_dask.")


Shipped = tuple[str, str, str, str, bytes, bytes]
"""A kernel's compiled code given to another process: module, kernel, numba's
version, the source's stamp, numba's index key (signature, CPU, bytecode)
pickled, the code pickled (both unpickled only by the same numba version)."""


def packed(kernels: Iterable[tuple[str, str, tuple[types.Type, ...]]]) -> list[Shipped]:
    """The compiled code this process's caches hold (the build's, else
    numba's) for ``kernels`` (entries of ``KERNELS``), read without compiling:
    what a fresh cluster worker loads instead of compiling (``unpack``)."""
    import importlib

    found = []
    for module, name, signature in kernels:
        dispatcher = getattr(importlib.import_module(f"zonal_dask.{module}"), name)
        cache = dispatcher._cache
        if not isinstance(cache, _LayeredCache):
            continue
        stored = cache.stored(signature, dispatcher.targetctx.codegen())
        if stored is not None:
            key, blob = stored
            stamp = _source_stamp(dispatcher.py_func)
            found.append(
                (module, name, numba.__version__, stamp, pickle.dumps(key), blob)
            )
    return found


def unpack(shipped: Iterable[Shipped]) -> int:
    """Let each kernel load the code of ``shipped`` that was compiled for
    this process's CPU (or any of its architecture), numba version and
    source (the rest is ignored: compiled on first use as before); returns
    how many were taken."""
    import importlib

    taken = 0
    for module, name, version, stamp, pickled_key, blob in shipped:
        dispatcher = getattr(importlib.import_module(f"zonal_dask.{module}"), name)
        cache = dispatcher._cache
        if not isinstance(cache, _LayeredCache) or version != numba.__version__:
            continue
        if stamp != _source_stamp(dispatcher.py_func):
            continue
        key = pickle.loads(pickled_key)
        if key in cache.keys(key[0], dispatcher.targetctx.codegen()):
            cache.received[key] = blob
            taken += 1
    return taken


def _portable(key: Any) -> Any:
    """``key`` (numba's: signature, (triple, CPU, features), bytecode) for
    code compiled for any CPU of the architecture."""
    signature, (triple, _, _), code = key
    return (signature, (triple, PORTABLE_CPU, ""), code)


def _source_stamp(py_func: Any) -> str:
    return hashlib.sha256(Path(py_func.__code__.co_filename).read_bytes()).hexdigest()


class _BuiltLocator(caching._CacheLocator):
    """``BUILT/<module>``; the source stamped by its content."""

    def __init__(self, py_func: Any, py_file: str) -> None:
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._path = _built_path(py_func)

    def ensure_cache_path(self) -> None:  # only ``compile_kernels`` saves here
        self._path.mkdir(parents=True, exist_ok=True)

    def get_cache_path(self) -> str:
        return str(self._path)

    def get_source_stamp(self) -> str:
        return hashlib.sha256(Path(self._py_file).read_bytes()).hexdigest()

    def get_disambiguator(self) -> str:
        return str(self._lineno)

    @classmethod
    def from_function(cls, py_func: Any, py_file: str) -> _BuiltLocator | None:
        located = cls(py_func, py_file)
        return located if located._path.is_dir() else None


class _BuiltImpl(caching.CompileResultCacheImpl):
    _locator_classes = [_BuiltLocator]  # noqa: RUF012  numba's attribute


class _BuiltCache(caching.FunctionCache):
    """numba's cache of one function, in ``BUILT``: code for any CPU of the
    architecture, whichever this one is."""

    _impl_class = _BuiltImpl

    def __init__(self, py_func: Any, create: bool = False) -> None:
        if create:
            _built_path(py_func).mkdir(parents=True, exist_ok=True)
        super().__init__(py_func)

    def _index_key(self, sig: Any, codegen: Any) -> Any:
        return _portable(super()._index_key(sig, codegen))


class _LayeredCache(caching._Cache):
    """The build's compiled code when it holds the signature, else code
    ``received`` from another process (``unpack``), else numba's own cache
    (``user``), which keeps what this process compiles."""

    def __init__(self, user: caching.Cache, py_func: Any) -> None:
        self._user = user
        self.received: dict[Any, bytes] = {}
        self._built: caching._Cache | None = None
        if _built_path(py_func).is_dir():
            try:
                self._built = _BuiltCache(py_func)
            except RuntimeError:  # NUMBA_CACHE_LOCATOR_CLASSES chose no locator
                self._built = None

    @property
    def cache_path(self) -> str:
        return self._user.cache_path

    def load_overload(self, sig: Any, target_context: Any) -> Any:
        if self._built is not None:
            found = self._built.load_overload(sig, target_context)
            if found is not None:
                return found
        if self.received:
            target_context.refresh()
            for key in self.keys(sig, target_context.codegen()):
                blob = self.received.get(key)
                if blob is not None:
                    data = pickle.loads(blob)
                    return self._user._impl.rebuild(target_context, data)
        return self._user.load_overload(sig, target_context)

    def keys(self, sig: Any, codegen: Any) -> tuple[Any, Any]:
        """numba's keys of ``sig``'s code (signature, CPU, bytecode) compiled
        for this CPU, and for any CPU of its architecture."""
        key = self._user._index_key(sig, codegen)
        return key, _portable(key)

    def stored(self, sig: Any, codegen: Any) -> tuple[Any, bytes] | None:
        """The key and pickled code of ``sig`` in the build's files, else in
        numba's cache."""
        for cache in (self._built, self._user):
            if isinstance(cache, caching.Cache):
                key = cache._index_key(sig, codegen)
                files = cache._cache_file
                name = files._load_index().get(key)
                if name is not None:
                    try:
                        return key, Path(files._data_path(name)).read_bytes()
                    except OSError:  # removed meanwhile
                        pass
        return None

    def save_overload(self, sig: Any, data: Any) -> None:
        self._user.save_overload(sig, data)

    def enable(self) -> None:
        self._user.enable()

    def disable(self) -> None:
        self._user.disable()

    def flush(self) -> None:
        self._user.flush()
