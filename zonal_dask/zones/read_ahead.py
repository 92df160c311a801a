"""Reading the zones on a thread while the rest of a run starts.

A run spends its first second or so importing the engine (dask, xarray,
rasterio, numba) and loading the compiled kernels, all holding Python's
lock, while the zones' file waits. GDAL's Arrow reader holds no Python lock
while it reads, so a layer can be read on a second core meanwhile:
``reading_ahead`` starts ``pyogrio.raw.read_arrow`` on a thread as soon as the
caller knows the path, and ``zones.arrow_read.read_table`` takes what it
read (``take``) instead of reading again.

Only the plain case is read ahead: a local file (not a raster, GeoParquet or
a URL) of one layer, or the layer named. The reading is the very call
``read_table`` makes, so its result is the same; any failure, or a file
changed since (its size or modification time), leaves the reading to
``read_table``, which then raises its own error. A table nobody took is
dropped when the block ends. ``start`` imports pyogrio (and with it GeoPandas)
before the thread starts: the rest of the engine is imported meanwhile.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# not read ahead: GeoParquet (pyarrow reads it) and label rasters (named here
# again, not to import the engine: io.raster.LABEL_RASTER_SUFFIXES, tested)
SKIPPED_SUFFIXES = (".parquet", ".geoparquet", ".tif", ".tiff", ".vrt", ".img")

_lock = threading.Lock()
_pending: dict[tuple[str, Any], _Reading] = {}


class _Reading:
    """One layer read on a thread: its file's identity when it started,
    and what ``read_arrow`` gave (None: failed, or not the plain case)."""

    def __init__(self, path: str, layer: Any, stamp: tuple[int, int]) -> None:
        self.path, self.layer, self.stamp = path, layer, stamp
        self.result: Any = None
        self.thread = threading.Thread(
            target=self._read, name="zonal_dask-read-ahead", daemon=True
        )

    def _read(self) -> None:
        import pyogrio  # imported by ``start``: nothing is imported here
        from pyogrio.raw import read_arrow

        try:
            if self.layer is None and len(pyogrio.list_layers(self.path)) != 1:
                return  # read_source asks which layer
            self.result = read_arrow(self.path, layer=self.layer, return_fids=True)
        except Exception:  # read_table reads it again and says what is wrong
            self.result = None


def _stamp(path: str) -> tuple[int, int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return (status.st_size, status.st_mtime_ns)


def start(zones: Any, layer: str | int | None = None) -> tuple[str, Any] | None:
    """Start reading ``zones``' layer ``layer`` on a thread when it is a
    local vector file; the key ``take`` finds it by, or None."""
    if not isinstance(zones, (str, os.PathLike)):
        return None
    path = os.fspath(zones)
    if not isinstance(path, str) or "://" in path or path.startswith("/vsi"):
        return None
    if path.lower().endswith(SKIPPED_SUFFIXES) or os.path.isdir(path):
        return None
    stamp = _stamp(path)
    if stamp is None:
        return None
    # imported here, not on the thread: two threads importing modules of one
    # package at once (pyogrio imports geopandas, pandas, pyproj) can deadlock
    import pyarrow  # noqa: F401  (read_arrow's)
    import pyogrio.raw  # noqa: F401

    key = (os.path.abspath(path), layer)
    reading = _Reading(path, layer, stamp)
    with _lock:
        if key in _pending:  # another call reads it already
            return None
        _pending[key] = reading
    reading.thread.start()
    return key


def take(path: str, layer: str | int | None) -> Any:
    """What ``read_arrow(path, layer=layer, return_fids=True)`` gives, as
    read ahead (once: a second call reads again), or None."""
    with _lock:
        reading = _pending.pop((os.path.abspath(path), layer), None)
    if reading is None:
        return None
    reading.thread.join()
    if _stamp(path) != reading.stamp:
        return None  # changed meanwhile: read it as it is now
    return reading.result


def discard(key: tuple[str, Any] | None) -> None:
    """Forget a reading nobody took (its thread ends on its own)."""
    if key is not None:
        with _lock:
            _pending.pop(key, None)


@contextmanager
def reading_ahead(zones: Any, layer: str | int | None = None) -> Iterator[None]:
    """``zones`` read ahead (``start``) for the calls inside the block;
    what they did not take is dropped when it ends."""
    key = start(zones, layer)
    try:
        yield
    finally:
        discard(key)
