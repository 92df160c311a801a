"""``DataArray.zonal``: zonal statistics from xarray, forwarding to the API.

The accessor stores nothing but the DataArray it is called on: every option
goes as an argument into ``zonal_stats`` and from there into the tasks, so it
behaves the same on a distributed cluster as locally.

    >>> import zonal_dask  # registers the accessor
    >>> df = da.zonal.stats(zones, stats=["mean", "max"])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import xarray as xr

from .stats import DEFAULT_STATS

if (
    TYPE_CHECKING
):  # the engine is imported on first use: ``import zonal_dask`` stays light
    import geopandas as gpd
    import pandas as pd
    from dask.delayed import Delayed

    from .api import ZonesLike


@xr.register_dataarray_accessor("zonal")
class ZonalAccessor:
    """Zonal statistics of this DataArray (``da.zonal.stats(zones)``)."""

    def __init__(self, obj: xr.DataArray) -> None:
        self._obj = obj

    def stats(
        self,
        zones: ZonesLike,
        stats: str | Iterable[str] = DEFAULT_STATS,
        **kwargs: Any,
    ) -> pd.DataFrame | gpd.GeoDataFrame | Delayed:
        """``zonal_dask.zonal_stats(zones, this DataArray, stats, **kwargs)``.

        Parameters
        ----------
        zones
            A path geopandas reads, or a GeoDataFrame.
        stats
            Statistic names, in column order.
        **kwargs
            Any other keyword argument of ``zonal_dask.zonal_stats`` (``band``,
            ``nodata``, ``zone_id``, ``chunks``, ``compute``, ``geometry``,
            ``prefix`` ...).

        Returns
        -------
        pandas.DataFrame, geopandas.GeoDataFrame or dask.delayed.Delayed
            As ``zonal_stats`` returns.
        """
        from .api import zonal_stats

        return zonal_stats(zones, self._obj, stats, **kwargs)
