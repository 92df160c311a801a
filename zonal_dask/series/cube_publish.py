"""Putting a staged series output in place, on a local disk or object storage.

Locally a staged Zarr directory is renamed into place, or exchanged
atomically with the old one (Linux ``renameat2``); a file is renamed, or
hard-linked when the name must still be free.

Object storage renames nothing, and no write spans several objects: a staged
store is copied object by object, the data first and the metadata last (the
root group's metadata very last), so a reader finds no store until every
chunk is in. An append stages only what it reads or rewrites
(``stage_append``: not the chunks of older steps) and publishes only the
objects it changed (new chunks, the last chunk along ``time`` it filled, the
metadata): until an
array's metadata is replaced a reader sees its old shape, and the chunks it
reads hold the old values there. A file is one object, copied in one request.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

from ..io.location import Location, filesystem

# Zarr's metadata objects (format 3, then 2): copied after the chunks
METADATA = ("zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata")


def signature(where: Location) -> tuple | None:
    """What identifies the output at ``where`` now (None: nothing there):
    another run's output, or an append, changes it.

    Locally the inode, size and time; on object storage the size, ETag and
    time of the store's root and ``time`` metadata (or of the file).
    """
    if not where.remote:
        try:
            stat = os.stat(where.url)
        except FileNotFoundError:
            return None
        return (stat.st_ino, stat.st_size, stat.st_mtime_ns)
    fs, name = filesystem(where)
    fs.invalidate_cache()
    if not fs.exists(name):
        return None
    if not fs.isdir(name):
        return (_version(fs.info(name)),)
    found = []
    for member in METADATA:
        for path in (f"{name}/{member}", f"{name}/time/{member}"):
            if fs.isfile(path):
                found.append((path, _version(fs.info(path))))
    return ("store", *found)


def _version(info: dict[str, Any]) -> tuple:
    """An object's size, content tag and time, as its file system gives them."""
    tag = info.get("ETag", info.get("etag", info.get("md5")))
    when = info.get("LastModified", info.get("mtime", info.get("created")))
    return (info.get("size"), str(tag), str(when))


@contextlib.contextmanager
def interrupts_deferred(remote: bool) -> Iterator[None]:
    """Hold a Ctrl-C (``SIGINT``) that arrives while objects are written until
    they are: fsspec writes on a thread of its own, which goes on after the
    main thread is interrupted, so a write in flight would land after the
    staging prefix was removed (or leave half a published store). The
    interrupt is raised once the block ends; locally, or off the main
    thread, nothing is held."""
    if not remote or threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[tuple[int, Any]] = []
    previous = signal.signal(
        signal.SIGINT, lambda n, frame: received.append((n, frame))
    )
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received and previous is not signal.SIG_IGN:
            if callable(previous):
                previous(*received[0])
            else:
                raise KeyboardInterrupt


def stage_append(target: Location, staged: Location, length: int) -> None:
    """Copy to ``staged`` (on the server) what appending to the store
    ``target`` along ``time`` reads or rewrites: every object but the chunks
    of the (zone, time[, band]) arrays that hold only steps before the
    ``length`` stored ones end, which an append never touches. A store laid
    out otherwise (not Zarr 3's regular grid and default chunk keys) is
    copied whole."""
    fs, source = filesystem(target)
    destination = filesystem(staged)[1]
    fs.invalidate_cache()
    objects = _objects(fs, source)
    untouched = set()
    for name in objects:
        if name.count("/") == 1 and name.endswith("/zarr.json"):
            metadata = json.loads(fs.cat_file(f"{source}/{name}"))
            untouched |= _chunks_before(
                metadata, name[: -len("/zarr.json")], objects, length
            )
    copied = [name for name in objects if name not in untouched]
    fs.copy([f"{source}/{n}" for n in copied], [f"{destination}/{n}" for n in copied])


