"""Opening a series: files, a STAC collection or an xarray cube as time steps.

The inputs ``open_series`` takes:

* a list of raster paths or URLs, or a glob (``lst_*.tif``, in natural order:
  ``month2`` before ``month10``); the time comes from ``time_pattern``
  (``strftime`` codes matched in each file name, ``%Y-%m-%d``; ``%m``, ``%d``
  and the clock codes also match unpadded numbers where a separator follows),
  from ``times`` (one per file, in the order given), or is the position in the
  order given;
* STAC items (``pystac``: an ItemCollection, a Catalog or Collection, a list
  of Items, or the path of one as JSON) and an asset key; the time is each
  item's datetime (or start_datetime);
* an ``xarray.DataArray`` or ``Dataset`` (Zarr, NetCDF, odc-stac, stackstac)
  with a time dimension, or the path of a ``.zarr`` or ``.nc`` cube; a
  Dataset gives several variables at once.

Files and STAC assets are checked from their headers only (read in parallel);
``series.Series`` says how to read them.
"""

from __future__ import annotations

import datetime
import glob
import itertools
import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import xarray as xr

from ..errors import SeriesError
from ..io.grid import ChunksLike
from ..io.location import locate
from .cube_input import from_cube, is_cube_path
from .steps import Series, Step, read_header, show_time

STAC_SUFFIXES = (".json", ".geojson")
# strftime codes a time pattern may hold, and what each matches
TIME_CODES = {
    "Y": r"\d{4}",
    "y": r"\d{2}",
    "m": r"\d{2}",
    "d": r"\d{2}",
    "j": r"\d{3}",
    "H": r"\d{2}",
    "M": r"\d{2}",
    "S": r"\d{2}",
    "b": r"[A-Za-z]{3}",
    "%": "%",
}
# what the codes strptime also reads unpadded match when no code is next to
# them (``month1``); ``%Y%m%d`` stays padded: ``2024111`` is Jan 11 or Nov 1
UNPADDED = {"m": r"\d{1,2}", "d": r"\d{1,2}", "j": r"\d{1,3}", "H": r"\d{1,2}"}
UNPADDED |= {"M": r"\d{1,2}", "S": r"\d{1,2}"}


def open_series(
    source: Any,
    *,
    band: int | None = 1,
    chunks: ChunksLike = None,
    time_pattern: str | None = None,
    asset: str | None = None,
    variables: Sequence[str] | None = None,
    times: Sequence[Any] | None = None,
    raw: bool = False,
    nodata: float | None = None,
) -> Series:
    """Open a series of rasters lazily as time steps (module docstring).

    A cube's variable declaring ``scale_factor``/``add_offset`` not yet
    decoded (opened with ``mask_and_scale=False``) is decoded as rioxarray's
    ``mask_and_scale`` decodes it, its ``_FillValue`` (or ``nodata``, a
    stored value) becoming NaN, unless ``raw``; a ``.zarr``/``.nc`` path is
    opened decoded unless ``raw``.

    Raises
    ------
    SeriesError
        No step, a time pattern a file name does not hold, two steps at one
        time, a glob whose order is ambiguous, times not one per file, a STAC
        item without the asset.
    RasterError
        A file that cannot be opened (naming it).
    """
    files = not (
        isinstance(source, xr.DataArray | xr.Dataset)
        or is_cube_path(source)
        or _is_stac(source)
    )
    if times is not None and not files:
        raise SeriesError(
            "times= (--times) gives the times of files; STAC items and cubes "
            "carry their own"
        )
    if times is not None and time_pattern is not None:
        raise SeriesError("give times= (--times) or time_pattern=, not both")
    if isinstance(source, xr.DataArray | xr.Dataset) or is_cube_path(source):
        return from_cube(source, band, chunks, variables, raw, nodata)
    if _is_stac(source):
        steps = _stac_steps(source, asset)
    else:
        steps = _file_steps(source, time_pattern, times)
    if asset is not None and not _is_stac(source):
        raise SeriesError("asset= (--asset) names a STAC asset; the input is not STAC")
    steps = _in_time_order(steps)
    with ThreadPoolExecutor(max_workers=8) as pool:
        headers = list(pool.map(lambda s: read_header(s.path, chunks), steps))
    return Series(
        steps,
        band=band,
        headers=headers,
        kind="stac" if _is_stac(source) else "files",
        raw=raw,
        nodata=nodata,
    )


