"""The one parameter table: every keyword of ``zonal_stats``, written once.

Each ``Parameter`` holds a keyword's default, the command line's flag and
help, and whether ``zonal_series`` takes it. What derives from the table:

- the defaults of the ``Request`` fields (``request.py``);
- the command line's flags (``cli/options.py``'s ``FLAGS``) and the reasons
  some keywords have none (``API_ONLY``);
- the options ``zonal_series`` takes (``SERIES_OPTIONS``), and the flags the
  series command refuses;

and what is tested against it (``tests/test_parameters.py``): the signatures
and docstrings of ``zonal_stats``, ``zonal_pixels``, ``rasterize_zones``,
``ZonePlan`` and ``zonal_series``, and the README's signature.

Adding an option is one entry here (then its keyword in the API signatures
and a ``Request`` field if the engine reads it; the tests name what is
missing). See ``docs/architecture.md``, "Adding an option".
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .statistics.names import PATTERNS
from .statistics.table import (
    ALIASES,
    COVERAGE_KINDS,
    DEFAULT_STATS,
    STATISTICS,
)


@dataclass(frozen=True)
class Parameter:
    """One keyword of ``zonal_stats``.

    Attributes
    ----------
    name
        The keyword, and the ``Request`` field when the engine reads it.
    default
        Its default, everywhere (Python, the command line, ``Request``).
    help
        The command line's help (``{default}`` is replaced by the default).
    flag
        The command line's flag, or None when only Python can give it.
    cli
        ``argparse`` options besides ``help`` and ``default``: ``type``,
        ``action``, ``choices``, ``metavar``, ``nargs``, ``const``; a
        ``default`` here overrides the table's on the command line only.
    series
        ``zonal_series`` takes it, with the same meaning.
    python_only
        Why the command line has no flag for it (with ``flag=None``).
    """

    name: str
    default: Any
    help: str = ""
    flag: str | None = None
    cli: Mapping[str, Any] = field(default_factory=dict)
    series: bool = False
    python_only: str = ""


def band_text(text: str) -> int | None:
    """``--band``: a 1-based band, or ``all``."""
    if text == "all":
        return None
    try:
        return int(text)
    except ValueError:
        message = f"expected a number or 'all', got {text!r}"
        raise argparse.ArgumentTypeError(message) from None


def number_text(text: str) -> float:
    """A nodata value: an integer exactly (beyond 2**53 too), else a float."""
    try:
        return int(text)
    except ValueError:
        return float(text)


def names_text(text: str) -> list[str]:
    """A comma- or space-separated list of names."""
    return text.replace(",", " ").split()


PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        "stats",
        DEFAULT_STATS,
        f"comma-separated statistics, in column order (default: "
        f"{','.join(DEFAULT_STATS)}); any of: {', '.join([*STATISTICS, *ALIASES])};"
        f" {PATTERNS}",
        "--stats",
        {"metavar": "LIST", "default": None},
        series=True,
    ),
    Parameter(
        "band",
        1,
        "1-based band (default {default}), or 'all': one row per zone and band",
        "--band",
        {"type": band_text},
        series=True,
    ),
    Parameter(
        "nodata",
        None,
        "nodata value to use instead",
        "--nodata",
        {"type": number_text},
        series=True,
    ),
    Parameter(
        "raw",
        False,
        "summarise stored values, not applying the raster's declared scale and offset",
        "--raw",
        {"action": "store_true"},
        series=True,
    ),
    Parameter(
        "zone_id",
        None,
        "field naming the rows (default: the FID)",
        "--id-field",
        {"metavar": "FIELD"},
        series=True,
    ),
    Parameter(
        "all_touched",
        False,
        "count every pixel a polygon touches, not only centres inside",
        "--all-touched",
        {"action": "store_true"},
        series=True,
    ),
    Parameter(
        "categorical",
        False,
        "add one column per raster value with the zone's pixel count",
        "--categorical",
        {"action": "store_true"},
        series=True,
    ),
    Parameter(
        "coverage",
        None,
        "weight each pixel a polygon touches as exactextract does: by the "
        "fraction it covers (KIND fraction, the default), 1 (none), or the covered "
        "area (area_cartesian, area_spherical_m2, area_spherical_km2)",
        "--coverage",
        {
            "nargs": "?",
            "const": "fraction",
            "choices": COVERAGE_KINDS,
            "metavar": "KIND",
        },
        series=True,
    ),
    Parameter(
        "weights",
        None,
        "a weights raster for the weighted_* statistics (same or compatible "
        "grid); 'coverage' means --coverage fraction",
        "--weights",
        {"metavar": "RASTER"},
        series=True,
    ),
    Parameter(
        "default_value",
        None,
        "value of nodata pixels, which then count",
        "--default-value",
        {"type": float},
        series=True,
    ),
    Parameter(
        "default_weight",
        None,
        "weight of pixels whose weight is nodata or missing (else the weighted "
        "statistics are NaN)",
        "--default-weight",
        {"type": float},
        series=True,
    ),
    Parameter(
        "min_coverage_frac",
        None,
        "with --coverage: pixels covered less than F (0..1) do not count",
        "--min-coverage-frac",
        {"type": float, "metavar": "F"},
        series=True,
    ),
    Parameter(
        "grid_compat_tol",
        None,
        "with --weights: how far (a share of a cell) the grids may be from "
        "aligned (default 0.001)",
        "--grid-compat-tol",
        {"type": float, "metavar": "T"},
    ),
    Parameter(
        "group_by",
        None,
        "features sharing the field's value form one zone (a row per value)",
        "--group-by",
        {"metavar": "FIELD"},
    ),
    Parameter(
        "small",
        "nan",
        "polygons holding no pixel centre: NaN (default) or the pixels they "
        "touch, flagged in a 'small' column",
        "--small",
        {"choices": ["nan", "touched"]},
        series=True,
    ),
    Parameter(
        "chunks",
        None,
        "chunk size in pixels",
        "--chunks",
        {"type": int},
        series=True,
    ),
    Parameter(
        "compute",
        True,
        python_only="the command always computes and writes OUTPUT",
    ),
    Parameter(
        "split_every",
        8,
        "partial results each merge task combines (default {default})",
        "--split-every",
        {"type": int, "metavar": "N"},
        series=True,
    ),
    Parameter(
        "geometry",
        False,
        "with a .parquet OUTPUT: write GeoParquet, the polygons with their "
        "attributes and the statistics",
        "--geometry",
        {"action": "store_true"},
    ),
    Parameter(
        "prefix",
        None,
        "text before each statistic's column name, e.g. slope_",
        "--prefix",
        series=True,
    ),
    Parameter(
        "layer",
        None,
        "layer of a vector file that has several",
        "--layer",
        series=True,
    ),
    Parameter(
        "assume_same_crs",
        False,
        "accept zones or a raster without a CRS as sharing coordinates",
        "--assume-same-crs",
        {"action": "store_true"},
        series=True,
    ),
    Parameter(
        "zones_crs",
        None,
        "the zones' true CRS (EPSG:32618, WKT, ...), replacing a wrong .prj",
        "--zones-crs",
        {"metavar": "CRS"},
        series=True,
    ),
    Parameter(
        "checkpoint",
        None,
        "save each chunk's results in DIR; a rerun computes only the rest; "
        "removed once OUTPUT is written",
        "--checkpoint",
        {"metavar": "DIR"},
    ),
    Parameter(
        "include_cols",
        None,
        "comma-separated fields of the zones to write before the statistics",
        "--include-cols",
        {"metavar": "FIELDS", "type": names_text},
    ),
    Parameter(
        "gdal_options",
        None,
        "a GDAL or AWS option for this run, on this machine and every worker, "
        "as GDAL's --config KEY VALUE (repeat for several), e.g. "
        "AWS_REGION=eu-west-1 or GDAL_HTTP_MAX_RETRY=3",
        "--gdal-option",
        {"metavar": "KEY=VALUE", "action": "append"},
        series=True,
    ),
    Parameter("affine", None, python_only="a NumPy array exists only in Python"),
    Parameter("progress", False, python_only="a bar is drawn on a terminal unless -q"),
)

BY_NAME: dict[str, Parameter] = {p.name: p for p in PARAMETERS}
DEFAULTS: dict[str, Any] = {p.name: p.default for p in PARAMETERS}
# the options of ``zonal_stats`` a time series takes, with the same meaning
# (its own ``geometry`` and ``progress`` are keywords of ``zonal_series``)
SERIES_OPTIONS: tuple[str, ...] = tuple(
    p.name for p in PARAMETERS if p.series and p.name != "stats"
)


def default(name: str) -> Any:
    """The default of keyword ``name`` (a ``Request`` field's default)."""
    return DEFAULTS[name]
