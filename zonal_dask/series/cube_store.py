"""Writing the vector data cube: Zarr, NetCDF or the long table in (Geo)Parquet,
batch by batch, committed at once, appended to without recomputing.

Every batch of steps goes to a staging copy beside the output as soon as it is
computed (memory holds one batch); the output appears, or is replaced, only
when every batch is in (``commit``): a crash, a full disk or Ctrl-C leaves the
old output or none, never half of one.

* ``.zarr``: the cube, geometries CF-encoded (``xvec``), one chunk per step
  along ``time``; an append stages a copy of the store made of hard links (zarr
  replaces a file it writes, never edits it, so the old store is untouched),
  adds the new steps along ``time``, and swaps the two directories.
* ``.nc``: the staged Zarr written as NetCDF (h5netcdf), step chunk by chunk.
* ``.parquet``: the long table (zone, time[, band], source, statistics), one
  part per batch, joined into one file at the commit; with ``geometry`` a
  GeoParquet file with each row's zone polygon. An append rewrites the file:
  its row groups, then the new rows.

The identity of the run (zones, statistics, options) is stored with the data;
``Output.plan`` compares it with the new run's and says which steps to add.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import OutputError
from ..io.location import locate
from ..io.writers import check_output, publish_new
from .cube import (
    COLUMNS,
    IDENTITY,
    decode,
    differences,
    fill_classes,
    identity_of,
    to_long,
    zone_id_name,
)

FORMATS = (".zarr", ".nc", ".parquet")
APPENDABLE = (".zarr", ".parquet")
TIME_UNITS = "microseconds since 1970-01-01"
ZONE_CHUNK = 16_384
TIME_CHUNK = 16


@dataclass
class Existing:
    """What an output holds already: its identity, steps and variables."""

    identity: dict[str, Any] | None
    times: np.ndarray
    sources: np.ndarray
    variables: list[str]
    geometry: bool = False


@dataclass
class Output:
    """One output being written: its format, what it held, its staging place."""

    path: Path
    suffix: str
    append: bool
    overwrite: bool
    geometry: bool = False
    existing: Existing | None = None
    staging: Path | None = None
    parts: list[Path] = field(default_factory=list)
    variables: list[str] = field(default_factory=list)
    times: int = 0
    # what was at ``path`` when opened: another run's output published
    # meanwhile is not replaced without ``overwrite`` (``_signature``)
    seen: tuple | None = None

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        append: bool = False,
        overwrite: bool = False,
        geometry: bool = False,
    ) -> Output:
        """Check ``path`` (format, directory, existence) before any work, and
        read what it holds when appending."""
        if locate(path).remote:  # Path would make "s3://b/x" a local "s3:/b/x"
            raise OutputError(
                f"{os.fspath(path)}: a series is written by this process to a "
                f"local or shared path; URLs are not taken yet"
            )
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in FORMATS:
            raise OutputError(
                f"{path}: a series writes {', '.join(FORMATS)}, "
                f"not {suffix or '(none)'!r}"
            )
        if append and suffix not in APPENDABLE:
            raise OutputError(
                f"{path}: --append adds steps to .zarr or .parquet outputs"
            )
        if geometry and suffix != ".parquet":
            raise OutputError(
                f"{path}: geometry= writes GeoParquet: use a .parquet output"
            )
        exists = path.exists()
        check_output(path, overwrite=overwrite or (append and exists))
        output = cls(path, suffix, append and exists, overwrite, geometry)
        output.seen = _signature(path)
        if output.append:
            output.existing = _read_existing(path, suffix)
            if suffix == ".parquet" and output.existing.geometry != geometry:
                how = "with" if output.existing.geometry else "without"
                raise OutputError(
                    f"{path}: written {how} geometries; append {how} "
                    f"geometry=True (--geometry) too, or write another output"
                )
        return output

    def todo(self, steps: list, identity: dict[str, Any]) -> list[int]:
        """The positions of ``steps`` to compute: all of them, or when
        appending those the output lacks, after checking that it was made by
        the same zones, statistics and options and that its steps agree."""
        if self.existing is None:
            return list(range(len(steps)))
        old = self.existing
        if old.identity is None:
            raise OutputError(
                f"{self.path}: not written by zonal-dask; cannot append to it"
            )
        found = differences(old.identity, identity)
        if found:
            raise OutputError(
                f"{self.path}: made with {'; '.join(found)}; write another output "
                f"or rebuild it without --append"
            )
        known = dict(zip(_keys(old.times), old.sources, strict=True))
        todo = []
        for i, step in enumerate(steps):
            key = _keys(np.array([step.time]))[0]
            if key not in known:
                todo.append(i)
            elif known[key] != step.name:
                raise OutputError(
                    f"{self.path}: its step at {key} is {known[key]}, not {step.name}; "
                    f"rebuild it without --append"
                )
        last = max(_keys(old.times)) if len(old.times) else None
        early = [
            steps[i]
            for i in todo
            if last is not None and _keys(np.array([steps[i].time]))[0] < last
        ]
        if early:
            raise OutputError(
                f"{self.path}: {early[0].name} falls before the output's last "
                f"step ({last}); appending adds later steps only: rebuild it "
                f"without --append"
            )
        return todo

    def add(self, cube: xr.Dataset) -> None:
        """Stage one batch of steps."""
        if self.staging is None:
            self.staging = (
                Path(
                    tempfile.mkdtemp(
                        prefix=f".{self.path.name}.",
                        suffix=".tmp",
                        dir=self.path.parent,
                    )
                )
                / self.path.name
            )
            if self.existing is not None and self.suffix == ".zarr":
                shutil.copytree(self.path, self.staging, copy_function=os.link)
                self.variables = list(self.existing.variables)
                self.times = len(self.existing.times)
        self.variables += [str(n) for n in cube.data_vars if n not in self.variables]
        cube = fill_classes(cube, self.variables)
        cube.attrs[COLUMNS] = json.dumps(self.variables)  # appends rewrite attrs
        try:
            if self.suffix == ".parquet":
                self._add_part(cube)
            else:
                self._add_zarr(cube)
        except OSError as err:
            raise OutputError(
                f"{self.path}: cannot write ({err.strerror or err}); nothing written"
            ) from None
        self.times += cube.sizes["time"]

    def _add_zarr(self, cube: xr.Dataset) -> None:
        assert self.staging is not None
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
            if self.times == 0:
                encode(cube).to_zarr(self.staging, mode="w-", consolidated=False)
                return
            stored = xr.open_zarr(self.staging, consolidated=False)
            for name in [str(n) for n in cube.data_vars if n not in stored.data_vars]:
                self._add_zeros(stored, cube, name)
            fixed = [n for n in cube.variables if "time" not in cube.variables[n].dims]
            cube.drop_vars(fixed).to_zarr(
                self.staging, append_dim="time", consolidated=False
            )

    def _add_zeros(self, stored: xr.Dataset, cube: xr.Dataset, name: str) -> None:
        """A class column first found now: zeros for the steps already staged."""
        import dask.array as da

        shape = tuple(stored.sizes[d] for d in cube[name].dims)
        chunks = tuple(1 if d == "time" else -1 for d in cube[name].dims)
        zeros = xr.DataArray(da.zeros(shape, chunks=chunks), dims=cube[name].dims)
        xr.Dataset({name: zeros}).to_zarr(self.staging, mode="a", consolidated=False)

    def _add_part(self, cube: xr.Dataset) -> None:
        assert self.staging is not None
        self.staging.mkdir(exist_ok=True)
        part = self.staging / f"part-{len(self.parts):05d}.parquet"
        table = to_long(cube, geometry=self.geometry)
        table.attrs = {}
        table.to_parquet(part, index=False)
        self.parts.append(part)

    def commit(self, identity: dict[str, Any]) -> None:
        """Put the staged steps in place at once (nothing when none was staged).

        Without ``overwrite``, an output that another run published (or
        changed) since ``open`` is left as it is, and this one refused.
        """
        if self.staging is None:
            return
        try:
            if not self.overwrite and _signature(self.path) != self.seen:
                raise FileExistsError(str(self.path))
            if self.suffix == ".zarr":
                _replace_dir(self.staging, self.path)
            elif self.suffix == ".nc":
                tmp = self.staging.with_suffix(".nc.tmp")
                staged = xr.open_zarr(self.staging, consolidated=False)
                staged.to_netcdf(tmp, engine="h5netcdf")
                self._publish_file(tmp)
            else:
                tmp = self.staging.with_suffix(".parquet.tmp")
                old = self.path if self.existing is not None else None
                _join_parts(old, self.parts, tmp, identity, self.variables)
                self._publish_file(tmp)
        except FileExistsError:
            raise OutputError(
                f"{self.path}: written by another run meanwhile; this run's steps "
                "were not written (use overwrite=True, --overwrite, to replace it)"
            ) from None
        except OSError as err:
            raise OutputError(
                f"{self.path}: cannot write ({err.strerror or err}); nothing written"
            ) from None
        finally:
            self.discard()

    def _publish_file(self, tmp: Path) -> None:
        """``tmp`` as ``path``: over the old file when it is replaced (an
        append, ``overwrite``), else only if the name is still free."""
        if self.overwrite or self.seen is not None:
            os.replace(tmp, self.path)
        else:
            publish_new(str(tmp), self.path)

    def discard(self) -> None:
        """Remove what was staged (the output is left as it was)."""
        if self.staging is not None:
            shutil.rmtree(self.staging.parent, ignore_errors=True)
            self.staging = None


def encode(cube: xr.Dataset) -> xr.Dataset:
    """The cube as stored: geometries CF-encoded, the time unit fixed so that
    appended steps encode alike, chunks of ``ZONE_CHUNK`` zones and
    ``TIME_CHUNK`` steps (a date's map and a zone's series each read a few),
    the variables' order (``add``) an attribute."""
    if "time" in cube.coords and np.issubdtype(cube["time"].dtype, np.datetime64):
        cube["time"].encoding.update(units=TIME_UNITS, dtype="int64")
    sizes = {"zone": ZONE_CHUNK, "time": TIME_CHUNK}
    for variable in cube.data_vars.values():
        variable.encoding["chunks"] = tuple(
            min(n, sizes.get(str(d), n)) for d, n in variable.sizes.items()
        )
    if type(cube.xindexes.get("zone")).__name__ != "GeometryIndex":
        return cube
    import shapely

    empty = np.flatnonzero(shapely.is_empty(cube["zone"].to_numpy()))
    if empty.size:
        name = zone_id_name(cube)
        raise OutputError(
            f"zone {cube[name].to_numpy()[empty[0]]}: a null or empty geometry "
            f"cannot be stored in a CF vector data cube; drop such zones, or write "
            f".parquet"
        )
    encoded = cube.xvec.encode_cf()
    encoded.attrs = dict(cube.attrs)
    return encoded


