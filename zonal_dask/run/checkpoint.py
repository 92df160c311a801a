"""Resumable runs: each chunk's partials saved as it completes.

A checkpoint is a directory holding ``checkpoint.json`` (the identity of the
run: inputs, their sizes and modification times, a digest of the labels as
planned, the chunk grid, and the request's identity: options and statistics)
and one ``chunk-I-J.npz`` (``chunk-B-I-J.npz`` for a block of bands) per
completed chunk task, each written to a temporary name and renamed, so a file
that exists is complete. A later run with the same identity loads the saved
chunks instead of reading and rasterizing them again, and computes the rest;
the merge and final steps are the same, so the table is identical. A run with
another identity is refused: mixing partials of two runs would be silently
wrong.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
import tempfile
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import rasterio
import xarray as xr
from dask.base import tokenize

from ..errors import CheckpointError, OutputError
from ..io.location import Location, filesystem, locate
from ..reduce.partials import LAYOUT

MANIFEST = "checkpoint.json"
# derived from the partial fields' registry and the partials' types: a
# checkpoint of another layout is refused, never misread
FORMAT = LAYOUT


@dataclass(frozen=True)
class Checkpoint:
    """An open checkpoint directory and the chunks it held when opened."""

    directory: Location
    identity: dict[str, Any]
    done: frozenset[tuple[int, ...]]

    @classmethod
    def open(
        cls, directory: str | os.PathLike | Location, identity: dict[str, Any]
    ) -> Checkpoint:
        """Open (or create) ``directory`` for a run of ``identity`` (``run_identity``).

        ``directory`` is a local path (made absolute) or a URL (``s3://...``):
        the workers write the chunks there, the client lists them.

        Raises
        ------
        CheckpointError
            If the directory holds another run's checkpoint, or other files.
        """
        where = locate(directory)
        fs, root = _filesystem(where)
        identity = json.loads(json.dumps(identity))
        manifest = where.join(MANIFEST)
        if fs.exists(_join(root, MANIFEST)):
            try:
                stored = json.loads(fs.cat_file(_join(root, MANIFEST)))
            except (OSError, ValueError) as err:
                raise CheckpointError(
                    f"{manifest}: unreadable ({err}); delete the directory to "
                    f"start again"
                ) from None
            differ = sorted(
                k for k in {*stored, *identity} if stored.get(k) != identity.get(k)
            )
            if "format" in differ:
                raise CheckpointError(
                    f"{directory}: checkpoint written by another version of "
                    f"zonal_dask (its partial results are laid out differently); "
                    f"delete it to compute again"
                )
            if differ:
                raise CheckpointError(
                    f"{where}: checkpoint of another run (differs in "
                    f"{', '.join(differ)}); use another directory or delete it"
                )
        else:
            if fs.isdir(root) and fs.ls(root, detail=False):
                raise CheckpointError(
                    f"{where}: not empty and not a checkpoint; use an empty "
                    f"or new directory"
                )
            try:
                fs.makedirs(root, exist_ok=True)
                write_file(manifest, json.dumps(identity, indent=1).encode())
            except OSError as err:
                raise CheckpointError(
                    f"{where}: cannot create ({err.strerror or err})"
                ) from None
        for stale in fs.glob(_join(root, ".*.tmp")):  # left by an interrupted save
            fs.rm(stale)
        done = frozenset(
            b for b in saved_blocks(where) if _intact(chunk_path(where, b))
        )
        return cls(where, identity, done)

    def wrap(self, block: tuple[int, ...], task: tuple) -> tuple:
        """The task for chunk ``block``: load its partials, or compute and save."""
        path = str(chunk_path(self.directory, block))
        if block in self.done:
            return (load_partials, path)
        return (save_partials, path, task)

    def __dask_tokenize__(self) -> tuple:
        return (self.directory.url, sorted(self.done))


def _filesystem(where: Location) -> tuple[Any, str]:
    try:
        return filesystem(where)
    except OutputError as err:
        raise CheckpointError(str(err)) from None


def _join(root: str, name: str) -> str:
    return f"{root.rstrip('/')}/{name}"


def _intact(path: Location) -> bool:
    """Whether a saved chunk reads back (every member's CRC checks). One that
    does not (truncated, overwritten, a disk error) is deleted, with a warning,
    and its chunk computed again."""
    fs, name = _filesystem(path)
    try:
        with zipfile.ZipFile(io.BytesIO(fs.cat_file(name))) as archive:
            if archive.testzip() is None and "__spec__.npy" in archive.namelist():
                return True
    except (OSError, zipfile.BadZipFile, EOFError, ValueError):
        pass
    warnings.warn(
        f"{path}: damaged checkpoint chunk; it is computed again", stacklevel=4
    )
    fs.rm(name)
    return False


def chunk_path(directory: Location, block: tuple[int, ...]) -> Location:
    return directory.join(f"chunk-{'-'.join(map(str, block))}.npz")


def saved_blocks(
    directory: str | os.PathLike | Location,
) -> frozenset[tuple[int, ...]]:
    """The chunks whose partials ``directory`` holds (none if it is no
    checkpoint): ``(row, col)``, or ``(band block, row, col)``."""
    fs, root = _filesystem(locate(directory))
    if not fs.exists(_join(root, MANIFEST)):
        return frozenset()
    return frozenset(
        tuple(int(i) for i in name.rsplit("/", 1)[-1][: -len(".npz")].split("-")[1:])
        for name in fs.glob(_join(root, "chunk-*.npz"))
    )


def remove_checkpoint(directory: str | os.PathLike | Location) -> None:
    """Remove a checkpoint once its run has succeeded: its manifest, its chunk
    files, and the directory if nothing else is left in it."""
    fs, root = _filesystem(locate(directory))
    if not fs.exists(_join(root, MANIFEST)):
        return
    for name in [
        *fs.glob(_join(root, "chunk-*.npz")),
        *fs.glob(_join(root, ".*.tmp")),
    ]:
        fs.rm(name)
    fs.rm(_join(root, MANIFEST))
    try:
        if not fs.ls(root, detail=False):
            fs.rmdir(root)
    except (OSError, FileNotFoundError):  # other files: not ours to remove
        pass


def save_partials(path: str, result: Any) -> Any:
    """Save one chunk's result atomically and pass it on.

    ``result`` is what the chunk step returns: a ``partials.ChunkResult``, or any
    nesting of NamedTuples (of zonal_dask's own types), tuples, dicts, None
    and numpy arrays. It is stored as plain arrays in one ``.npz`` (no pickle)
    with its structure as JSON.
    """
    arrays: list[np.ndarray] = []
    spec = _encode(result, arrays)
    buffer = io.BytesIO()
    named: dict[str, Any] = {f"a{i}": a for i, a in enumerate(arrays)}
    named["__spec__"] = np.frombuffer(json.dumps(spec).encode(), np.uint8)
    np.savez(buffer, **named)
    write_file(locate(path), buffer.getvalue())
    return result


def load_partials(path: str) -> Any:
    """One chunk's saved result, as ``save_partials`` received it."""
    try:
        where = locate(path)
        data = where.fs.cat_file(where.fs_path)
        with np.load(io.BytesIO(data), allow_pickle=False) as stored:
            spec = json.loads(stored["__spec__"].tobytes())
            return _decode(spec, stored)
    except (
        OSError,
        KeyError,
        ValueError,
        TypeError,
        EOFError,
        zipfile.BadZipFile,
        zlib.error,
    ) as err:
        raise CheckpointError(
            f"{path}: unreadable checkpoint chunk ({err}); delete it and run again"
        ) from None


def _encode(obj: Any, arrays: list[np.ndarray]) -> Any:
    if obj is None:
        return {"t": "none"}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        kind = type(obj)
        return {
            "t": "named",
            "type": f"{kind.__module__}:{kind.__qualname__}",
            "items": [_encode(v, arrays) for v in obj],
        }
    if isinstance(obj, (tuple, list)):
        return {"t": type(obj).__name__, "items": [_encode(v, arrays) for v in obj]}
    if isinstance(obj, dict):
        return {
            "t": "dict",
            "keys": [k.item() if isinstance(k, np.generic) else k for k in obj],
            "items": [_encode(v, arrays) for v in obj.values()],
        }
    arrays.append(np.asarray(obj))
    return {"t": "array", "i": len(arrays) - 1, "scalar": np.ndim(obj) == 0}


def _decode(spec: Any, stored: Any) -> Any:
    kind = spec["t"]
    if kind == "none":
        return None
    if kind == "array":
        value = stored[f"a{spec['i']}"]
        return value[()] if spec["scalar"] else value
    items = [_decode(v, stored) for v in spec.get("items", [])]
    if kind == "named":
        module, name = spec["type"].split(":")
        if module.split(".")[0] != "zonal_dask":
            raise ValueError(f"unexpected type {spec['type']}")
        return getattr(importlib.import_module(module), name)(*items)
    if kind == "dict":
        return dict(zip(spec["keys"], items, strict=True))
    return tuple(items) if kind == "tuple" else items


def run_identity(
    request: dict[str, Any],
    zones: Any,
    raster: Any,
    array: xr.DataArray,
    index: pd.Index | None,
    labels: str,
    weights: Any = None,
) -> dict[str, Any]:
    """What must match for two runs to share partials (JSON-ready).

    ``request`` is the request's identity, ``labels`` the label source's token
    (a digest of the zones as planned on the grid), ``weights`` the weights
    raster, if any.
    """
    identity = {
        "format": FORMAT,
        "zones": source_identity(zones),
        "raster": source_identity(raster, array),
        "labels": labels,
        "index": None if index is None else index_digest(index),
        "grid": {
            "shape": list(array.shape),
            "dtype": str(array.dtype),
            "transform": list(array.rio.transform())[:6],
            "crs": str(array.rio.crs),
            "chunks": [list(c) for c in array.data.chunks],
        },
        "request": request,
        "weights": (
            {"token": tokenize(weights)}
            if isinstance(weights, xr.DataArray)
            else None
            if weights is None
            else source_identity(weights)
        ),
    }
    return json.loads(json.dumps(identity))


def index_digest(index: pd.Index) -> list:
    digest = hashlib.sha1(
        pd.util.hash_pandas_object(pd.Series(index), index=False).to_numpy().tobytes()
    ).hexdigest()
    return [len(index), str(index.name), digest]


def source_identity(source: Any, array: xr.DataArray | None = None) -> Any:
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.exists(path):  # a URL: its name only
            return {"path": path}
        identity: dict[str, Any] = {"path": os.path.abspath(path), **_stat(path)}
        if array is not None:  # a VRT's sources, masks, sidecars: GDAL's list
            identity["files"] = {
                os.path.abspath(f): _stat(f)
                for f in _raster_files(path)
                if os.path.abspath(f) != identity["path"]
            }
        return identity
    if array is not None:  # an in-memory DataArray: dask's token of its data
        return {"dask_name": array.data.name}
    return {"type": type(source).__name__}


def _stat(path: str) -> dict[str, int]:
    try:
        stat = os.stat(path)
    except OSError:  # a source GDAL lists but cannot reach: its absence counts
        return {"size": -1, "mtime_ns": -1}
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _raster_files(path: str) -> list[str]:
    """Every file GDAL reads for the raster at ``path`` (GDALGetFileList: a
    VRT's sources, a ``.msk`` mask, ``.aux.xml`` and ``.ovr`` sidecars)."""
    try:
        with rasterio.open(path) as src:
            return sorted(set(src.files))
    except rasterio.errors.RasterioIOError:
        return []


def write_file(path: Location, data: bytes) -> None:
    """Write ``data`` whole or not at all: locally to a temporary name renamed
    into place; on object storage in one request (an object appears whole)."""
    if path.remote:
        fs, name = filesystem(path)
        fs.pipe_file(name, data)
        return
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent.url
    )
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path.url)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
