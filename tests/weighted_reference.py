"""Test-side references for weighted zonal statistics, with exactextract's semantics.

Two independent ways to get the statistics of the coming ``coverage=`` /
``weights=`` issue, for tests that check zonal_dask against them (nothing here
imports zonal_dask):

* :func:`exactextract_reference` runs exactextract 0.3 one polygon at a time on
  the whole grid and returns one row per zone with our column names.
* :func:`brute_force` computes every statistic in float64 numpy from the
  definitions written down in ``docs/exactextract-semantics.md``. It takes from
  exactextract only the geometry of each polygon: which cells of the common grid
  it touches, their coverage fractions and their centres
  (:func:`exactextract_cells`). It looks cell values and weights up in the arrays
  itself, applies nodata, ``default_value``, ``default_weight``,
  ``min_coverage_frac`` and ``coverage_weight`` itself, and reduces with its own
  code, so it is independent of exactextract's reductions.

:func:`exactextract_pixels` is the reference for ``zonal_pixels`` (one row per
cell with ``values, coverage, weights, cell_id, center_x, center_y``).

Operation names are exactextract's (``"count"``, ``"quantile(q=0.25)"``,
``"weighted_frac"``...). Column names are ours: the operation's name, except
``quantile(q=Q)`` -> ``quantile_<100 Q>`` (``quantile_25``, ``quantile_99.5``;
exactextract's own name truncates, see the semantics page), ``frac`` ->
``frac_<class>`` and ``weighted_frac`` -> ``weighted_frac_<class>``, one column
per class value met in any zone, in increasing class order. A class absent from
a zone that has cells gets 0; a zone with no cell gets NaN in every column
except ``count``, ``sum``, ``weighted_sum`` (0) and ``variety`` (0), as
exactextract.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
from affine import Affine

#: exactextract's default ``min_coverage_frac``: a cell counts when its coverage
#: fraction is at least the smallest normal float32
#: (``std::numeric_limits<float>::min()``)
FLT_MIN = float(np.finfo(np.float32).tiny)

#: the operations that reduce a zone to numbers (``quantile`` takes ``q``)
OPERATIONS = (
    "count",
    "sum",
    "mean",
    "stdev",
    "variance",
    "min",
    "max",
    "median",
    "quantile",
    "majority",
    "minority",
    "variety",
    "frac",
    "weighted_frac",
    "weighted_mean",
    "weighted_sum",
    "weighted_stdev",
    "weighted_variance",
    "coefficient_of_variation",
    "min_center_x",
    "min_center_y",
    "max_center_x",
    "max_center_y",
)
COVERAGE_WEIGHTS = (
    "fraction",
    "none",
    "area_cartesian",
    "area_spherical_m2",
    "area_spherical_km2",
)
EARTH_RADIUS = 6378137.0  # exactextract's SphericalAreaRaster (raster_area.h)

_OP = re.compile(r"^(?P<stat>[a-z_]+)(\(q=(?P<q>[0-9.eE+-]+)\))?$")


@dataclass(frozen=True)
class Raster:
    """A north-up raster held in memory: the array, its transform and nodata."""

    array: np.ndarray
    transform: Affine
    nodata: float | int | None = None
    crs: str | None = None

    @classmethod
    def read(cls, path: str | Path, band: int = 1) -> Raster:
        with rasterio.open(path) as src:
            crs = src.crs.to_wkt() if src.crs else None
            return cls(src.read(band), src.transform, src.nodata, crs)

    @property
    def dx(self) -> float:
        return self.transform.a

    @property
    def dy(self) -> float:
        return -self.transform.e

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax)"""
        h, w = self.array.shape
        return (
            self.transform.c,
            self.transform.f - h * self.dy,
            self.transform.c + w * self.dx,
            self.transform.f,
        )

    def source(self, name: str | None = None):
        """The raster as an exactextract ``NumPyRasterSource``."""
        from exactextract.raster import NumPyRasterSource

        return NumPyRasterSource(
            self.array,
            *self.bounds,
            nodata=self.nodata,
            name=name,
            srs_wkt=self.crs,
        )

    def cell_of(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row and column of the cells holding points (x, y); -1 outside."""
        h, w = self.array.shape
        col = np.floor((np.asarray(x) - self.transform.c) / self.dx).astype(np.int64)
        row = np.floor((self.transform.f - np.asarray(y)) / self.dy).astype(np.int64)
        outside = (col < 0) | (col >= w) | (row < 0) | (row >= h)
        return np.where(outside, -1, row), np.where(outside, -1, col)

    def lookup(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The values at points (x, y) and whether each is defined: inside the
        grid, not nodata, not NaN."""
        row, col = self.cell_of(x, y)
        inside = row >= 0
        vals = np.zeros(len(row), dtype=self.array.dtype)
        vals[inside] = self.array[row[inside], col[inside]]
        defined = inside.copy()
        if self.nodata is not None:
            defined &= vals != np.asarray(self.nodata).astype(self.array.dtype)
        if np.issubdtype(self.array.dtype, np.floating):
            defined &= ~np.isnan(vals)
        return vals, defined


def _as_raster(r: Raster | str | Path) -> Raster:
    return r if isinstance(r, Raster) else Raster.read(r)


def _ee_raster(r: Raster | str | Path, name: str | None = None):
    """What exactextract is given: a path as is (its own GDAL/rasterio reader),
    a Raster as a NumPyRasterSource."""
    return r.source(name) if isinstance(r, Raster) else str(r)


def parse_op(op: str) -> tuple[str, float | None]:
    m = _OP.match(op.replace(" ", ""))
    if not m or m["stat"] not in OPERATIONS:
        raise ValueError(f"unknown operation {op!r}; valid: {', '.join(OPERATIONS)}")
    q = float(m["q"]) if m["q"] is not None else None
    if (m["stat"] == "quantile") != (q is not None):
        raise ValueError(f"{op!r}: quantile takes q=..., and only quantile does")
    if q is not None and not 0 <= q <= 1:
        raise ValueError(f"{op!r}: q must be in [0, 1]")
    return m["stat"], q


def column_name(stat: str, q: float | None = None) -> str:
    if stat == "quantile":
        return f"quantile_{round(q * 100, 10):g}"
    return stat


def class_label(value) -> str:
    v = float(value)
    return str(int(v)) if v.is_integer() else repr(v)


def _options(
    coverage_weight: str,
    default_value,
    default_weight,
    min_coverage_frac,
    q: float | None = None,
) -> str:
    if coverage_weight not in COVERAGE_WEIGHTS:
        raise ValueError(f"coverage_weight must be one of {COVERAGE_WEIGHTS}")
    args = []
    if q is not None:
        args.append(f"q={q!r}")
    args.append(f"coverage_weight={coverage_weight}")
    if default_value is not None:
        args.append(f"default_value={default_value!r}")
    if default_weight is not None:
        args.append(f"default_weight={default_weight!r}")
    if min_coverage_frac is not None:
        args.append(f"min_coverage_frac={min_coverage_frac!r}")
    return "(" + ",".join(args) + ")"


def _zones(zones: gpd.GeoDataFrame, group_by: str | None) -> gpd.GeoDataFrame:
    """One row per zone: the features themselves, or with ``group_by`` the union
    of the features sharing a value (dissolved), indexed by that value."""
    if group_by is None:
        return zones
    geoms = zones.groupby(group_by, sort=True).geometry.agg(
        lambda s: shapely.union_all(s.values)
    )
    return gpd.GeoDataFrame(
        geometry=list(geoms.values), index=geoms.index, crs=zones.crs
    )


def _run_one(zone: gpd.GeoDataFrame, values, weights, ops: list[str]) -> pd.Series:
    """exactextract's results for one zone, in the order of ``ops``. Each op is
    given a name of its own (``c0=count(...)``): exactextract checks names only
    within one descriptor and its pandas writer keeps one column per name."""
    from exactextract import exact_extract

    named = [f"c{k}={op}" for k, op in enumerate(ops)]
    df = exact_extract(values, zone, named, weights=weights, output="pandas")
    assert df.shape[1] == len(ops), df.columns
    return pd.Series(list(df.iloc[0]), index=range(len(ops)), dtype=object)


def exactextract_reference(
    zones: gpd.GeoDataFrame,
    values: Raster | str | Path,
    ops: Sequence[str],
    *,
    weights: Raster | str | Path | None = None,
    coverage_weight: str = "fraction",
    default_value=None,
    default_weight=None,
    min_coverage_frac: float | None = None,
    group_by: str | None = None,
) -> pd.DataFrame:
    """exactextract 0.3's statistics of each zone, one row per zone.

    Runs exactextract once per polygon (feature-sequential) over the whole
    grid; ``values``/``weights`` are paths (read by exactextract itself) or
    :class:`Raster` arrays. With ``weights``, every operation is given the
    weights raster, as exactextract's ``exact_extract(..., weights=)`` does, so
    every statistic is computed on the common grid of the two rasters.
    ``group_by`` dissolves the features sharing a value first.
    """
    parsed = [parse_op(op) for op in ops]
    ee_ops: list[str] = []
    for stat, q in parsed:
        opts = _options(
            coverage_weight, default_value, default_weight, min_coverage_frac, q
        )
        ee_ops.append(stat + opts)
        if stat in ("frac", "weighted_frac"):
            ee_ops.append(
                "unique"
                + _options(
                    coverage_weight, default_value, default_weight, min_coverage_frac
                )
            )
    ee_values = _ee_raster(values)
    ee_weights = None if weights is None else _ee_raster(weights, "weight")
    zs = _zones(zones, group_by)
    rows = [
        _run_one(zs.iloc[[i]], ee_values, ee_weights, ee_ops) for i in range(len(zs))
    ]
    return _table(rows, parsed, zs.index)


def _absent(fracs: dict) -> float:
    """A class missing from a zone: 0, unless the zone has no defined fraction."""
    return 0.0 if any(not math.isnan(f) for f in fracs.values()) else math.nan


def _table(rows: list[pd.Series], parsed, index) -> pd.DataFrame:
    """Rows of raw results (in exactextract's op order, frac followed by its
    unique) to our columns."""
    out: dict[str, list] = {}
    class_cols: dict[str, set] = {}
    per_zone: list[dict] = []
    for raw in rows:
        res: dict = {}
        j = 0
        for stat, q in parsed:
            if stat in ("frac", "weighted_frac"):
                fr, uniq = raw[j], raw[j + 1]
                j += 2
                res[stat] = {float(u): float(f) for u, f in zip(uniq, fr, strict=True)}
                class_cols.setdefault(stat, set()).update(res[stat])
            else:
                v = raw[j]
                j += 1
                res[column_name(stat, q)] = np.nan if v is None else float(v)
        per_zone.append(res)
    for stat, q in parsed:
        if stat in ("frac", "weighted_frac"):
            for cls in sorted(class_cols.get(stat, ())):
                col = f"{stat}_{class_label(cls)}"
                out[col] = [z[stat].get(cls, _absent(z[stat])) for z in per_zone]
        else:
            name = column_name(stat, q)
            out[name] = [z[name] for z in per_zone]
    return pd.DataFrame(out, index=index)


# ---------------------------------------------------------------------------
# per-cell output: the geometry brute_force starts from, and zonal_pixels


def exactextract_cells(
    zones: gpd.GeoDataFrame,
    values: Raster | str | Path,
    *,
    weights: Raster | str | Path | None = None,
    group_by: str | None = None,
) -> pd.DataFrame:
    """Every cell of the common grid each zone touches (coverage fraction > 0),
    whatever its value or weight: a long table ``zone, coverage, center_x,
    center_y`` in exactextract's cell order (row-major). Nodata cells are kept by
    giving exactextract a ``default_value``; the values themselves are not used."""
    ops = [f"{op}(default_value=0)" for op in ("coverage", "center_x", "center_y")]
    ee_values = _ee_raster(values)
    ee_weights = None if weights is None else _ee_raster(weights, "weight")
    zs = _zones(zones, group_by)
    parts = []
    for i in range(len(zs)):
        raw = _run_one(zs.iloc[[i]], ee_values, ee_weights, ops)
        cov = np.asarray(raw[0], dtype=np.float32)
        parts.append(
            pd.DataFrame(
                {
                    "zone": np.repeat(
                        np.asarray(zs.index[[i]], dtype=object), len(cov)
                    ),
                    "coverage": cov,
                    "center_x": np.asarray(raw[1], dtype=np.float64),
                    "center_y": np.asarray(raw[2], dtype=np.float64),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def exactextract_pixels(
    zones: gpd.GeoDataFrame,
    values: Raster | str | Path,
    *,
    weights: Raster | str | Path | None = None,
    coverage_weight: str = "fraction",
    default_value=None,
    default_weight=None,
    min_coverage_frac: float | None = None,
) -> pd.DataFrame:
    """exactextract's per-cell operations as the ``zonal_pixels`` long table:
    ``zone, values, coverage, weights, cell_id, center_x, center_y`` (weights
    only with a weights raster). Cells with undefined values are left out, as
    exactextract does (unless ``default_value``). ``coverage`` is exactextract's
    per-cell weight after ``coverage_weight`` (1 for ``none``, fraction * area
    for the area options), as float32."""
    names = ["values", "coverage", "cell_id", "center_x", "center_y"]
    if weights is not None:
        names.insert(2, "weights")
    opts = _options(coverage_weight, default_value, default_weight, min_coverage_frac)
    ee_values = _ee_raster(values)
    ee_weights = None if weights is None else _ee_raster(weights, "weight")
    parts = []
    for i in range(len(zones)):
        raw = _run_one(
            zones.iloc[[i]], ee_values, ee_weights, [n + opts for n in names]
        )
        cols = {n: np.asarray(raw[k]) for k, n in enumerate(names)}
        n = len(cols["coverage"])
        parts.append(
            pd.DataFrame(
                {
                    "zone": np.repeat(np.asarray(zones.index[[i]], dtype=object), n),
                    **cols,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


# ---------------------------------------------------------------------------
# brute force


def common_resolution(values: Raster, weights: Raster | None) -> tuple[float, float]:
    """The common grid's cell size: the finer of the two in each direction."""
    if weights is None:
        return values.dx, values.dy
    return min(values.dx, weights.dx), min(values.dy, weights.dy)


def spherical_cell_area(
    center_y: np.ndarray, dx: float, dy: float, unit: str
) -> np.ndarray:
    """Area of lon/lat cells of size dx by dy degrees centred at latitude
    ``center_y`` on a sphere of radius 6,378,137 m, in m² or km², as float32:
    R² · (π/180) · |sin(y - dy/2) - sin(y + dy/2)| · dx."""
    factor = {"m2": 1.0, "km2": 1e-6}[unit]
    rad = math.pi / 180
    y = np.asarray(center_y, dtype=np.float64)
    ymin, ymax = y - 0.5 * dy, y + 0.5 * dy
    area = (
        EARTH_RADIUS
        * EARTH_RADIUS
        * rad
        * np.abs(np.sin(ymin * rad) - np.sin(ymax * rad))
    )
    return (area * dx * factor).astype(np.float32)


def cell_weights(
    coverage: np.ndarray,
    center_y: np.ndarray,
    coverage_weight: str,
    resolution: tuple[float, float],
) -> np.ndarray:
    """Each cell's ``c_i`` under ``coverage_weight``, as exactextract's float32:
    the fraction; 1; fraction * dx * dy; fraction * spherical cell area."""
    c = np.asarray(coverage, dtype=np.float32)
    dx, dy = resolution
    if coverage_weight == "fraction":
        return c
    if coverage_weight == "none":
        return np.ones_like(c)
    if coverage_weight == "area_cartesian":
        return c * np.float32(dx * dy)
    if coverage_weight in ("area_spherical_m2", "area_spherical_km2"):
        return c * spherical_cell_area(
            center_y, dx, dy, coverage_weight.rsplit("_", 1)[1]
        )
    raise ValueError(f"coverage_weight must be one of {COVERAGE_WEIGHTS}")


def weighted_quantile(x: np.ndarray, w: np.ndarray, q: float) -> float:
    """exactextract's weighted quantile of distinct values ``x`` (sorted, unique)
    with positive weights ``w`` (weighted_quantiles.cpp): with n values, total
    weight S and C_{i-1} the weight below value i, s_0 = 0 and
    s_i = i·w_i + (n-1)·C_{i-1}; the quantile interpolates linearly between the
    last value with s_i <= q·(n-1)·S and the next one, or is the last value."""
    n = len(x)
    cum = np.cumsum(w)
    s = np.empty(n)
    s[0] = 0.0
    s[1:] = np.arange(1, n) * w[1:] + (n - 1) * cum[:-1]
    target = q * (n - 1) * cum[-1]
    right = int(np.searchsorted(s, target, side="right"))
    left = right - 1
    if right == n:
        return float(x[left])
    return float(
        x[left] + (target - s[left]) * (x[right] - x[left]) / (s[right] - s[left])
    )


def _cast_like(value: float, dtype: np.dtype) -> float:
    """exactextract returns quantiles in the raster's type: truncated toward zero
    for integers, rounded to float32 for float32 rasters."""
    if np.issubdtype(dtype, np.integer):
        return float(math.trunc(value))
    return float(np.asarray(value).astype(dtype))


def zone_statistics(
    x: np.ndarray,
    c: np.ndarray,
    w: np.ndarray | None,
    cx: np.ndarray,
    cy: np.ndarray,
    parsed: Iterable[tuple[str, float | None]],
    dtype: np.dtype,
) -> dict:
    """Every statistic of one zone from its counted cells, in row-major order:
    values ``x``, per-cell weights ``c`` (after coverage_weight), weights ``w``
    (default_weight already applied, NaN where undefined), centres."""
    x64 = x.astype(np.float64)
    c64 = c.astype(np.float64)
    n_cells = len(x)
    count = float(np.sum(c64))
    res: dict = {}
    distinct, inverse = np.unique(x, return_inverse=True)
    # per-value sums, added cell by cell in row-major order as exactextract does
    # (np.add.at is unbuffered and propagates NaN)
    hist_c = np.zeros(len(distinct))
    np.add.at(hist_c, inverse, c64)
    cw = np.zeros(0)
    hist_cw = np.zeros(len(distinct))
    if w is not None:
        cw = c64 * w.astype(np.float64)
        np.add.at(hist_cw, inverse, cw)
    mean = float(np.sum(x64 * c64) / count) if count > 0 else math.nan

    def variance(weights: np.ndarray) -> float:
        keep = weights != 0  # zero weights are skipped (WestVariance)
        sw = float(np.sum(weights[keep]))
        if not keep.any():
            return math.nan
        m = float(np.sum(weights[keep] * x64[keep])) / sw
        return float(np.sum(weights[keep] * (x64[keep] - m) ** 2)) / sw

    for stat, q in parsed:
        if stat == "count":
            res["count"] = count
        elif stat == "sum":
            res["sum"] = float(np.sum(x64 * c64))
        elif stat == "mean":
            res["mean"] = mean
        elif stat == "variance":
            res["variance"] = variance(c64)
        elif stat == "stdev":
            res["stdev"] = math.sqrt(variance(c64))
        elif stat == "coefficient_of_variation":
            v = variance(c64)
            res[stat] = math.sqrt(v) / mean if count > 0 else math.nan
        elif stat in (
            "min",
            "max",
            "min_center_x",
            "min_center_y",
            "max_center_x",
            "max_center_y",
        ):
            if n_cells == 0:
                res[stat] = math.nan
                continue
            target = x.min() if stat.startswith("min") else x.max()
            first = int(np.flatnonzero(x == target)[0])  # first in row-major order
            res[stat] = {
                "min": float(target),
                "max": float(target),
                "min_center_x": cx[first],
                "max_center_x": cx[first],
                "min_center_y": cy[first],
                "max_center_y": cy[first],
            }[stat]
            res[stat] = float(res[stat])
        elif stat in ("median", "quantile"):
            qq = 0.5 if stat == "median" else q
            name = column_name(stat, q) if stat == "quantile" else "median"
            if n_cells == 0:
                res[name] = math.nan
            else:
                res[name] = _cast_like(
                    weighted_quantile(distinct.astype(np.float64), hist_c, qq), dtype
                )
        elif stat in ("majority", "minority"):
            if n_cells == 0:
                res[stat] = math.nan
                continue
            # order by (coverage sum, value): majority is the last, minority the first
            order = np.lexsort((distinct, hist_c))
            res[stat] = float(distinct[order[-1] if stat == "majority" else order[0]])
        elif stat == "variety":
            res["variety"] = float(len(distinct))
        elif stat == "frac":
            res["frac"] = {
                float(v): float(h / count)
                for v, h in zip(distinct, hist_c, strict=True)
            }
        elif stat == "weighted_frac":
            total = float(np.sum(cw))
            res["weighted_frac"] = {
                float(v): (float(h / total) if total != 0 else math.nan)
                for v, h in zip(distinct, hist_cw, strict=True)
            }
        elif stat == "weighted_sum":
            res[stat] = float(np.sum(x64 * cw))
        elif stat == "weighted_mean":
            total = float(np.sum(cw))
            res[stat] = float(np.sum(x64 * cw)) / total if total != 0 else math.nan
        elif stat == "weighted_variance":
            res[stat] = variance(cw)
        elif stat == "weighted_stdev":
            res[stat] = math.sqrt(variance(cw))
        else:  # pragma: no cover - parse_op refuses anything else
            raise ValueError(stat)
    return res


def brute_force(
    cells: pd.DataFrame,
    values: Raster | str | Path,
    ops: Sequence[str],
    *,
    weights: Raster | str | Path | None = None,
    coverage_weight: str = "fraction",
    default_value=None,
    default_weight=None,
    min_coverage_frac: float | None = None,
    zones: Sequence | None = None,
) -> pd.DataFrame:
    """Every statistic of each zone from the definitions, in float64 numpy.

    ``cells`` is :func:`exactextract_cells`' table (zone, coverage fraction,
    centre of each touched cell of the common grid). Values and weights are
    looked up at the centres in the arrays here; ``zones`` gives the row order
    (default: order of first appearance in ``cells``; a zone with no cell must be
    named here to get its row).
    """
    values = _as_raster(values)
    weights = None if weights is None else _as_raster(weights)
    parsed = [parse_op(op) for op in ops]
    if any(s.startswith("weighted") for s, _ in parsed) and weights is None:
        raise ValueError("weighted operations need weights")
    threshold = np.float32(FLT_MIN if not min_coverage_frac else min_coverage_frac)
    resolution = common_resolution(values, weights)
    if zones is None:
        zones = list(dict.fromkeys(cells["zone"]))
    rows = []
    for zone in zones:
        z = cells[cells["zone"] == zone]
        cx = z["center_x"].to_numpy(np.float64)
        cy = z["center_y"].to_numpy(np.float64)
        cov = z["coverage"].to_numpy(np.float32)
        order = np.lexsort((cx, -cy))  # row-major
        cx, cy, cov = cx[order], cy[order], cov[order]
        x, defined = values.lookup(cx, cy)
        if default_value is not None:
            x = np.where(defined, x, np.asarray(default_value).astype(x.dtype))
            defined = np.ones_like(defined)
        keep = (cov >= threshold) & defined
        c = cell_weights(cov, cy, coverage_weight, resolution)[keep]
        w = None
        if weights is not None:
            wv, wdef = weights.lookup(cx, cy)
            fill = math.nan if default_weight is None else float(default_weight)
            w = np.where(wdef, wv.astype(np.float64), fill)[keep]
        raw = zone_statistics(
            x[keep], c, w, cx[keep], cy[keep], parsed, values.array.dtype
        )
        rows.append(pd.Series(_flatten(raw, parsed), dtype=object))
    return _table_from_dicts(rows, parsed, zones)


def _flatten(raw: dict, parsed) -> list:
    out = []
    for stat, q in parsed:
        if stat in ("frac", "weighted_frac"):
            out += [list(raw[stat].values()), list(raw[stat].keys())]
        else:
            out.append(raw[column_name(stat, q)] if stat == "quantile" else raw[stat])
    return out


def _table_from_dicts(rows, parsed, index) -> pd.DataFrame:
    rows = [pd.Series(list(r), index=range(len(r)), dtype=object) for r in rows]
    return _table(rows, parsed, pd.Index(index))