def _read_existing(path: Path, suffix: str) -> Existing:
    try:
        if suffix == ".zarr":
            cube = decode(xr.open_zarr(path, consolidated=False))
            return Existing(
                identity_of(cube),
                cube["time"].to_numpy(),
                np.array([str(s) for s in cube["source"].to_numpy()]),
                [str(v) for v in cube.data_vars],
            )
        import pyarrow.parquet as pq

        schema = pq.read_schema(path)
        meta = (schema.metadata or {}).get(IDENTITY.encode())
        table = pq.read_table(path, columns=["time", "source"]).to_pandas()
        pairs = table.drop_duplicates("time")
        stats = json.loads(meta)["columns"] if meta else []
        return Existing(
            None if meta is None else json.loads(meta),
            pairs["time"].to_numpy(),
            np.array([str(s) for s in pairs["source"].to_numpy()]),
            [
                n
                for n in schema.names
                if n in stats or n not in ("time", "source", "band")
            ],
            geometry=b"geo" in (schema.metadata or {}),
        )
    except OutputError:
        raise
    except Exception as err:  # each format raises its own types
        raise OutputError(f"{path}: cannot read it to append ({err})") from None


def _keys(times: np.ndarray) -> list:
    """Times as comparable keys: datetimes at nanosecond precision, or ints."""
    if np.issubdtype(np.asarray(times).dtype, np.datetime64):
        return [str(t) for t in np.asarray(times).astype("datetime64[ns]")]
    return [int(t) for t in times]