# -- files ------------------------------------------------------------------


def _file_steps(
    source: Any, time_pattern: str | None, times: Sequence[Any] | None
) -> list[Step]:
    if isinstance(source, str | os.PathLike):
        text = os.fspath(source)
        paths = glob.glob(text) if glob.has_magic(text) else [text]
        if not paths:
            raise SeriesError(f"{text}: no file matches")
        paths = natural_order(paths, text, by_position=time_pattern is None)
    else:
        paths = [os.fspath(p) for p in source]
        if not paths:
            raise SeriesError("no raster given: the series is empty")
    # workers read the files: a relative path would be resolved against their cwd
    where = {p: locate(p).url for p in paths}
    if times is not None:
        return [
            Step(t, os.path.basename(p), where[p])
            for t, p in zip(given_times(times, len(paths)), paths, strict=True)
        ]
    if time_pattern is None:
        return [Step(i, os.path.basename(p), where[p]) for i, p in enumerate(paths)]
    return [
        Step(parse_time(p, time_pattern), os.path.basename(p), where[p]) for p in paths
    ]


def natural_order(paths: list[str], glob_text: str, by_position: bool) -> list[str]:
    """A glob's files in natural order (``month2`` before ``month10``): the
    numbers in the names compared as numbers.

    When the files' times are their positions (``by_position``), an order
    the names do not settle is refused: two names equal but for the padding
    of a number (``month1``, ``month01``), or names differing by more than
    their numbers (``lst_jan``, ``lst_feb``: alphabetical is not time order).
    """

    def key(path: str) -> tuple:
        parts = re.split(r"(\d+)", os.path.basename(path))
        return tuple(int(p) if i % 2 else p for i, p in enumerate(parts))

    ordered = sorted(paths, key=lambda p: (key(p), p))
    if not by_position:
        return ordered
    hint = "give time_pattern= (--time-pattern), times= (--times) or the files "
    hint += "in time order"
    for a, b in itertools.pairwise(ordered):
        if key(a) == key(b):
            raise SeriesError(
                f"{glob_text}: {os.path.basename(a)} and {os.path.basename(b)} "
                f"hold the same numbers: their order is ambiguous; {hint}"
            )
    words = {tuple(key(p)[0::2]) for p in ordered}
    if len(words) > 1:
        a, b = (os.path.basename(p) for p in ordered[:2])
        raise SeriesError(
            f"{glob_text}: the names differ by more than numbers ({a}, {b}, ...): "
            f"their order is ambiguous; {hint}"
        )
    return ordered


def given_times(times: Sequence[Any], count: int) -> list[Any]:
    """``times`` (integers, or anything ``pandas.to_datetime`` reads) as the
    steps' times, one per file."""
    import pandas as pd

    times = list(times)
    if len(times) != count:
        raise SeriesError(
            f"times= (--times): {len(times)} times for {count} files; give one per file"
        )
    if all(isinstance(t, int | np.integer) for t in times):
        return [int(t) for t in times]
    parsed = []
    for t in times:
        try:
            moment = pd.Timestamp(t)
        except (ValueError, TypeError):
            moment = pd.NaT
        if moment is pd.NaT or isinstance(t, bool):
            raise SeriesError(f"times= (--times): {t!r} is not a time")
        parsed.append(np.datetime64(moment.tz_localize(None), "ns"))
    return parsed


