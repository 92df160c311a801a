"""The compiled kernels a run needs, loaded or compiled before its first chunk.

numba compiles a kernel on its first call in a process unless its cache
(``NUMBA_CACHE_DIR``, else ``__pycache__`` beside the package's sources) holds
it; loading a cached kernel takes a fraction of a second, compiling one takes
seconds. ``prepare_kernels`` calls each kernel of the families a run needs
once, on a tiny input through the same Python call as a chunk task, so that
it is loaded (or compiled, once per machine and numba version) before the
first chunk. The moments kernel has one specialization per raster dtype
(``KERNEL_DTYPES``), compiled only for the dtypes a run reads.

When a kernel is not in the cache, the log line ``preparing compiled kernels,
first run only`` (logger ``zonal_dask``, level WARNING: printed on stderr when
logging is not configured) comes before numba starts compiling.

A cluster worker calls ``prepare_kernels`` once, with the families and the
raster dtypes of the runs it will serve (``kernels_for`` gives a request's),
so that its first chunk does not wait for the compiler. Where the package was
built (``pip install .``) the kernels are compiled already
(``zonal_dask.precompiled``); elsewhere the run's client gives its workers
the compiled code it holds (``compiled_code``), which a worker with the same
CPU, numba and sources loads instead of compiling.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
from numba.core import event

if TYPE_CHECKING:
    from ..precompiled import Shipped
    from ..request import Request

__all__ = [
    "FAMILIES",
    "KERNEL_DTYPES",
    "announced",
    "compiled_code",
    "kernels_for",
    "prepare_in_background",
    "prepare_kernels",
]

FAMILIES = ("moments", "burn", "coverage", "line_lengths")
"""Kernel families: the per-chunk statistics (for each raster dtype), the
GDAL-exact burner (centre and all-touched rules), polygons' coverage fractions
and lines' lengths per cell (coverage weights)."""

KERNEL_DTYPES = (
    *("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64"),
    *("float32", "float64"),
)
"""The dtypes the moments kernel is compiled for, one specialization each
(``reduce.moments.kernel_dtype`` maps a raster's dtype to one)."""

ANNOUNCEMENT = (
    "preparing compiled kernels, first run only (numba compiles them once into "
    "its cache; later runs load them)"
)

_log = logging.getLogger("zonal_dask")
_ANNOUNCED = threading.Event()


def kernels_for(request: Request) -> tuple[str, ...]:
    """The kernel families a run of ``request`` calls, lines' lengths aside
    (only zones holding lines need them: ``prepare_kernels(["line_lengths"])``)."""
    if request.route != "polygons":
        return ("moments",)
    if request.coverage is not None:
        return ("moments", "coverage")
    return ("moments", "burn")  # either rule; small="touched" burns all touched


def prepare_kernels(
    families: Iterable[str] = FAMILIES,
    dtypes: Iterable[np.typing.DTypeLike] = ("float64",),
    announce: Callable[[str], None] | None = None,
) -> tuple[str, ...]:
    """Load (or, on a first run, compile) the kernels of ``families``.

    Parameters
    ----------
    families
        Names among ``FAMILIES``; ``kernels_for(request)`` gives a run's.
    dtypes
        The dtypes of the rasters the moments kernel will read (any numeric
        dtype: each maps to one of ``KERNEL_DTYPES``).
    announce
        Called with ``ANNOUNCEMENT`` once, before numba starts compiling the
        first kernel missing from its cache; by default a WARNING on the
        ``zonal_dask`` logger.

    Returns
    -------
    tuple of str
        The kernels that were compiled (empty when the cache held them all).
    """
    families = tuple(families)
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        raise ValueError(f"unknown kernel families {unknown}; use {FAMILIES}")
    with announced(announce) as listener:
        if "moments" in families:
            from ..reduce.moments import kernel_dtype

            # the merge first: a run of one chunk never merges, and could end
            # (this thread is a daemon) before the merge's kernels are cached
            _call_merge()
            for dtype in sorted({kernel_dtype(np.dtype(d)).name for d in dtypes}):
                _call_moments(np.dtype(dtype))
        if "burn" in families:
            _call_burner()
        if "coverage" in families:
            _call_coverage(lines=False)
        if "line_lengths" in families:
            _call_coverage(lines=True)
    return tuple(listener.compiled)


@contextmanager
def announced(
    announce: Callable[[str], None] | None = None,
) -> Iterator[_CompileListener]:
    """Inside the block, ``ANNOUNCEMENT`` (once a process) before numba
    compiles one of the package's kernels: for the kernels a run calls
    outside ``prepare_kernels`` (reading zones: ``zones.table``)."""
    listener = _CompileListener(announce or _log.warning)
    event.register("numba:compile", listener)
    try:
        yield listener
    finally:
        event.unregister("numba:compile", listener)


