"""Zones checked on flat arrays: a layer read without a shapely object per zone.

A million zones made into shapely objects on reading cost about a gigabyte
and seconds of GEOS calls (``is_valid`` on each), though nearly all are
valid and none needs more than its coordinates to be burnt. For a layer the
Arrow reader took whole (``zones.arrow_read.ZoneTable``) and that stays in
its CRS, ``table_arrays`` flattens the WKB in one compiled pass
(``zones.wkb``), proves most polygons valid on the arrays
(``zones.validity``), and gives only the others to GEOS, which repairs
(``zones.repair``) or refuses them as it does every zone on the other path.
Null and empty geometries have no parts; collections and WKB the compiled
pass does not read are left to that path (None).
"""

from __future__ import annotations

import numpy as np
import shapely

from ..burn.rules import Flat
from ..run.kernels import announced
from .arrays import ZoneArrays
from .arrow_read import ZoneTable
from .repair import make_valid
from .source import reading
from .validity import needs_geos
from .wkb import flat_of_wkb_pieces


def table_arrays(table: ZoneTable, path: str, source: str) -> ZoneArrays | None:
    """The zones of ``table`` as flat arrays in their CRS, polygons valid
    (repaired with the warning ``zones.repair`` gives), or None when the
    compiled pass does not read their WKB.

    ``path`` names the file in a reading error (a ring GEOS will not build),
    ``source`` the zones in the repair warning.
    """
    with announced():  # a machine's first run compiles the two passes
        parsed = flat_of_wkb_pieces(table.wkb_pieces())
        if parsed is None:
            return None
        arrays = ZoneArrays(Flat(*parsed[0]), parsed[1])
        doubtful = np.flatnonzero(needs_geos(arrays.flat))
    if doubtful.size == 0:
        return arrays
    with reading(path):  # as when every zone is made a shapely object
        read = shapely.from_wkb(table.wkb_of(doubtful))
    read = np.where(shapely.is_empty(read), np.array(None), read)
    checked = make_valid(read, source, stacklevel=5)
    if checked is read:  # none repaired
        return arrays
    fresh = ZoneArrays.of(checked)
    order = np.arange(len(arrays))
    order[doubtful] = len(arrays) + np.arange(doubtful.size)
    return ZoneArrays.concat([arrays, fresh]).take(order)
