"""Writing the vector data cube: Zarr, NetCDF or the long table in (Geo)Parquet,
batch by batch, committed at once, appended to without recomputing; on a
local disk or object storage (``s3://``, ``gs://``, ``az://``).

Every batch of steps goes to a staging copy beside the output (a hidden,
unique ``.NAME.series-XXXX.tmp`` directory or prefix on the same store) as
soon as the client has it (memory holds one batch); the output appears, or
is replaced, only when every batch is in (``commit``,
``series/cube_publish.py``): a crash, a full disk or Ctrl-C leaves the old
output or none, never half of one, and the staging is removed on a failure.
The client writes every batch: the workers compute the statistics and never
write a series output, so a local path works on any cluster.

* ``.zarr``: the cube, geometries CF-encoded (``xvec``), chunks of
  ``TIME_CHUNK`` steps along ``time``; an append stages a copy of the store
  (locally made of hard links: zarr replaces a file it writes, never edits
  it; on object storage copied on the server, without the chunks of older
  steps that an append never touches), adds the new steps along ``time``,
  and publishes it.
* ``.nc``: the staged Zarr written as NetCDF (h5netcdf), step chunk by chunk.
* ``.parquet``: the long table (zone, time[, band], source, statistics), one
  part per batch, joined into one file at the commit; with ``geometry`` a
  GeoParquet file with each row's zone polygon. An append rewrites the file:
  its row groups, then the new rows.

The identity of the run (zones, statistics, options) is stored with the data;
``Output.todo`` compares it with the new run's and says which steps to add.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
import numpy as np
import xarray as xr

from ..errors import OutputError
from ..io.location import Location, filesystem, locate
from ..io.writers import check_output, publish_new
from .cube import COLUMNS, differences, fill_classes, to_long
from .cube_files import (
    Existing,
    encode,
    join_parts,
    keys,
    open_store,
    read_existing,
    write_part,
)
from .cube_publish import (
    interrupts_deferred,
    publish_file,
    publish_store,
    replace_dir,
    signature,
    stage_append,
)

FORMATS = (".zarr", ".nc", ".parquet")
APPENDABLE = (".zarr", ".parquet")


@dataclass
class Output:
    """One output being written: its format, what it held, its staging place."""

    target: Location
    suffix: str
    append: bool
    overwrite: bool
    geometry: bool = False
    existing: Existing | None = None
    staging: Location | None = None  # the staged output, STAGING_DIR/NAME
    parts: list[Location] = field(default_factory=list)
    variables: list[str] = field(default_factory=list)
    times: int = 0
    # what was at the target when opened: another run's output published
    # meanwhile is not replaced without ``overwrite`` (``signature``)
    seen: tuple | None = None

    @property
    def path(self) -> str:
        """The output as the messages name it: an absolute path or a URL."""
        return self.target.url

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        append: bool = False,
        overwrite: bool = False,
        geometry: bool = False,
    ) -> Output:
        """Check ``path`` (format, directory or store, existence) before any
        work, and read what it holds when appending."""
        target = locate(path)
        suffix = target.suffix
        if suffix not in FORMATS:
            raise OutputError(
                f"{target}: a series writes {', '.join(FORMATS)}, "
                f"not {suffix or '(none)'!r}"
            )
        if append and suffix not in APPENDABLE:
            raise OutputError(
                f"{target}: --append adds steps to .zarr or .parquet outputs"
            )
        if geometry and suffix != ".parquet":
            raise OutputError(
                f"{target}: geometry= writes GeoParquet: use a .parquet output"
            )
        exists = _reachable(target) if target.remote else os.path.exists(target.url)
        check_output(target.url, overwrite=overwrite or (append and exists))
        output = cls(target, suffix, append and exists, overwrite, geometry)
        output.seen = signature(target)
        if output.append:
            output.existing = read_existing(target, suffix)
            if suffix == ".parquet" and output.existing.geometry != geometry:
                how = "with" if output.existing.geometry else "without"
                raise OutputError(
                    f"{target}: written {how} geometries; append {how} "
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
        known = dict(zip(keys(old.times), old.sources, strict=True))
        todo = []
        for i, step in enumerate(steps):
            key = keys(np.array([step.time]))[0]
            if key not in known:
                todo.append(i)
            elif known[key] != step.name:
                raise OutputError(
                    f"{self.path}: its step at {key} is {known[key]}, not {step.name}; "
                    f"rebuild it without --append"
                )
        last = max(keys(old.times)) if len(old.times) else None
        early = [
            steps[i]
            for i in todo
            if last is not None and keys(np.array([steps[i].time]))[0] < last
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
        with interrupts_deferred(self.target.remote):
            self._add(cube)

    def _add(self, cube: xr.Dataset) -> None:
        try:
            if self.staging is None:
                self._stage()
            self.variables += [
                str(n) for n in cube.data_vars if n not in self.variables
            ]
            cube = fill_classes(cube, self.variables)
            cube.attrs[COLUMNS] = json.dumps(self.variables)  # appends rewrite attrs
            if self.suffix == ".parquet":
                self._add_part(cube)
            else:
                self._add_zarr(cube)
        except OSError as err:
            raise OutputError(
                f"{self.path}: cannot write ({err.strerror or err}); nothing written"
            ) from None
        self.times += cube.sizes["time"]

    def _stage(self) -> None:
        """Make the staging place; an appended store is copied into it."""
        if self.target.remote:
            staged = self.target.sibling("series").join(self.target.name)
        else:
            made = tempfile.mkdtemp(
                prefix=f".{self.target.name}.", suffix=".tmp", dir=self.target.parent
            )
            staged = locate(made).join(self.target.name)
        self.staging = staged
        if self.existing is None or self.suffix != ".zarr":
            return
        if staged.remote:
            stage_append(self.target, staged, len(self.existing.times))
        else:
            shutil.copytree(self.target.url, staged.url, copy_function=os.link)
        self.variables = list(self.existing.variables)
        self.times = len(self.existing.times)

    def _add_zarr(self, cube: xr.Dataset) -> None:
        assert self.staging is not None
        # the client writes: never the workers of a current cluster
        with (
            warnings.catch_warnings(),
            dask.config.set(scheduler="synchronous"),
        ):
            warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
            if self.times == 0:
                encode(cube).to_zarr(self.staging.url, mode="w-", consolidated=False)
                return
            stored = open_store(self.staging)
            for name in [str(n) for n in cube.data_vars if n not in stored.data_vars]:
                self._add_zeros(stored, cube, name)
            fixed = [n for n in cube.variables if "time" not in cube.variables[n].dims]
            cube.drop_vars(fixed).to_zarr(
                self.staging.url, append_dim="time", consolidated=False
            )

    def _add_zeros(self, stored: xr.Dataset, cube: xr.Dataset, name: str) -> None:
        """A class column first found now: zeros for the steps already staged."""
        import dask.array as da

        assert self.staging is not None
        shape = tuple(stored.sizes[d] for d in cube[name].dims)
        chunks = tuple(1 if d == "time" else -1 for d in cube[name].dims)
        zeros = xr.DataArray(da.zeros(shape, chunks=chunks), dims=cube[name].dims)
        xr.Dataset({name: zeros}).to_zarr(
            self.staging.url, mode="a", consolidated=False
        )

    def _add_part(self, cube: xr.Dataset) -> None:
        assert self.staging is not None
        if not self.staging.remote:
            os.makedirs(self.staging.url, exist_ok=True)
        part = self.staging.join(f"part-{len(self.parts):05d}.parquet")
        table = to_long(cube, geometry=self.geometry)
        table.attrs = {}
        write_part(table, part)
        self.parts.append(part)

    def commit(self, identity: dict[str, Any]) -> None:
        """Put the staged steps in place at once (nothing when none was staged).

        Without ``overwrite``, an output that another run published (or
        changed) since ``open`` is left as it is, and this one refused.
        """
        with interrupts_deferred(self.target.remote):
            self._commit(identity)

    def _commit(self, identity: dict[str, Any]) -> None:
        staged = self.staging
        if staged is None:
            return
        try:
            if not self.overwrite and signature(self.target) != self.seen:
                raise FileExistsError(self.path)
            if self.suffix == ".zarr":
                if staged.remote:
                    publish_store(staged, self.target, complete=self.existing is None)
                else:
                    replace_dir(staged.url, self.target.url)
            elif self.suffix == ".nc":
                self._publish_file(_netcdf(staged))
            else:
                joined = staged.parent.join(f"joined{self.suffix}")
                old = [self.target] if self.existing is not None else []
                join_parts(old + self.parts, joined, identity, self.variables)
                self._publish_file(joined)
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

    def _publish_file(self, staged: Location) -> None:
        """The staged file as the output: over the old one when it is
        replaced (an append, ``overwrite``), else only if the name is free."""
        replace = self.overwrite or self.seen is not None
        if staged.remote:
            publish_file(staged, self.target, replace=replace)
        elif replace:
            os.replace(staged.url, self.target.url)
        else:
            publish_new(staged.url, Path(self.target.url))

    def discard(self) -> None:
        """Remove what was staged (the output is left as it was)."""
        if self.staging is None:
            return
        directory, self.staging = self.staging.parent, None
        if not directory.remote:
            shutil.rmtree(directory.url, ignore_errors=True)
            return
        fs, name = filesystem(directory)
        fs.invalidate_cache()  # a listing cached before the last parts
        try:
            fs.rm(name, recursive=True)
        except FileNotFoundError:  # nothing was written yet
            pass


def _netcdf(staged: Location) -> Location:
    """The staged Zarr as a NetCDF file beside it (h5netcdf writes a local
    file: on object storage it is written in a temporary directory of the
    client and uploaded whole)."""
    with dask.config.set(scheduler="synchronous"):  # the client reads and writes
        cube = open_store(staged)
        if not staged.remote:
            netcdf = staged.parent.join("staged.nc")
            cube.to_netcdf(netcdf.url, engine="h5netcdf")
            return netcdf
        netcdf = staged.parent.join("staged.nc")
        fs, name = filesystem(netcdf)
        with tempfile.TemporaryDirectory() as local:
            cube.to_netcdf(os.path.join(local, "staged.nc"), engine="h5netcdf")
            fs.put_file(os.path.join(local, "staged.nc"), name)
        return netcdf


def _reachable(target: Location) -> bool:
    """Whether something is at the URL ``target``, after writing and removing
    an empty object beside it: a bucket that is not there, or credentials
    that cannot write, are found before any work."""
    probe = target.sibling("probe")
    fs, name = filesystem(probe)
    try:
        fs.pipe_file(name, b"")
        fs.rm_file(name)
        return bool(fs.exists(filesystem(target)[1]))
    except Exception as err:  # each store's client raises its own types
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise OutputError(
            f"{target}: cannot write there ({reason}); nothing computed"
        ) from None
