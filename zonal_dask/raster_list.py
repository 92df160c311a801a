"""Several rasters in one call, as exactextract's lists: columns per raster.

``zonal_stats(zones, [a.tif, b.tif], ["mean"], weights=[wa.tif, wb.tif])``
gives what ``exactextract.exact_extract([a.tif, b.tif], zones, ["mean"],
weights=[wa.tif, wb.tif])`` gives: each raster's statistics in columns named
``{raster}_{statistic}``, and each weighted statistic's ``{raster}_{weights}_
{statistic}``, the rasters paired with the weights band to band (one weights
raster for every raster, one raster with every weights raster, or as many of
each), the columns in exactextract's order (statistic by statistic, each
over the rasters). A raster is named by its file's name without extension
(a DataArray by its ``name``), a band of several by ``{name}_band_{i}``; a
weights raster given alone is called ``weight``, as there; names appear
only when there are several rasters or several weights rasters.

Each raster is a run of ``zonal_stats`` of its own (its labels built again):
the same zones over many rasters on one grid are faster as a time series
(``zonal_series``) or the bands of one file (``band=None``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import pandas as pd
import rasterio
import xarray as xr

from .errors import OptionError, RasterError, StatisticError
from .io.features import finish, read_features
from .io.raster import open_raster
from .statistics.names import resolve
from .statistics.operations import parse_operations, split_names
from .zones_as_data import adapt_zones


class Source(NamedTuple):
    """One band of one raster given: its name in the columns, the raster and
    the band ``zonal_stats`` reads."""

    name: str
    raster: Any
    band: int | None


def is_several(raster: Any, weights: Any) -> bool:
    """Whether a call gives a list of rasters or of weights rasters."""
    return isinstance(raster, list | tuple) or isinstance(weights, list | tuple)


def zonal_stats_of_each(
    zonal_stats: Callable[..., Any],
    zones: Any,
    raster: Any,
    stats: Any,
    options: dict[str, Any],
) -> pd.DataFrame:
    """``zonal_stats`` (``api.zonal_stats``) of every raster, paired with the
    weights, in one table as exactextract's lists give it.

    Raises
    ------
    OptionError
        An option that takes one raster (``compute=False``, ``checkpoint``),
        rasters and weights that do not pair, or two rasters of one name.
    """
    alone = {"compute": options.get("compute") is False}
    alone["checkpoint"] = options.get("checkpoint") is not None
    for option in (o for o, given in alone.items() if given):
        raise OptionError(
            f"{option}={options[option]!r} takes one raster, not a list: "
            f"make one call per raster"
        )
    zones, options["assume_same_crs"], zone_name = adapt_zones(
        zones, options.get("assume_same_crs", False)
    )
    band, weights = options.pop("band"), options.pop("weights")
    values = _sources(raster, band, "raster", alone="")
    # a weights raster given alone is called "weight", as exactextract calls it
    weighting = [] if weights is None else _sources(weights, band, "weights", "weight")
    pairs = _pairs(values, weighting)
    named = len(values) > 1 or len(weighting) > 1
    entries = _entries(stats, options.pop("categorical", False))
    parse_operations(stats)  # one set of arguments for the whole call
    geometry, include = options.pop("geometry", False), options.pop("include_cols")
    include = [include] if isinstance(include, str) else list(include or ())
    prefix = options.pop("prefix") or ""
    weighted = [_is_weighted(e) for e in entries]
    if any(weighted) and not weighting:
        needing = [e for e, w in zip(entries, weighted, strict=True) if w]
        names = ", ".join(repr(_label(e)) for e in needing)
        raise StatisticError(
            f"statistic {names} needs a weights raster (weights=RASTER, --weights "
            f"RASTER)"
        )
    calls = []  # (its entries' positions, prefix, table)
    for v in values:
        # unweighted statistics once per raster, on the common grid of its
        # first weights raster as exactextract computes them
        first = next((w for vv, w in pairs if vv is v), None)
        asked = [i for i, w in enumerate(weighted) if not w]
        if asked:
            name = f"{prefix}{v.name}_" if named else prefix
            calls.append(
                (
                    asked,
                    name,
                    _run(zonal_stats, zones, v, first, entries, asked, name, options),
                )
            )
    for v, w in pairs:
        asked = [i for i, flag in enumerate(weighted) if flag]
        if asked and w is not None:
            name = f"{prefix}{v.name}_{w.name}_" if named else prefix
            calls.append(
                (
                    asked,
                    name,
                    _run(zonal_stats, zones, v, w, entries, asked, name, options),
                )
            )
    table = _in_exactextract_order(calls, entries)
    if not (geometry or include):
        return table
    frame = read_features(
        zones,
        list(table.columns),
        zone_name,
        options.get("layer"),
        tuple(include),
        geometry,
    )
    carried = None
    if include and not geometry:
        carried, frame = pd.DataFrame(frame[include]), None
    return finish(table, frame, None, zone_name, carried)


def _sources(given: Any, band: int | None, what: str, alone: str = "") -> list[Source]:
    """The rasters of ``given`` (a list, or one raster) band by band, named."""
    listed = isinstance(given, list | tuple)
    rasters = list(given) if listed else [given]
    if not rasters:
        raise OptionError(f"{what}: an empty list")
    out = []
    for raster in rasters:
        root = _root(raster, what) if listed else alone
        planes = _planes(raster)  # every raster is read before any is summarised
        if band is not None:
            out.append(Source(root, raster, band))
            continue
        for b, plane in enumerate(planes, start=1):
            name = (
                root
                if len(planes) == 1
                else "_".join(filter(None, [root, f"band_{b}"]))
            )
            out.append(Source(name, *plane))
    names = [s.name for s in out]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if len(out) > 1 and repeated:
        raise OptionError(
            f"{what}: several rasters named {repeated[0]!r}: the columns are named "
            f"by the files' names (a DataArray's name); give them distinct names"
        )
    return out


def _root(raster: Any, what: str) -> str:
    if isinstance(raster, str | os.PathLike):
        return os.path.splitext(os.path.basename(os.fspath(raster)))[0]
    if isinstance(raster, xr.DataArray) and raster.name:
        return str(raster.name)
    raise OptionError(
        f"{what}: a {type(raster).__name__} in a list needs a name for its columns "
        f"(a DataArray's name)"
    )


def _planes(raster: Any) -> list[tuple[Any, int]]:
    """Every band of a raster as (raster, band) ``zonal_stats`` reads as one:
    a file's bands, a DataArray's ``band`` or other first dimension."""
    if isinstance(raster, xr.DataArray):
        if "band" in raster.dims:
            return [(raster, b) for b in range(1, raster.sizes["band"] + 1)]
        if raster.ndim == 3:
            first = raster.dims[0]
            return [(raster.isel({first: i}), 1) for i in range(raster.shape[0])]
        return [(raster, 1)]
    try:
        with rasterio.open(os.fspath(raster)) as src:
            return [(raster, b) for b in range(1, src.count + 1)]
    except rasterio.errors.RasterioIOError as err:
        raise RasterError(f"{raster}: not a raster GDAL can read ({err})") from None


def _pairs(values: list[Source], weights: list[Source]) -> list[tuple[Source, Any]]:
    """Each raster with its weights: exactextract's pairing band to band."""
    if not weights:
        return [(v, None) for v in values]
    if len(values) == 1:
        return [(values[0], w) for w in weights]
    if len(weights) == 1:
        return [(v, weights[0]) for v in values]
    if len(values) != len(weights):
        raise OptionError(
            f"{len(values)} raster bands and {len(weights)} weights bands: weights "
            f"pair with the rasters band to band, so give one weights raster, or "
            f"as many as rasters"
        )
    return list(zip(values, weights, strict=True))


