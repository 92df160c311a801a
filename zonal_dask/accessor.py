"""``DataArray.zonal`` and ``Dataset.zonal``: zonal statistics from xarray.

The accessors store nothing but the object they are called on: every option
goes as an argument into ``zonal_stats`` and from there into the tasks, so they
behave the same on a distributed cluster as locally.

    >>> import zonal_dask  # registers the accessors
    >>> df = da.zonal.stats(zones, stats=["mean", "max"])  # doctest: +SKIP
    >>> df = ds.zonal.stats(zones, ["mean"])  # columns t2m_mean, precip_mean ...
    ... # doctest: +SKIP

A Dataset's variables are summarised in one pass: they are stacked along a
``variable`` dimension, so each chunk's zones are burnt once for all of them.
Variables whose nodata differ are stacked with their nodata pixels as NaN,
which is always left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import xarray as xr

from .errors import OptionError, RasterError
from .statistics.table import DEFAULT_STATS

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


@xr.register_dataset_accessor("zonal")
class DatasetZonalAccessor:
    """Zonal statistics of several variables of this Dataset at once
    (``ds.zonal.stats(zones)``)."""

    def __init__(self, obj: xr.Dataset) -> None:
        self._obj = obj

    def stats(
        self,
        zones: ZonesLike,
        stats: str | Iterable[str] = DEFAULT_STATS,
        *,
        variables: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> pd.DataFrame | Delayed:
        """Statistics of each variable, one table: columns ``VARIABLE_STATISTIC``
        (exactextract's names for several rasters), variable by variable.

        Parameters
        ----------
        zones
            As ``zonal_dask.zonal_stats`` takes them.
        stats
            Statistic names, in column order within each variable.
        variables
            The variables to summarise (default: every data variable), each
            2-D on the Dataset's grid.
        **kwargs
            Any other keyword argument of ``zonal_dask.zonal_stats``, except
            ``band``, ``prefix`` and ``geometry`` (the columns are named by
            variable; join the table to the zones for a map).

        Returns
        -------
        pandas.DataFrame or dask.delayed.Delayed
            One row per zone; with ``compute=False``, a Delayed of it.
        """
        import dask

        from .api import zonal_stats

        refused = sorted({"band", "prefix", "geometry"} & set(kwargs))
        if refused:
            raise OptionError(
                f"Dataset.zonal.stats names its columns by variable: "
                f"{', '.join(refused)} not accepted (use da.zonal.stats for one "
                f"variable)"
            )
        names: list[Any] = list(self._obj.data_vars if variables is None else variables)
        stacked, nodata = _stack(self._obj, names)
        if "nodata" not in kwargs:
            kwargs["nodata"] = nodata
        result = zonal_stats(zones, stacked, stats, band=None, **kwargs)
        if kwargs.get("compute", True):
            return _wide(result, names)
        return dask.delayed(_wide)(result, names)


def _stack(dataset: xr.Dataset, names: list[str]) -> tuple[xr.DataArray, Any]:
    """The variables along a ``variable`` dimension, and their shared nodata
    (None when they differ: each one's nodata pixels are then NaN)."""
    import numpy as np

    if not names:
        raise RasterError("Dataset: no data variable to summarise")
    missing = [n for n in names if n not in dataset.data_vars]
    if missing:
        raise RasterError(
            f"Dataset: no variable {missing[0]!r}; variables are: "
            + ", ".join(map(str, dataset.data_vars))
        )
    arrays = [dataset[n] for n in names]
    for name, array in zip(names, arrays, strict=True):
        if array.ndim != 2 or not np.issubdtype(array.dtype, np.number):
            raise RasterError(
                f"Dataset: variable {name!r} has dimensions {array.dims} and dtype "
                f"{array.dtype}; each variable must be numeric on the grid (y, x) "
                "(select one step, e.g. ds.isel(time=0), or use da.zonal.stats "
                "with band=None)"
            )
    nodata = [_nodata(a) for a in arrays]
    shared = nodata[0]
    if not all(_same(n, shared) for n in nodata):
        arrays = [
            a if n is None else a.where(a != n)
            for a, n in zip(arrays, nodata, strict=True)
        ]
        shared = None
    stacked = xr.concat(arrays, dim="variable", coords="minimal", join="exact")
    stacked = stacked.assign_coords(variable=names)
    if dataset.rio.crs is not None:
        stacked = stacked.rio.write_crs(dataset.rio.crs)
    return stacked.rio.write_transform(dataset.rio.transform()), shared


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    return bool(a == b or (a != a and b != b))  # NaN is NaN


def _nodata(array: xr.DataArray) -> Any:
    try:
        return array.rio.nodata
    except OverflowError:  # a _FillValue its dtype cannot hold matches nothing
        return None


def _wide(table: xr.Dataset, names: list[str]) -> pd.DataFrame:
    """(zone, variable) statistics as one row per zone, ``VARIABLE_STAT``."""
    import pandas as pd

    index = pd.Index(
        table["zone"].to_numpy(), name=table["zone"].attrs.get("long_name")
    )
    carried = {
        str(c): table[c].to_numpy()
        for c in table.coords
        if c not in ("zone", "variable") and table[c].dims == ("zone",)
    }
    columns = {
        f"{name}_{stat}": table[stat].sel(variable=name).to_numpy()
        for name in names
        for stat in table.data_vars
    }
    return pd.DataFrame({**carried, **columns}, index=index)
