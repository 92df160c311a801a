"""The vector data cube: statistics per zone and time step, zones with geometries.

A batch of steps comes out of the engine as a ``(zone, plane)`` Dataset
(``finalize.table``; a plane is a step, or a step's band); ``batch_cube``
gives it its ``time`` (and ``band``) dimensions, ``with_zones`` puts the zones
on the ``zone`` dimension as xvec expects: the geometries, in the zones' own
CRS, are the ``zone`` coordinate with an ``xvec.GeometryIndex``, and the zone
names (``fid`` or the ``zone_id`` field) a second indexed coordinate, so
``ds.sel(fid=12)``, ``ds.xvec.query`` and ``ds.xvec.to_geodataframe`` work.
Each step's source (file name, STAC item id) is the ``source`` coordinate
along ``time``.

On disk (``series/cube_store.py``) geometries are CF-encoded (``ds.xvec.encode_cf()``),
readable by xvec and cf_xarray; ``open_cube`` decodes them. The cube's
identity (what an append must match) is stored as a JSON attribute.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import xarray as xr
from dask.base import tokenize

from ..errors import OutputError

IDENTITY = "zonal_dask"
COLUMNS = "zonal_dask_columns"  # the variables' order, as written
FORMAT = "zonal_dask.series.cube"
VERSION = 1
PLANE = "plane"
RESERVED = ("zone", "time", "band", "source")


@dataclass(frozen=True)
class Zones:
    """What the cube knows of its zones: names, and polygons when there are."""

    index: pd.Index | None
    geometries: np.ndarray | None = None
    crs: Any = None

    @property
    def id_name(self) -> str:
        """The coordinate naming the zones: the index's name, or ``zone_id``."""
        if self.index is None or self.index.name is None:
            return "zone_id"
        name = str(self.index.name)
        return "zone_id" if name in RESERVED else name


def batch_cube(
    table: xr.Dataset,
    times: np.ndarray,
    sources: Sequence[str],
    bands: np.ndarray | None = None,
) -> xr.Dataset:
    """``table`` (zone, plane) as (zone, time[, band]); plane ``t * n_bands + b``
    holds step ``t``'s band ``b``."""
    n_bands = 1 if bands is None else len(bands)
    dims: tuple[str, ...] = (
        ("zone", "time") if bands is None else ("zone", "time", "band")
    )
    variables = {}
    for name, variable in table.data_vars.items():
        values = variable.transpose("zone", PLANE).to_numpy()
        shape = (values.shape[0], len(times)) + (() if bands is None else (n_bands,))
        variables[str(name)] = (dims, values.reshape(shape))
    coords: dict[str, Any] = {
        "zone": table["zone"].to_numpy(),
        "time": np.asarray(times),
        "source": ("time", np.asarray(list(sources), dtype=object)),
    }
    if bands is not None:
        coords["band"] = np.asarray(bands)
    return xr.Dataset(variables, coords=coords)


def with_zones(cube: xr.Dataset, zones: Zones) -> xr.Dataset:
    """Put the zones' names and geometries on the ``zone`` dimension."""
    name = zones.id_name
    if name in cube.data_vars:
        raise OutputError(
            f"the zones' id {name!r} is also a statistic's name; rename one (prefix=)"
        )
    if zones.index is None:  # a label raster: the values found
        return cube
    ids = zones.index.to_numpy()
    if zones.geometries is None:
        cube = cube.assign_coords(zone=ids)
        cube["zone"].attrs["long_name"] = name
        return cube
    import xvec

    geometries = np.array(
        [shapely.Polygon() if g is None else g for g in zones.geometries], dtype=object
    )
    cube = cube.assign_coords({"zone": geometries, name: ("zone", ids)})
    cube = cube.drop_indexes("zone").set_xindex(
        "zone", xvec.GeometryIndex, crs=zones.crs
    )
    return cube.set_xindex(name)


def concat(batches: Sequence[xr.Dataset]) -> xr.Dataset:
    """Batches of steps as one cube along ``time``. A class column (``histogram``)
    missing from a batch counts 0 there: no pixel of that value in its steps."""
    names = list(dict.fromkeys(str(n) for b in batches for n in b.data_vars))
    filled = [fill_classes(b, names) for b in batches]
    if len(filled) == 1:
        return filled[0]
    return xr.concat(
        filled,
        dim="time",
        data_vars="minimal",
        coords="minimal",
        compat="override",
        join="exact",
    )


def fill_classes(cube: xr.Dataset, names: Sequence[str]) -> xr.Dataset:
    """``cube`` with every variable of ``names``, those it lacks as zeros, in
    the order of ``names``."""
    missing = [n for n in names if n not in cube.data_vars]
    if missing:
        template = next(iter(cube.data_vars.values()))
        cube = cube.assign(
            {n: xr.zeros_like(template, dtype=np.float64) for n in missing}
        )
    return cube[list(names)]