def _entries(stats: Any, categorical: bool) -> list[tuple[str | None, Any]]:
    """The statistics asked for, one (column name or None, statistic) each."""
    if isinstance(stats, str):
        stats = split_names(stats)
    entries: list[tuple[str | None, Any]]
    if isinstance(stats, Mapping):
        entries = [(str(k), v) for k, v in stats.items()]
    else:
        entries = [(None, s) for s in stats]
    if categorical and "histogram" not in [s for _, s in entries]:
        entries.append((None, "histogram"))
    return entries


def _label(entry: tuple[str | None, Any]) -> str:
    column, statistic = entry
    return str(column or getattr(statistic, "__name__", statistic))


def _as_stats(entries: Sequence[tuple[str | None, Any]]) -> Any:
    if all(k is None for k, _ in entries):
        return [s for _, s in entries]
    return {k if k is not None else str(s): s for k, s in entries}


def _is_weighted(entry: tuple[str | None, Any]) -> bool:
    """Whether a statistic reads a weights raster (exactextract names its
    columns by the weights too)."""
    stats, _ = parse_operations(_as_stats([entry]))
    return any(c.statistic.needs_weights for c in resolve(stats))


def _run(
    zonal_stats: Callable[..., Any],
    zones: Any,
    values: Source,
    weights: Source | None,
    entries: list[tuple[str | None, Any]],
    asked: list[int],
    prefix: str,
    options: dict[str, Any],
) -> pd.DataFrame:
    weights_raster = None
    if weights is not None:
        weights_raster = weights.raster
        if weights.band not in (None, 1):
            weights_raster = open_raster(
                weights.raster, band=weights.band, raw=options.get("raw", False)
            )
    return zonal_stats(
        zones,
        values.raster,
        _as_stats([entries[i] for i in asked]),
        band=values.band,
        weights=weights_raster,
        prefix=prefix or None,
        **options,
    )


def _in_exactextract_order(
    calls: list[tuple[list[int], str, pd.DataFrame]],
    entries: list[tuple[str | None, Any]],
) -> pd.DataFrame:
    """The calls' columns statistic by statistic, each over the rasters."""
    by_entry: dict[int, list[pd.Series]] = {i: [] for i in range(len(entries))}
    for asked, prefix, table in calls:
        stats, _ = parse_operations(_as_stats([entries[i] for i in asked]))
        expected = [f"{prefix}{c.name}" for c in resolve(stats)]
        for column, i in zip(
            table.columns, _owners(list(table.columns), expected), strict=True
        ):
            by_entry[asked[i]].append(table[column])
    columns = [s for i in range(len(entries)) for s in by_entry[i]]
    return pd.concat(columns, axis=1)


def _owners(columns: list[str], expected: list[str]) -> list[int]:
    """Which statistic made each column: its own name, or (``frac``,
    ``histogram``: one column per value) the statistic before the next name."""
    owners, at = [], 0
    for column in columns:
        if column in expected[at:]:
            at = expected.index(column, at)
            owners.append(at)
            at += 1
        else:
            owners.append(at)
    return owners