def parse_time(path: str, pattern: str) -> np.datetime64:
    """The time a file name holds, found by ``pattern``'s ``strftime`` codes.

    ``%Y-%m-%d`` finds ``2024-01-31`` anywhere in ``lst_2024-01-31.tif``;
    ``lst_%Y%j`` finds the year and day of year after ``lst_``.
    """
    regex = _pattern_regex(pattern)
    name = os.path.basename(path)
    found = re.search(regex, name)
    if found is None:
        raise SeriesError(
            f"{path}: the file name does not hold time pattern {pattern!r}"
        )
    try:
        moment = datetime.datetime.strptime(found.group(0), pattern)
    except ValueError as err:
        raise SeriesError(f"{path}: {found.group(0)!r} is not a time ({err})") from None
    return np.datetime64(moment, "ns")


def _pattern_regex(pattern: str) -> str:
    parts, at = [], 0
    for code in re.finditer(r"%(.)", pattern):
        letter = code.group(1)
        if letter not in TIME_CODES:
            raise SeriesError(
                f"time pattern {pattern!r}: %{letter} is not one of "
                + " ".join(f"%{c}" for c in TIME_CODES)
            )
        after = pattern[code.end() : code.end() + 2]
        code_follows = after.startswith("%") and after != "%%"
        code_before = code.start() == at and at > 0  # right after another code
        delimited = not (code_follows or code_before or after[:1].isdigit())
        if letter in UNPADDED and delimited:
            matched = UNPADDED[letter] + r"(?!\d)"
        else:
            matched = TIME_CODES[letter]
        parts += [re.escape(pattern[at : code.start()]), matched]
        at = code.end()
    if at == 0:
        raise SeriesError(
            f"time pattern {pattern!r} holds no strftime code (%Y, %m, ...)"
        )
    return "".join([*parts, re.escape(pattern[at:])])


def _in_time_order(steps: list[Step]) -> list[Step]:
    ordered = sorted(steps, key=lambda s: s.time)
    for a, b in itertools.pairwise(ordered):
        if a.time == b.time:
            raise SeriesError(
                f"{a.name} and {b.name}: two steps at time {show_time(a.time)}; "
                f"mosaic them first (one raster a step)"
            )
    return ordered


# -- STAC --------------------------------------------------------------------


def _is_stac(source: Any) -> bool:
    if type(source).__module__.split(".")[0] == "pystac":
        return True
    if isinstance(source, list | tuple) and source:
        return type(source[0]).__module__.split(".")[0] == "pystac"
    return isinstance(source, str | os.PathLike) and os.fspath(source).lower().endswith(
        STAC_SUFFIXES
    )


def _stac_items(source: Any) -> list:
    import pystac

    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        read: Any
        try:
            read = pystac.read_file(path)
        except pystac.STACTypeError:
            read = pystac.ItemCollection.from_file(path)
        except Exception as err:  # pystac raises many types for bad JSON
            raise SeriesError(
                f"{path}: not a STAC catalog, collection or item collection ({err})"
            ) from None
        source = read
    if isinstance(source, pystac.Item):
        return [source]
    if isinstance(source, pystac.Catalog):  # Collections are Catalogs
        return list(source.get_items(recursive=True))
    return list(source)


def _stac_steps(source: Any, asset: str | None) -> list[Step]:
    items = _stac_items(source)
    if not items:
        raise SeriesError(f"{_name(source)}: no STAC item")
    keys = sorted({k for item in items for k in item.assets})
    if asset is None:
        raise SeriesError(
            f"{_name(source)}: name the asset to read with asset= (--asset); "
            f"the items have: {', '.join(keys)}"
        )
    steps = []
    for item in items:
        if asset not in item.assets:
            raise SeriesError(
                f"STAC item {item.id}: no asset {asset!r} (it has: "
                f"{', '.join(sorted(item.assets))})"
            )
        moment = item.datetime or item.common_metadata.start_datetime
        if moment is None:
            raise SeriesError(f"STAC item {item.id}: no datetime")
        time = np.datetime64(moment.replace(tzinfo=None), "ns")
        steps.append(Step(time, item.id, item.assets[asset].get_absolute_href()))
    return steps


def _name(source: Any) -> str:
    return (
        os.fspath(source)
        if isinstance(source, str | os.PathLike)
        else type(source).__name__
    )