# each family's kernels called from Python (``precompiled.KERNELS``' names); a
# chunk task gathers its zones from the shards (``zones.gather``) to burn them
# or weigh them by coverage
_GATHER = ("zones.gather", "_take")
_ENTRIES = {
    "moments": (
        ("reduce.moment_kernel", "moments"),
        ("reduce.moment_merge", "merge_rows"),
        ("reduce.moment_merge", "merge_central"),
    ),
    "burn": (("burn.prepare", "burn_claims"), _GATHER),
    "coverage": (("coverage.fraction_kernel", "coverage"), _GATHER),
    "line_lengths": (("coverage.line_walk", "line_lengths"),),
}


def compiled_code(
    families: Iterable[str], dtypes: Iterable[np.typing.DTypeLike]
) -> list[Shipped]:
    """The compiled code of the kernels ``prepare_kernels(families, dtypes)``
    loads, as this process's caches hold it (none compiled here): for a
    cluster's workers to load (``precompiled.unpack``) instead of compiling."""
    from ..precompiled import KERNELS, packed
    from ..reduce.moments import kernel_dtype

    entries = {entry for family in families for entry in _ENTRIES[family]}
    moments = {kernel_dtype(np.dtype(d)).name for d in dtypes}
    return packed(
        (module, name, signature)
        for module, name, signature in KERNELS
        if (module, name) in entries
        and (name != "moments" or str(getattr(signature[0], "dtype", "")) in moments)
    )


def prepare_in_background(
    families: Iterable[str], dtypes: Iterable[np.typing.DTypeLike]
) -> threading.Thread:
    """``prepare_kernels`` on a daemon thread (started), so that loading or
    compiling overlaps reading the zones; a chunk that needs a kernel first
    waits for numba's compiler lock, not for a second compile."""
    thread = threading.Thread(
        target=prepare_kernels,
        args=(tuple(families), tuple(dtypes)),
        name="zonal_dask-prepare-kernels",
        daemon=True,
    )
    thread.start()
    return thread


class _CompileListener(event.Listener):
    """Announces once, when numba starts compiling one of the package's
    kernels (a cache miss: numba fires ``numba:compile`` only then), and names
    the kernels compiled."""

    def __init__(self, announce: Callable[[str], None]) -> None:
        self.announce = announce
        self.compiled: list[str] = []

    def _ours(self, ev: event.Event) -> str | None:
        function = ev.data["dispatcher"].py_func
        module = getattr(function, "__module__", None) or ""
        if module.startswith("zonal_dask."):
            return f"{module}.{function.__name__}"
        return None

    def on_start(self, ev: event.Event) -> None:
        # once a process: runs prepare several families on threads at once
        if self._ours(ev) and not _ANNOUNCED.is_set():
            _ANNOUNCED.set()
            self.announce(ANNOUNCEMENT)

    def on_end(self, ev: event.Event) -> None:
        name = self._ours(ev)
        if name:
            self.compiled.append(name)


def _call_moments(dtype: np.dtype) -> None:
    from ..labels.sources import ChunkLabels
    from ..reduce.moments import chunk_moments

    labels = ChunkLabels(
        np.zeros((1, 1, 1), np.int32),
        np.empty(0, np.int64),
        np.empty(0, np.int32),
        np.zeros(1, np.int64),
    )
    chunk_moments(np.zeros((1, 1), dtype), labels, 0)


def _call_merge() -> None:
    """The merge's kernels: one signature whatever the raster's dtype."""
    from ..reduce.moments import N_FIELDS, Moments, merge

    part = Moments(np.zeros(1, np.int64), np.zeros((1, N_FIELDS)))
    merge([part, part])


def _call_burner() -> None:
    import shapely

    from ..burn.rules import burn_chunk

    burn_chunk(np.array([shapely.box(0, -1, 1, 0)]), (0, 0), (1, 1), (1, 1))
    _call_gather()


def _call_gather() -> None:
    from ..zones.gather import take_flat

    starts = np.array([0, 1], np.int64)
    take_flat(starts, starts[:1], starts, starts, np.zeros((1, 2)), starts[:1])


def _call_coverage(lines: bool) -> None:
    import shapely

    from ..coverage.weights import coverage_fractions

    shape = shapely.LineString([(0, 0), (1, 1)]) if lines else shapely.box(0, 0, 1, 1)
    coverage_fractions(np.array([shape]), (0, 0), (1, 1), (1, -1), (1, 1))
    _call_gather()