def _join_parts(
    old: Path | None,
    parts: list[Path],
    tmp: Path,
    identity: dict[str, Any],
    names: list[str],
) -> None:
    """One Parquet file: ``old``'s row groups, then the parts', under one schema
    (class columns a part lacks are 0), the identity in its metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sources = ([old] if old is not None else []) + parts
    schemas = [pq.read_schema(s) for s in sources]
    fields: dict[str, pa.Field] = {}
    for schema in schemas:
        for f in schema:
            fields.setdefault(f.name, f)
    order = [n for n in fields if n not in names] + [n for n in names if n in fields]
    metadata = dict(schemas[-1].metadata or {})
    metadata[IDENTITY.encode()] = json.dumps(identity).encode()
    schema = pa.schema([fields[n] for n in order], metadata=metadata)
    with pq.ParquetWriter(tmp, schema) as writer:
        for source in sources:
            reader = pq.ParquetFile(source)
            for g in range(reader.num_row_groups):
                group = reader.read_row_group(g)
                columns = [
                    group.column(n)
                    if n in group.column_names
                    else pa.array(np.zeros(len(group)), fields[n].type)
                    for n in order
                ]
                writer.write_table(pa.Table.from_arrays(columns, schema=schema))


def _replace_dir(new: Path, path: Path) -> None:
    """Put directory ``new`` at ``path``: a rename, or an atomic exchange with
    the old directory (Linux ``renameat2``), which is then removed."""
    if not path.exists():
        if not _rename_new(new, path):  # a directory renames over an empty one
            raise FileExistsError(str(path))
        return
    if not _exchange(new, path):
        old = new.with_name(new.name + ".old")
        os.rename(path, old)
        os.rename(new, path)
        new = old
    shutil.rmtree(new, ignore_errors=True)


def _signature(path: Path) -> tuple | None:
    """What identifies the file or directory at ``path`` now (None: nothing):
    an append's exchange or another run's output changes it."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _rename_new(a: Path, b: Path) -> bool:
    """Rename ``a`` to ``b`` unless ``b`` exists, atomically where Linux's
    ``renameat2(RENAME_NOREPLACE)`` is there; False if ``b`` exists."""
    try:
        renameat2: Callable[..., int] = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        if b.exists():
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
        if b.exists():
            return False
        os.rename(a, b)
        return True
    raise OSError(error, os.strerror(error), str(b))


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux); False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2: Callable[..., int] = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, exchange = -100, 2
    done = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), exchange)
    return done == 0
