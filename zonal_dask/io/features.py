"""Statistics back on the map: the input features with the statistic columns.

The table ``finalize.table`` makes has one row per input feature in input
order, so attaching it to the features is a positional join: no key lookup can
mismatch rows, whatever the index or ``zone_id``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely
import xarray as xr
from dask.base import tokenize
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph

from ..errors import ZonesError
from ..zones.read import read_zones

# ``attrs`` key of a GeoDataFrame from ``attach``: its statistic columns.
STAT_COLUMNS = "zonal_dask_columns"


def name_columns(
    table: pd.DataFrame | xr.Dataset, prefix: str | None
) -> pd.DataFrame | xr.Dataset:
    """The statistic columns (a Dataset's variables) named ``prefix + statistic``,
    as rasterstats' ``prefix``."""
    if not prefix:
        return table
    if isinstance(table, xr.Dataset):
        return table.rename({name: f"{prefix}{name}" for name in table.data_vars})
    return table.add_prefix(prefix)


def read_features(
    zones: str | os.PathLike[str] | gpd.GeoDataFrame,
    names: Sequence[str],
    source: str = "zones",
    layer: str | int | None = None,
    include: Sequence[str] = (),
    attach_all: bool = True,
) -> gpd.GeoDataFrame:
    """Read the zones, refusing before anything is computed what would fail
    later: ``include`` columns they lack, and statistic columns ``names``
    that clash with their fields (all of them when the statistics are to be
    attached to the features, ``attach_all``; else those in ``include``)."""
    frame = read_zones(zones, layer)
    fields = [c for c in frame.columns if c != frame.geometry.name]
    missing = [c for c in include if c not in fields]
    if missing:
        raise ZonesError(
            f"{source}: include_cols: no field {missing[0]!r}; fields are: "
            + ", ".join(map(str, fields))
        )
    _check_names(frame, names, source, frame.columns if attach_all else include)
    return frame


def carry(
    table: pd.DataFrame | xr.Dataset, columns: pd.DataFrame
) -> pd.DataFrame | xr.Dataset:
    """``columns`` of the input features (one row per feature, in order) put
    before the statistics of ``table``; a Dataset gets them as coordinates
    along ``zone``."""
    if isinstance(table, xr.Dataset):
        return table.assign_coords(
            {str(c): ("zone", columns[c].to_numpy()) for c in columns.columns}
        )
    carried = pd.DataFrame(
        {c: columns[c].to_numpy() for c in columns.columns}, index=table.index
    )
    return pd.concat([carried, table], axis=1)


def attach(
    frame: gpd.GeoDataFrame, table: pd.DataFrame, *, source: str = "zones"
) -> gpd.GeoDataFrame:
    """The features of ``frame`` (geometry, CRS, attributes, index, order kept)
    with the columns of ``table`` added.

    Parameters
    ----------
    frame
        The zones as read, one row per feature.
    table
        The statistics, one row per feature of ``frame`` in the same order.
    source
        How to name the zones in error messages.

    Raises
    ------
    ZonesError
        If a statistic column would replace a field of the zones.
    """
    if len(frame) != len(table):
        raise ValueError(f"{len(table)} rows of statistics for {len(frame)} features")
    _check_names(frame, table.columns, source)
    added = pd.DataFrame(
        {c: table[c].to_numpy() for c in table.columns}, index=frame.index
    )
    out = gpd.GeoDataFrame(
        pd.concat([frame, added], axis=1), geometry=frame.geometry.name, crs=frame.crs
    )
    out.attrs[STAT_COLUMNS] = list(table.columns)
    return out


def _check_names(
    frame: gpd.GeoDataFrame,
    names: Iterable[str],
    source: str,
    fields: Iterable[Any] | None = None,
) -> None:
    """Refuse statistic ``names`` among the ``fields`` (all of the frame's)."""
    fields = set(frame.columns if fields is None else fields)
    taken = [n for n in names if n in fields or n == frame.geometry.name]
    if taken:
        raise ZonesError(
            f"{source}: the zones already have a field {taken[0]!r}; name the "
            f"statistic columns with prefix= (--prefix), e.g. 'slope_'"
        )


def finish(
    table: pd.DataFrame | xr.Dataset,
    frame: gpd.GeoDataFrame | None,
    prefix: str | None,
    source: str = "zones",
    carried: pd.DataFrame | None = None,
) -> pd.DataFrame | xr.Dataset:
    """Name the columns, put the ``carried`` columns first, then attach them
    to the features when ``frame`` is given."""
    table = name_columns(table, prefix)
    if carried is not None:
        table = carry(table, carried)
    if frame is None:
        return table
    if isinstance(table, xr.Dataset):
        raise ValueError("statistics of several bands cannot go onto the features")
    return attach(frame, table, source=source)


def finish_lazily(
    lazy: Delayed,
    frame: gpd.GeoDataFrame | None,
    prefix: str | None,
    source: str = "zones",
    carried: pd.DataFrame | None = None,
) -> Delayed:
    """``finish`` as one more task after ``lazy`` (the features travel once)."""
    token = tokenize(lazy.key, prefix, source, _frame_token(frame), carried)
    name = f"zonal-geo-{token}"
    dsk = {name: (finish, lazy.key, frame, prefix, source, carried)}
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[lazy])
    return Delayed(name, graph)


def _frame_token(frame: gpd.GeoDataFrame | None) -> str | None:
    """A deterministic digest of the features; dask's own tokenize of a
    GeoDataFrame costs seconds per 100,000 features, this a fraction of that."""
    if frame is None:
        return None
    digest = hashlib.sha1(str(frame.crs).encode())
    attributes = frame.drop(columns=frame.geometry.name)
    digest.update(pd.util.hash_pandas_object(attributes, index=True).to_numpy())
    digest.update(repr(list(frame.columns)).encode())
    for wkb in shapely.to_wkb(frame.geometry.to_numpy()):
        digest.update(b"" if wkb is None else wkb)
    return digest.hexdigest()
