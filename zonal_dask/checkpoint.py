"""Resumable runs: each chunk's partials saved as it completes.

A checkpoint is a directory holding ``checkpoint.json`` (the identity of the
run: inputs, their sizes and modification times, a hash of the zones as
planned, the chunk grid, options and statistics) and one ``chunk-I-J.npz`` per
completed chunk task, each written to a temporary name and renamed, so a file
that exists is complete. A later run with the same identity loads the saved
chunks instead of reading and rasterizing them again, and computes the rest;
the merge and final steps are the same, so the table is identical. A run with
another identity is refused: mixing partials of two runs would be silently
wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .errors import CheckpointError
from .rasterize import ChunkTask, tasks_token
from .reduce import Partials
from .stats import Statistic

MANIFEST = "checkpoint.json"
FORMAT = 1


@dataclass(frozen=True)
class Checkpoint:
    """An open checkpoint directory and the chunks it held when opened."""

    directory: Path
    identity: dict[str, Any]
    done: frozenset[tuple[int, int]]
    total: int

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike,
        zones: Any,
        raster: Any,
        array: xr.DataArray,
        index: pd.Index,
        tasks: Sequence[ChunkTask],
        stats: Sequence[Statistic],
        options: dict[str, Any],
    ) -> Checkpoint:
        """Open (or create) ``directory`` for this run.

        Raises
        ------
        CheckpointError
            If the directory holds another run's checkpoint, or other files.
        """
        directory = Path(directory)
        identity = run_identity(zones, raster, array, index, tasks, stats, options)
        manifest = directory / MANIFEST
        if manifest.exists():
            stored = json.loads(manifest.read_text())
            differ = sorted(
                k for k in {*stored, *identity} if stored.get(k) != identity.get(k)
            )
            if differ:
                raise CheckpointError(
                    f"{directory}: checkpoint of another run (differs in "
                    f"{', '.join(differ)}); use another directory or delete it"
                )
        else:
            if directory.exists() and any(directory.iterdir()):
                raise CheckpointError(
                    f"{directory}: not empty and not a checkpoint; use an empty "
                    f"or new directory"
                )
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise CheckpointError(
                    f"{directory}: cannot create ({err.strerror})"
                ) from None
            _write_atomic(manifest, json.dumps(identity, indent=1).encode())
        for stale in directory.glob(".*.tmp"):  # left by an interrupted save
            stale.unlink(missing_ok=True)
        blocks = {t.block for t in tasks}
        done = frozenset(b for b in blocks if chunk_path(directory, b).exists())
        return cls(directory, identity, done, len(blocks))

    def wrap(self, block: tuple[int, int], task: tuple) -> tuple:
        """The task for chunk ``block``: load its partials, or compute and save."""
        path = str(chunk_path(self.directory, block))
        if block in self.done:
            return (load_partials, path)
        return (save_partials, path, task)

    def __dask_tokenize__(self) -> tuple:
        return (str(self.directory.resolve()), sorted(self.done))


def chunk_path(directory: Path, block: tuple[int, int]) -> Path:
    return directory / f"chunk-{block[0]}-{block[1]}.npz"


def save_partials(path: str, partials: Partials) -> Partials:
    """Save one chunk's partials atomically and pass them on."""
    buffer = _npz_bytes(partials)
    _write_atomic(Path(path), buffer)
    return partials


def load_partials(path: str) -> Partials:
    """One chunk's saved partials."""
    try:
        with np.load(path) as stored:
            return Partials(*(stored[field] for field in Partials._fields))
    except (OSError, KeyError, ValueError) as err:
        raise CheckpointError(f"{path}: unreadable checkpoint chunk ({err})") from None


def run_identity(
    zones: Any,
    raster: Any,
    array: xr.DataArray,
    index: pd.Index,
    tasks: Sequence[ChunkTask],
    stats: Sequence[Statistic],
    options: dict[str, Any],
) -> dict[str, Any]:
    """What must match for two runs to share partials (JSON-ready)."""
    index_hash = hashlib.sha1(
        pd.util.hash_pandas_object(pd.Series(index), index=False).to_numpy().tobytes()
    ).hexdigest()
    identity = {
        "format": FORMAT,
        "zones": _source_identity(zones),
        "raster": _source_identity(raster, array),
        "zones_hash": tasks_token(tasks),
        "index": [len(index), str(index.name), index_hash],
        "grid": {
            "shape": list(array.shape),
            "dtype": str(array.dtype),
            "transform": list(array.rio.transform())[:6],
            "crs": str(array.rio.crs),
            "chunks": [list(c) for c in array.chunks],
        },
        "stats": [s.name for s in stats],
        "options": {k: repr(v) for k, v in sorted(options.items())},
    }
    return json.loads(json.dumps(identity))


def _source_identity(source: Any, array: xr.DataArray | None = None) -> Any:
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.exists(path):  # a URL: its name only
            return {"path": path}
        stat = os.stat(path)
        return {
            "path": os.path.abspath(path),
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
        }
    if array is not None:  # an in-memory DataArray: dask's token of its data
        return {"dask_name": array.data.name}
    return {"type": type(source).__name__}


def _npz_bytes(partials: Partials) -> bytes:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **partials._asdict())
    return buffer.getvalue()


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
