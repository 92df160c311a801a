"""Where an input or output lives: a local path made absolute, or a URL.

Every location the package reads or writes is classified once, on the client,
by :func:`locate`: a local path becomes absolute (a worker resolving a
relative path against its own working directory would find another file, or
none), a URL (``s3://``, ``gs://``, ``az://``, ``https://``, ``memory://``)
stays a URL and is written through fsspec. ``pathlib.Path`` never sees a URL
(``Path("s3://b/x")`` is ``s3:/b/x``, a local directory named ``s3:``).
GDAL's virtual paths (``/vsis3/...``) can be read but not written.

Writing on object storage cannot rename a directory into place: what workers
write goes under a unique temporary prefix beside the output, and the client
publishes it only once every part is there (``publish_directory``).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import OutputError


def is_remote(path: str) -> bool:
    """A URL or a GDAL virtual path, not a local file."""
    return "://" in path or path.startswith("/vsi")


# a scheme of RFC 3986 followed by "://" (a Windows drive "C:\" is no URL)
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")


@dataclass(frozen=True)
class Location:
    """A classified location: ``url`` is an absolute local path or a URL."""

    url: str
    remote: bool

    def __str__(self) -> str:
        return self.url

    def __fspath__(self) -> str:
        if self.remote:
            raise TypeError(f"{self.url} is a URL, not a local path")
        return self.url

    @property
    def name(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]

    @property
    def suffix(self) -> str:
        name = self.name
        return name[name.rfind(".") :].lower() if "." in name.lstrip(".") else ""

    @property
    def parent(self) -> Location:
        if not self.remote:
            return Location(os.path.dirname(self.url), False)
        head = self.url.rstrip("/").rsplit("/", 1)[0]
        return Location(head if "://" in head else self.url, True)

    def join(self, *names: str) -> Location:
        if not self.remote:
            return Location(os.path.join(self.url, *names), False)
        return Location("/".join([self.url.rstrip("/"), *names]), True)

    def sibling(self, prefix: str) -> Location:
        """A unique, hidden name beside this one: ``.NAME.PREFIX-XXXX.tmp``."""
        unique = f".{self.name}.{prefix}-{uuid.uuid4().hex[:12]}.tmp"
        return self.parent.join(unique)

    @property
    def fs(self) -> Any:
        """The fsspec file system holding it (the local one for a path)."""
        return filesystem(self)[0]

    @property
    def fs_path(self) -> str:
        """The location as its file system names it (no scheme)."""
        return filesystem(self)[1]


def locate(where: str | os.PathLike[str] | Location) -> Location:
    """Classify ``where`` once: a local path made absolute, or a URL.

    ``file://`` URLs are local paths; ``~`` is expanded.

    Examples
    --------
    >>> locate("s3://bucket/out.zarr").url
    's3://bucket/out.zarr'
    >>> locate("/data/../data/out.zarr").url
    '/data/out.zarr'
    """
    if isinstance(where, Location):
        return where
    text = os.fspath(where)
    match = _URL.match(text)
    if match and match.group(1).lower() != "file":
        return Location(text, True)
    if match:
        text = text[len("file://") :]
    if text.startswith("/vsi"):
        return Location(text, True)
    return Location(os.path.abspath(os.path.expanduser(text)), False)


def is_url(where: object) -> bool:
    """Whether ``where`` names a URL or GDAL virtual path (not a local file)."""
    return isinstance(where, (str, os.PathLike)) and locate(where).remote


def filesystem(
    location: Location, environ: Mapping[str, str] | None = None
) -> tuple[Any, str]:
    """``(fsspec file system, path in it)`` for ``location``.

    Raises
    ------
    OutputError
        A GDAL virtual path, or a URL whose protocol fsspec cannot open (its
        package, such as s3fs, gcsfs or adlfs, is not installed).
    """
    import fsspec
    from fsspec.core import url_to_fs

    if location.url.startswith("/vsi"):
        raise OutputError(
            f"{location}: a GDAL virtual path can be read, not written; use a URL "
            "such as s3://bucket/key"
        )
    if not location.remote:
        return fsspec.filesystem("file"), location.url
    try:
        return url_to_fs(location.url, **storage_options(location.url, environ))
    except (ImportError, ValueError) as err:
        raise OutputError(
            f"{location}: cannot write there ({str(err).splitlines()[0]})"
        ) from None


def storage_options(
    url: str, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """fsspec's options for ``url``: the S3 endpoint in effect
    (``AWS_ENDPOINT_URL[_S3]``), given to s3fs by name. fsspec keeps one file
    system per set of arguments, so a worker that a run gave another endpoint
    (``run/workers.py``) gets a file system of that endpoint, not one made for
    an earlier run's; every writer through fsspec (zarr, dask's Parquet) takes
    them."""
    if not url.lower().startswith(("s3://", "s3a://")):
        return {}
    environ = os.environ if environ is None else environ
    endpoint = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL")
    return {"endpoint_url": endpoint} if endpoint else {}


def publish_directory(
    staged: Location, target: Location, *, overwrite: bool = False
) -> None:
    """Put the complete directory ``staged`` at ``target``.

    Locally a rename (a ``FileExistsError`` if ``target`` exists and not
    ``overwrite``). On object storage, where nothing renames a prefix, the
    parts are copied under ``target`` and the staged prefix removed: readers
    see the output only after every part of it was written and checked.
    """
    if not staged.remote:
        if os.path.exists(target.url):
            if not overwrite:
                raise FileExistsError(target.url)
            import shutil

            shutil.rmtree(target.url)
        os.rename(staged.url, target.url)
        return
    fs, target_path = filesystem(target)
    if fs.exists(target_path):
        if not overwrite:
            raise FileExistsError(target.url)
        fs.rm(target_path, recursive=True)
    staged_path = filesystem(staged)[1]
    fs.copy(staged_path, target_path, recursive=True)
    fs.rm(staged_path, recursive=True)
