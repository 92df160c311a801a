"""Class names of a class raster (land cover, soil types): read from its
raster attribute table or GDAL's category names, put on the statistics.

* a raster attribute table as ArcGIS and GDAL write it beside the raster,
  ``landcover.tif.vat.dbf`` (or ``landcover.vat.dbf``): a ``VALUE`` column and
  the first text column among ``CLASS_NAME``, ``CLASSNAME``, ``CLASS``,
  ``NAME``, ``LABEL``, ``DESCRIPTION`` (else the first text column);
* GDAL's category names (``GetCategoryNames``: the n-th name is value n) as
  GDAL keeps them for a GeoTIFF, in its ``.aux.xml``, or in a ``.vrt``.

``name_classes`` renames the class columns (``histogram``/``--categorical``,
``frac_<value>``, ``weighted_frac_<value>``) and replaces the values of
``majority`` and ``minority`` by the names.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..errors import RasterError

NAME_FIELDS = ("CLASS_NAME", "CLASSNAME", "CLASS", "NAME", "LABEL", "DESCRIPTION")
CLASS_PREFIXES = ("", "frac_", "weighted_frac_")
VALUE_STATISTICS = ("majority", "minority", "mode")


def read_class_names(raster: str | os.PathLike[str], band: int = 1) -> dict[Any, str]:
    """The names of ``raster``'s class values: its ``.vat.dbf`` attribute
    table, else GDAL's category names of ``band``; empty when it has none.

    Raises
    ------
    RasterError
        An attribute table without a ``VALUE`` or a text column, or one GDAL
        cannot read (naming it).
    """
    path = os.fspath(raster)
    for table in (path + ".vat.dbf", os.path.splitext(path)[0] + ".vat.dbf"):
        if os.path.exists(table):
            return _attribute_table(table)
    for xml, tag in ((path + ".aux.xml", "PAMRasterBand"), (path, "VRTRasterBand")):
        if xml.lower().endswith((".aux.xml", ".vrt")) and os.path.exists(xml):
            names = _category_names(xml, tag, band)
            if names:
                return names
    return {}


def _attribute_table(path: str) -> dict[Any, str]:
    import pyogrio

    try:
        frame = pyogrio.read_dataframe(path, read_geometry=False)
    except Exception as err:  # pyogrio and GDAL raise many types
        raise RasterError(f"{path}: cannot read the attribute table ({err})") from None
    columns = {str(c).upper(): c for c in frame.columns}
    if "VALUE" not in columns:
        raise RasterError(f"{path}: no VALUE column (it has: {', '.join(frame)})")
    text = [c for c in frame.columns if pd.api.types.is_string_dtype(frame[c])]
    chosen = next((columns[n] for n in NAME_FIELDS if columns.get(n) in text), None)
    chosen = chosen if chosen is not None else (text[0] if text else None)
    if chosen is None:
        raise RasterError(f"{path}: no text column naming the classes")
    values = frame[columns["VALUE"]].to_numpy()
    return {_plain(v): str(n) for v, n in zip(values, frame[chosen], strict=True)}


def _category_names(path: str, tag: str, band: int) -> dict[Any, str]:
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as err:
        raise RasterError(f"{path}: cannot read it as XML ({err})") from None
    for element in root.iter(tag):
        if element.get("band", "1") == str(band):
            categories = element.find("CategoryNames")
            if categories is None:
                return {}
            named = enumerate(c.text or "" for c in categories.iter("Category"))
            return {value: name for value, name in named if name}
    return {}


def name_classes(
    table: pd.DataFrame,
    names: Mapping[Any, str],
    prefix: str = "",
    value_columns: Iterable[str] | None = None,
) -> pd.DataFrame:
    """``table`` with its class columns named by ``names`` and the values of
    ``value_columns`` (default: ``majority``, ``minority``, ``mode``) replaced
    by their names (a value without a name stays a number).

    Two classes of one name keep their values in their columns:
    ``forest_1``, ``forest_2``.
    """
    by_text = {str(v): n for v, n in names.items()}
    repeated = {n for n in by_text.values() if list(by_text.values()).count(n) > 1}

    def label(value: str) -> str:
        name = by_text[value]
        return f"{name}_{value}" if name in repeated else name

    renamed = {}
    for column in table.columns:
        text = str(column).removeprefix(prefix)
        for start in sorted(CLASS_PREFIXES, key=len, reverse=True):
            value = text.removeprefix(start)
            if text.startswith(start) and value in by_text:
                renamed[column] = f"{prefix}{start}{label(value)}"
                break
    out = table.rename(columns=renamed)
    wanted = value_columns or [prefix + s for s in VALUE_STATISTICS]
    for column in wanted:
        if column in out.columns:
            out[column] = [_name_of(v, by_text) for v in out[column].to_numpy()]
    out.attrs = {  # the statistics' column list, when the table carries one
        k: [renamed.get(c, c) for c in v] if isinstance(v, list) else v
        for k, v in table.attrs.items()
    }
    return out


def _name_of(value: Any, by_text: Mapping[str, str]) -> Any:
    if isinstance(value, float) and np.isnan(value):
        return value
    key = str(_plain(value))
    return by_text.get(key, value)


def _plain(value: Any) -> Any:
    """A class value as its column names it: ``3``, not ``3.0``."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return int(value)
    if isinstance(value, np.integer):
        return int(value)
    return value
