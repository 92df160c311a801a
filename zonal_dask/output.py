"""Writing results: every format written to a temporary name, then renamed.

Tables go to ``.txt``/``.tsv`` (the classic recipe's layout), ``.csv`` or
``.parquet``; features with their attributes to ``.gpkg``, ``.geojson``,
``.fgb`` or GeoParquet. A crash, a full disk or Ctrl-C leaves the old file or
none, never half of one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from .errors import OutputError

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
    keeps dtypes. The table goes to a temporary file in the same directory that
    is renamed into place, so a crash leaves the old file or none, never half.
    """
    path = Path(path)
    suffix = _suffix(path, TABLE_FORMATS, "unknown output format")
    return replace_atomically(
        path, lambda tmp: _WRITERS[suffix](table, tmp), overwrite=overwrite
    )


def _suffix(path: Path, formats: Iterable[str], refusal: str) -> str:
    """The path's format, or an ``OutputError`` naming those it could be."""
    suffix = path.suffix.lower()
    if suffix not in formats:
        raise OutputError(
            f"{path}: {refusal} {suffix or '(none)'!r}; use one of {', '.join(formats)}"
        )
    return suffix


def check_output(path: str | os.PathLike, *, overwrite: bool = False) -> None:
    """Refuse an output that exists (unless ``overwrite``) or has no directory."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputError(f"{path}: exists (use --overwrite to replace it)")
    if not path.parent.is_dir():
        raise OutputError(f"{path}: directory {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: directory {path.parent} is not writable")


def _write_tsv(table: pd.DataFrame, tmp: str) -> None:
    classic = table.reset_index()
    classic = classic[[*table.columns, *table.index.names]]
    classic.to_csv(tmp, sep="\t", index=False, na_rep="nan")


def _write_csv(table: pd.DataFrame, tmp: str) -> None:
    table.to_csv(tmp)


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
    if driver == "GeoJSON" and frame.crs and not frame.crs.to_authority():
        raise OutputError(
            f"{path}: GeoJSON can only name a CRS by its code, and the zones' CRS "
            f"has none; write .gpkg, .fgb or .parquet instead"
        )

    def write(tmp: str) -> None:
        if driver is None:
            frame.to_parquet(tmp)
        else:
            options = {"SPATIAL_INDEX": "NO"} if driver == "FlatGeobuf" else {}
            frame.to_file(
                tmp, driver=driver, engine="pyogrio", layer=path.stem, **options
            )

    return replace_atomically(path, write, overwrite=overwrite)


def write_pixels(
    frame: Any,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    client: Any = None,
) -> Path:
    """Write a dask DataFrame as a directory of Parquet files, one per
    partition, computed partition by partition (on ``client`` if given), then
    renamed into place."""
    from .cluster import compute

    path = Path(path)
    if path.suffix.lower() != ".parquet":
        raise OutputError(f"{path}: the pixels are written as a .parquet directory")

    def write(tmp: str) -> None:
        compute(frame.to_parquet(tmp, write_index=False, compute=False), client=client)
        if overwrite and path.is_dir():  # a directory is not replaced by a rename
            shutil.rmtree(path)

    return replace_atomically(path, write, overwrite=overwrite)


def replace_atomically(
    path: str | os.PathLike[str],
    write: Callable[[str], object],
    *,
    overwrite: bool = False,
) -> Path:
    """Call ``write(tmp)`` on a path of the same name in a temporary directory
    beside ``path``, then rename the file into place.

    Writers that pick a driver or format from the name (GDAL, matplotlib) see
    the real extension; a crash leaves the old file or none, never half.
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
        if not overwrite and path.exists():
            raise OutputError(f"{path}: exists (use --overwrite to replace it)")
        os.replace(tmp, path)
    except OSError as err:  # a full disk, a read-only or vanished directory
        raise OutputError(
            f"{path}: cannot write ({err.strerror or err}); nothing written"
        ) from None
    finally:
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
    return path