def to_long(cube: xr.Dataset, geometry: bool = False) -> pd.DataFrame:
    """The long table: one row per time (band) and zone, in that order, with
    the zone's name, the time, the step's source and the statistics as
    columns; with ``geometry`` a GeoDataFrame with each row's zone polygon."""
    stats = list(cube.data_vars)
    name = zone_id_name(cube)
    ids = cube[name].to_numpy() if has_geometries(cube) else cube["zone"].to_numpy()
    plain = cube.drop_vars([c for c in cube.coords if c not in ("time", "band")])
    plain = plain.assign_coords(zone=np.arange(cube.sizes["zone"]))
    order = [d for d in ("time", "band") if d in plain.dims] + ["zone"]
    frame = plain[stats].to_dataframe(dim_order=order).reset_index()
    position = frame.pop("zone").to_numpy()
    frame.insert(0, name, ids[position])
    if "source" in cube.coords:
        where = frame.columns.get_loc("time") + 1
        frame.insert(
            where,
            "source",
            cube["source"].to_series().reindex(frame["time"]).to_numpy(),
        )
    if not geometry:
        return frame
    if not has_geometries(cube):
        raise OutputError(
            "geometry: the zones have no geometries (a label raster or a plan)"
        )
    polygons = cube["zone"].to_numpy()[position]
    crs = getattr(cube.xindexes["zone"], "crs", None)
    return gpd.GeoDataFrame(frame, geometry=polygons, crs=crs)


def has_geometries(cube: xr.Dataset) -> bool:
    return type(cube.xindexes.get("zone")).__name__ == "GeometryIndex"


def zone_id_name(cube: xr.Dataset) -> str:
    """The coordinate naming the zones beside the geometries (or ``zone``)."""
    for name, coord in cube.coords.items():
        if name != "zone" and coord.dims == ("zone",):
            return str(name)
    return str(cube["zone"].attrs.get("long_name", "zone"))


# -- identity ---------------------------------------------------------------


def zones_identity(
    zones: Any, frame: gpd.GeoDataFrame | None, zone_id: str | None
) -> str:
    """A digest of the zones: names and polygons with their CRS; for a label
    raster, its path, size and time (or dask name); for a plan, its token."""
    from ..labels.plan import ZonePlan
    from ..run.checkpoint import index_digest, source_identity

    digest = hashlib.sha1()
    if frame is not None:
        index = pd.Index(frame[zone_id]) if zone_id in frame.columns else frame.index
        digest.update(json.dumps(index_digest(index)).encode())
        digest.update(str(frame.crs).encode())
        for wkb in shapely.to_wkb(frame.geometry.to_numpy()):
            digest.update(b"" if wkb is None else wkb)
    elif isinstance(zones, ZonePlan):
        digest.update(json.dumps(index_digest(zones.index)).encode())
        digest.update(zones.source().token.encode())
    elif isinstance(zones, xr.DataArray):  # its values, or dask's name of them
        digest.update(tokenize(zones).encode())
    else:
        digest.update(json.dumps(source_identity(zones)).encode())
    return digest.hexdigest()


def identity_of(cube: xr.Dataset) -> dict[str, Any] | None:
    """The identity stored with a cube, or None."""
    text = cube.attrs.get(IDENTITY)
    return None if text is None else json.loads(text)


def differences(stored: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """What differs between two identities, in words (empty when the same)."""
    found, options = [], []
    for key in sorted({*stored, *wanted}):
        old, new = stored.get(key), wanted.get(key)
        if old == new:
            continue
        if key == "zones":
            found.append("other zones")
        elif key == "request" and isinstance(old, dict) and isinstance(new, dict):
            options += [k for k in {**old, **new} if old.get(k) != new.get(k)]
        else:
            options.append(key)
    if options:
        found.append(f"other statistics or options ({', '.join(options)})")
    return found


# -- reading ------------------------------------------------------------------


def open_cube(path: str | os.PathLike[str]) -> xr.Dataset:
    """Open a cube ``zonal_series`` wrote (Zarr or NetCDF), lazily, with its
    geometries decoded onto the ``zone`` dimension (``xvec.GeometryIndex``).

    Parameters
    ----------
    path
        A ``.zarr`` store or a ``.nc`` file: a path or a URL (``s3://``).

    Returns
    -------
    xarray.Dataset
        Dimensions (zone, time[, band]), as ``zonal_series`` returns it.
    """
    from ..io.location import filesystem, locate

    where = locate(path)
    fs, name = filesystem(where)
    if not fs.exists(name):
        raise OutputError(f"{where}: no such cube")
    if where.suffix == ".zarr":
        cube = xr.open_zarr(where.url, consolidated=False)
    elif where.remote:  # h5netcdf reads a file object
        cube = xr.open_dataset(fs.open(name, "rb"), engine="h5netcdf", chunks={})
    else:
        cube = xr.open_dataset(where.url, chunks={})
    return decode(cube)


def decode(cube: xr.Dataset) -> xr.Dataset:
    """A stored cube with its CF-encoded geometries as the ``zone`` coordinate,
    and its variables in the order written."""
    if "geometry_container" in cube.variables:
        import xvec  # noqa: F401  (the .xvec accessor)

        name = str(cube.attrs.get("zone_id"))
        attrs = dict(cube.attrs)
        cube = cube.xvec.decode_cf()
        cube.attrs = attrs
        if name in cube.coords and name not in cube.xindexes:
            cube = cube.set_xindex(name)
    if COLUMNS in cube.attrs:
        order = [n for n in json.loads(cube.attrs[COLUMNS]) if n in cube.data_vars]
        cube = cube[order + [n for n in cube.data_vars if n not in order]]
    return cube
