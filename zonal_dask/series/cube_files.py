"""What the series outputs hold, format by format: the cube as Zarr stores
it, what an existing output holds (to append to it), and the Parquet parts
joined into one file.

Every function reads and writes through an fsspec file system, so a local
path and an object-store URL (``s3://``, ``gs://``, ``memory://``) take the
same code; ``series/cube_store.py`` decides where and when.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from ..errors import OutputError
from ..io.location import Location, filesystem
from .cube import IDENTITY, decode, identity_of, zone_id_name

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


def open_store(where: Location) -> xr.Dataset:
    """A Zarr store as xarray opens it, lazily (a path or a URL)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
        return xr.open_zarr(where.url, consolidated=False)


def read_existing(where: Location, suffix: str) -> Existing:
    """What the output at ``where`` holds, or an ``OutputError`` saying why
    it cannot be appended to."""
    try:
        if suffix == ".zarr":
            cube = decode(open_store(where))
            return Existing(
                identity_of(cube),
                cube["time"].to_numpy(),
                np.array([str(s) for s in cube["source"].to_numpy()]),
                [str(v) for v in cube.data_vars],
            )
        import pyarrow.parquet as pq

        fs, name = filesystem(where)
        with fs.open(name, "rb") as file:
            schema = pq.read_schema(file)
        with fs.open(name, "rb") as file:
            table = pq.read_table(file, columns=["time", "source"]).to_pandas()
        meta = (schema.metadata or {}).get(IDENTITY.encode())
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
        raise OutputError(f"{where}: cannot read it to append ({err})") from None


def keys(times: np.ndarray) -> list:
    """Times as comparable keys: datetimes at nanosecond precision, or ints."""
    if np.issubdtype(np.asarray(times).dtype, np.datetime64):
        return [str(t) for t in np.asarray(times).astype("datetime64[ns]")]
    return [int(t) for t in times]


def write_part(table: Any, where: Location) -> None:
    """One batch's long table as a Parquet file (a GeoDataFrame: GeoParquet)."""
    fs, name = filesystem(where)
    with fs.open(name, "wb") as file:
        table.to_parquet(file, index=False)


def join_parts(
    sources: list[Location],
    joined: Location,
    identity: dict[str, Any],
    names: list[str],
) -> None:
    """One Parquet file at ``joined``: the row groups of ``sources`` in turn
    (an appended output first, then the parts), under one schema (class
    columns a part lacks are 0), the identity in its metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs = filesystem(joined)[0]
    paths = [filesystem(s)[1] for s in sources]
    schemas = []
    for path in paths:
        with fs.open(path, "rb") as file:
            schemas.append(pq.read_schema(file))
    fields: dict[str, pa.Field] = {}
    for schema in schemas:
        for f in schema:
            fields.setdefault(f.name, f)
    order = [n for n in fields if n not in names] + [n for n in names if n in fields]
    metadata = dict(schemas[-1].metadata or {})
    metadata[IDENTITY.encode()] = json.dumps(identity).encode()
    schema = pa.schema([fields[n] for n in order], metadata=metadata)
    with (
        fs.open(filesystem(joined)[1], "wb") as out,
        pq.ParquetWriter(out, schema) as writer,
    ):
        for path in paths:
            with fs.open(path, "rb") as file:
                reader = pq.ParquetFile(file)
                for g in range(reader.num_row_groups):
                    group = reader.read_row_group(g)
                    columns = [
                        group.column(n)
                        if n in group.column_names
                        else pa.array(np.zeros(len(group)), fields[n].type)
                        for n in order
                    ]
                    writer.write_table(pa.Table.from_arrays(columns, schema=schema))
