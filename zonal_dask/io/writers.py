"""Writing results: every format written to a temporary name, then published.

Tables go to ``.txt``/``.tsv`` (the classic recipe's layout), ``.csv`` or
``.parquet``; features with their attributes to ``.gpkg``, ``.geojson``,
``.fgb`` or GeoParquet. A crash, a full disk or Ctrl-C leaves the old file or
none, never half of one: GDAL does not report every failed write (a
FlatGeobuf on a full disk is written short without an error), so a feature
file is read back before it is published. Without ``overwrite``, publishing is
a hard link, which fails if the name exists: of two runs racing for one
output, one wins and the other says so.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from ..errors import OutputError
from .location import (
    Location,
    filesystem,
    locate,
    publish_directory,
    storage_options,
)
from .text_table import write_delimited

TABLE_FORMATS = (".txt", ".tsv", ".csv", ".parquet")
# Formats that carry the features: GDAL driver for each (None: GeoParquet).
FEATURE_FORMATS: dict[str, str | None] = {
    ".gpkg": "GPKG",
    ".geojson": "GeoJSON",
    ".fgb": "FlatGeobuf",
    ".parquet": None,
}


def write_table(
    table: pd.DataFrame, path: str | os.PathLike, *, overwrite: bool = False
) -> Path:
    """Write a table atomically; the format follows the extension.

    ``.txt`` and ``.tsv`` are tab-separated with the index as the last column
    (the classic recipe's layout), ``.csv`` has the index first, ``.parquet``
    keeps dtypes; column names become text (class values name the columns of
    ``categorical``). In text tables an undefined value is an empty field. The
    table goes to a temporary file in the same directory that is renamed into
    place, so a crash leaves the old file or none, never half.
    """
    path = Path(path)
    suffix = _suffix(path, TABLE_FORMATS, "unknown output format")
    table = named_by_text(table)
    return replace_atomically(
        path, lambda tmp: _WRITERS[suffix](table, tmp), overwrite=overwrite
    )


def named_by_text(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every column name as text (GDAL and Parquet need it)."""
    if all(isinstance(c, str) for c in frame.columns):
        return frame
    return frame.rename(columns={c: str(c) for c in frame.columns})


def _suffix(path: Path, formats: Iterable[str], refusal: str) -> str:
    """The path's format, or an ``OutputError`` naming those it could be."""
    suffix = path.suffix.lower()
    if suffix not in formats:
        raise OutputError(
            f"{path}: {refusal} {suffix or '(none)'!r}; use one of {', '.join(formats)}"
        )
    return suffix


def check_output(path: str | os.PathLike, *, overwrite: bool = False) -> None:
    """Refuse an output that exists (unless ``overwrite``) or has no directory
    (a URL: that exists, or that fsspec cannot write there)."""
    where = locate(path)
    if where.remote:
        fs, name = filesystem(where)
        if fs.exists(name) and not overwrite:
            raise OutputError(f"{where}: exists (use --overwrite to replace it)")
        return
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputError(f"{path}: exists (use --overwrite to replace it)")
    if not path.parent.is_dir():
        raise OutputError(f"{path}: directory {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: directory {path.parent} is not writable")


def arrays_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with each array cell (``unique``'s) as JSON text, ``[1, 2]``:
    one line, readable back with ``json.loads``. Parquet keeps them as lists."""
    listed = [
        c
        for c in frame.columns
        if frame[c].dtype == object
        and any(isinstance(v, np.ndarray) for v in frame[c].to_numpy())
    ]
    if not listed:
        return frame
    frame = frame.copy()
    for c in listed:
        frame[c] = [
            json.dumps(v.tolist()) if isinstance(v, np.ndarray) else v
            for v in frame[c].to_numpy()
        ]
    return frame


def _write_tsv(table: pd.DataFrame, tmp: str) -> None:
    table = arrays_as_text(table)
    if not _numbered(table):
        table = table.reset_index()[[*table.columns, *table.index.names]]
    write_delimited(table, tmp, sep="\t", index=False)


def _write_csv(table: pd.DataFrame, tmp: str) -> None:
    table = arrays_as_text(table)
    write_delimited(table, tmp, sep=",", index=not _numbered(table))


def _numbered(table: pd.DataFrame) -> bool:
    """An unnamed 0..N-1 index, which names nothing: not written."""
    index = table.index
    return (
        index.name is None
        and isinstance(index, pd.RangeIndex)
        and index.start == 0
        and index.step == 1
    )


def _write_parquet(table: pd.DataFrame, tmp: str) -> None:
    table.to_parquet(tmp)


_WRITERS: dict[str, Any] = {
    ".txt": _write_tsv,
    ".tsv": _write_tsv,
    ".csv": _write_csv,
    ".parquet": _write_parquet,
}


def write_features(
    frame: gpd.GeoDataFrame, path: str | os.PathLike[str], *, overwrite: bool = False
) -> Path:
    """Write features with their attributes atomically; the format follows the
    extension: ``.gpkg``, ``.geojson``, ``.fgb`` or ``.parquet`` (GeoParquet).

    The features keep their CRS, their order (FlatGeobuf is written without a
    spatial index, which would reorder them) and a named index as a field
    (``fid`` becomes the GeoPackage's feature id). They are written into a
    temporary directory beside ``path`` and renamed into place, so a crash
    leaves the old file or none, never half.
    """
    path = Path(path)
    driver = FEATURE_FORMATS[_suffix(path, FEATURE_FORMATS, "cannot write features to")]
    frame = named_by_text(frame)
    check_feature_crs(path, frame.crs)

    def write(tmp: str) -> None:
        if driver is None:
            frame.to_parquet(tmp)
            return
        import pyogrio

        options = {"SPATIAL_INDEX": "NO"} if driver == "FlatGeobuf" else {}
        try:
            arrays_as_text(frame).to_file(
                tmp, driver=driver, engine="pyogrio", layer=path.stem, **options
            )
            # read back: a short file fails here, or holds fewer features
            _, fids = pyogrio.read_arrow(
                tmp, columns=[], read_geometry=False, return_fids=True
            )
        except (
            OSError,
            pyogrio.errors.DataSourceError,
            pyogrio.errors.DataLayerError,
        ) as err:
            raise _failed_write(tmp, err) from None
        if fids.num_rows != len(frame):
            raise _failed_write(tmp, f"{fids.num_rows} of {len(frame)} features")

    return replace_atomically(path, write, overwrite=overwrite)


def check_feature_crs(path: str | os.PathLike[str], crs: Any) -> None:
    """Refuse features in ``crs`` (anything ``pyproj.CRS`` takes, or None)
    that the format of ``path`` cannot name: GeoJSON names a CRS by its code."""
    if Path(path).suffix.lower() != ".geojson" or crs is None:
        return
    from pyproj import CRS

    if not CRS.from_user_input(crs).to_authority():
        raise OutputError(
            f"{path}: GeoJSON can only name a CRS by its code, and the zones' CRS "
            f"has none; write .gpkg, .fgb or .parquet instead"
        )


def _failed_write(tmp: str, reason: object) -> OSError:
    """A GDAL write that failed, as an ``OSError``; a full disk says so
    (GDAL's own message names the SQL or the feature that failed)."""
    if isinstance(reason, OSError) and reason.errno is not None:
        return reason
    if shutil.disk_usage(os.path.dirname(tmp)).free < 2**20:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return OSError(str(reason).splitlines()[0] if str(reason) else repr(reason))


def write_pixels(
    frame: Any,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    client: Any = None,
) -> Location:
    """Write a dask DataFrame as a directory of Parquet files, one per
    partition, computed partition by partition (on ``client`` if given).

    The workers write the parts under a temporary name beside ``path`` (a
    unique prefix on object storage); the client publishes the directory
    only once every part is there: an interrupted run publishes nothing.
    """
    target = locate(path)
    if target.suffix != ".parquet":
        raise OutputError(f"{target}: the pixels are written as a .parquet directory")

    def write(staged: Location) -> None:
        from ..run.reach import Reach
        from ..run.scheduler import compute

        parts = frame.to_parquet(
            staged.url,
            write_index=False,
            compute=False,
            storage_options=storage_options(staged.url) or None,
        )
        compute(parts, client=client, reach=Reach(writes=(staged.parent,)))
        fs, name = filesystem(staged)
        written = [p for p in fs.ls(name, detail=False) if p.endswith(".parquet")]
        if len(written) != frame.npartitions:
            raise OSError(f"{len(written)} of {frame.npartitions} parts written")

    if not target.remote:
        return locate(
            replace_atomically(
                target.url,
                lambda tmp: _write_local_pixels(write, tmp, target, overwrite),
                overwrite=overwrite,
            )
        )
    check_output(target.url, overwrite=overwrite)
    staging = target.sibling("pixels")
    fs, name = filesystem(staging)
    try:
        write(staging.join(target.name))
        publish_directory(staging.join(target.name), target, overwrite=overwrite)
    except FileExistsError:
        raise OutputError(
            f"{target}: written by another run meanwhile; this run's pixels were "
            "not written (use --overwrite to replace it)"
        ) from None
    except OSError as err:
        raise OutputError(
            f"{target}: cannot write ({_reason(err)}); nothing written"
        ) from None
    finally:  # written, failed or interrupted: the staging prefix goes
        fs.invalidate_cache()  # the workers wrote there: no stale listing
        if fs.exists(name):
            fs.rm(name, recursive=True)
    return target


def _write_local_pixels(
    write: Callable[[Location], None], tmp: str, target: Location, overwrite: bool
) -> None:
    write(locate(tmp))
    if overwrite and os.path.isdir(target.url):  # a rename replaces no directory
        shutil.rmtree(target.url)


def replace_atomically(
    path: str | os.PathLike[str],
    write: Callable[[str], object],
    *,
    overwrite: bool = False,
) -> Path:
    """Call ``write(tmp)`` on a path of the same name in a temporary directory
    beside ``path``, then publish the file as ``path``.

    Writers that pick a driver or format from the name (GDAL, matplotlib) see
    the real extension; a crash leaves the old file or none, never half. With
    ``overwrite`` the file is renamed over ``path``; without, it is linked to
    ``path``, which fails if another run published it meanwhile.
    """
    path = Path(path)
    check_output(path, overwrite=overwrite)
    tmpdir = None
    try:
        tmpdir = tempfile.mkdtemp(
            prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
        )
        tmp = os.path.join(tmpdir, path.name)
        write(tmp)
        if overwrite:
            os.replace(tmp, path)
        else:
            publish_new(tmp, path)
    except FileExistsError:
        raise OutputError(
            f"{path}: written by another run meanwhile; this run's table was not "
            "written (use --overwrite to replace it)"
        ) from None
    except OSError as err:  # a full disk, a read-only or vanished directory
        raise OutputError(
            f"{path}: cannot write ({_reason(err)}); nothing written"
        ) from None
    finally:
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
    return path


def _reason(err: OSError) -> str:
    """The words of an ``OSError``; pyarrow's carry the errno in their text."""
    if err.errno == errno.ENOSPC or f"[errno {errno.ENOSPC}]" in str(err):
        return os.strerror(errno.ENOSPC)
    return err.strerror or str(err).splitlines()[0]


def publish_new(tmp: str, path: Path) -> None:
    """Give ``tmp`` the name ``path`` unless that name exists (atomically)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError as err:  # a file system without hard links
        if err.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        if path.exists():
            raise FileExistsError(errno.EEXIST, str(path)) from None
        os.replace(tmp, path)