def _chunks_before(
    metadata: dict[str, Any], array: str, objects: dict[str, Any], length: int
) -> set[str]:
    """The chunk objects of ``array`` holding only steps before ``length``
    (none unless it is a Zarr 3 array with a time and another dimension)."""
    dims = metadata.get("dimension_names") or []
    grid = metadata.get("chunk_grid", {})
    keys = metadata.get("chunk_key_encoding", {})
    if (
        metadata.get("node_type") != "array"
        or "time" not in dims
        or len(dims) < 2
        or grid.get("name") != "regular"
        or keys.get("name") != "default"
        or keys.get("configuration", {}).get("separator", "/") != "/"
    ):
        return set()
    axis = dims.index("time")
    first = length // grid["configuration"]["chunk_shape"][axis]  # holds new steps
    prefix = f"{array}/c/"
    found = set()
    for name in objects:
        if name.startswith(prefix):
            index = name[len(prefix) :].split("/")
            if len(index) == len(dims) and int(index[axis]) < first:
                found.add(name)
    return found


def publish_store(staged: Location, target: Location, *, complete: bool) -> None:
    """Copy the store ``staged`` to ``target`` on object storage: the objects
    that differ from the target's (all of them for a new output), data before
    metadata, the root's metadata last; when the staged store is
    ``complete`` (not an append's), the objects it no longer has are then
    removed (a replaced output)."""
    fs, source = filesystem(staged)
    destination = filesystem(target)[1]
    fs.invalidate_cache()
    new = _objects(fs, source)
    old = _objects(fs, destination) if fs.exists(destination) else {}
    changed = [
        name
        for name, info in new.items()
        if name not in old
        or _content(info) is None  # no tag to compare: copied
        or _content(info) != _content(old[name])
    ]

    def order(name: str) -> tuple[int, str]:
        leaf = name.rsplit("/", 1)[-1]
        return (2 if "/" not in name else 1 if leaf in METADATA else 0, name)

    for name in sorted(changed, key=order):
        fs.copy(f"{source}/{name}", f"{destination}/{name}")
    stale = [f"{destination}/{name}" for name in old if name not in new]
    if complete and stale:
        fs.rm(stale)


def _objects(fs: Any, root: str) -> dict[str, dict[str, Any]]:
    """The objects under ``root`` by their names relative to it."""
    root = root.rstrip("/")
    return {
        path[len(root) + 1 :]: info
        for path, info in fs.find(root, detail=True).items()
        if path.startswith(root + "/")
    }


def _content(info: dict[str, Any]) -> tuple | None:
    """What tells an object's content without reading it (S3's ETag), or
    None where the file system gives no such tag: then it is copied."""
    tag = info.get("ETag", info.get("etag", info.get("md5")))
    return None if tag is None else (info.get("size"), str(tag))


def publish_file(staged: Location, target: Location, *, replace: bool) -> None:
    """Copy the file ``staged`` to ``target`` on object storage (one object,
    written whole); without ``replace`` only if nothing is there."""
    fs, source = filesystem(staged)
    destination = filesystem(target)[1]
    fs.invalidate_cache()
    if not replace and fs.exists(destination):
        raise FileExistsError(target.url)
    fs.copy(source, destination)


def replace_dir(new: str, path: str) -> None:
    """Put directory ``new`` at ``path``: a rename, or an atomic exchange with
    the old directory (Linux ``renameat2``), which is then removed."""
    if not os.path.exists(path):
        if not rename_new(new, path):  # a directory renames over an empty one
            raise FileExistsError(path)
        return
    if not _exchange(new, path):
        old = new + ".old"
        os.rename(path, old)
        os.rename(new, path)
        new = old
    shutil.rmtree(new, ignore_errors=True)


def rename_new(a: str, b: str) -> bool:
    """Rename ``a`` to ``b`` unless ``b`` exists, atomically where Linux's
    ``renameat2(RENAME_NOREPLACE)`` is there; False if ``b`` exists."""
    try:
        renameat2: Callable[..., int] = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        if os.path.exists(b):
            return False
        os.rename(a, b)
        return True
    at_fdcwd, noreplace = -100, 1
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), noreplace) == 0:
        return True
    error = ctypes.get_errno()
    if error == errno.EEXIST:
        return False
    if error in (errno.EINVAL, errno.ENOSYS):  # a file system without the flag
        if os.path.exists(b):
            return False
        os.rename(a, b)
        return True
    raise OSError(error, os.strerror(error), b)


def _exchange(a: str, b: str) -> bool:
    """Swap two paths atomically (Linux); False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2: Callable[..., int] = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, exchange = -100, 2
    done = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), exchange)
    return done == 0
