"""Statistics back on the map: the input features with the statistic columns.

The table ``finalize.table`` makes has one row per input feature in input
order, so attaching it to the features is a positional join: no key lookup can
mismatch rows, whatever the index or ``zone_id``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence

import geopandas as gpd
import pandas as pd
import shapely
import xarray as xr
from dask.base import tokenize
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph

from .errors import ZonesError
from .zones import read_zones

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
) -> gpd.GeoDataFrame:
    """Read the zones to attach the statistic columns ``names`` to, refusing
    names the zones already use before anything is computed."""
    frame = read_zones(zones, layer)
    _check_names(frame, names, source)
    return frame


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
    out = frame.copy()
    for column in table.columns:
        out[column] = table[column].to_numpy()
    out.attrs[STAT_COLUMNS] = list(table.columns)
    return out


def _check_names(frame: gpd.GeoDataFrame, names: Iterable[str], source: str) -> None:
    taken = [n for n in names if n in frame.columns or n == frame.geometry.name]
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
) -> pd.DataFrame | xr.Dataset:
    """Name the columns, then attach them to the features when ``frame`` is given."""
    table = name_columns(table, prefix)
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
) -> Delayed:
    """``finish`` as one more task after ``lazy`` (the features travel once)."""
    name = f"zonal-geo-{tokenize(lazy.key, prefix, source, _frame_token(frame))}"
    dsk = {name: (finish, lazy.key, frame, prefix, source)}
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
