"""Coverage-weighted partials of one chunk, computed by exactextract.

exactextract gives, for every cell a polygon touches, the exact fraction of
the cell it covers. Fractions do not depend on the chunking, so each chunk is
handed to exactextract on its own, in the same oriented pixel space the
rasterizer uses, and the per-zone sums of weights and weighted values merge by
addition like any other partial.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .errors import ZonalError


class CoverageParts(NamedTuple):
    """Per zone (sorted global ids): sum of coverage, sum of coverage x value."""

    zone: np.ndarray
    weight: np.ndarray
    weighted: np.ndarray

    @classmethod
    def empty(cls) -> CoverageParts:
        return cls(np.empty(0, np.int64), np.empty(0), np.empty(0))


def coverage_chunk(
    values: np.ndarray,
    geometries: np.ndarray,
    zones: np.ndarray,
    offset: tuple[int, int],
    orient: tuple[int, int],
    nodata: float | None,
) -> CoverageParts:
    """Coverage-weighted sums of one 2-D block for the zones that meet it."""
    try:
        from exactextract import exact_extract
        from exactextract.raster import NumPyRasterSource
    except ImportError:  # pragma: no cover - the test extra installs it
        raise ZonalError(
            "weights='coverage' needs exactextract: pip install 'zonal-dask[coverage]'"
        ) from None

    rows, cols = values.shape
    (row_off, col_off), (flip_x, flip_y) = offset, orient
    # exactextract wants row 0 at the top (largest y) and column 0 at the left
    block = values[::-1] if flip_y > 0 else values
    block = block[:, ::-1] if flip_x < 0 else block
    xs = sorted((flip_x * col_off, flip_x * (col_off + cols)))
    ys = sorted((flip_y * row_off, flip_y * (row_off + rows)))
    source = NumPyRasterSource(
        np.ascontiguousarray(block, dtype=np.float64),
        xmin=xs[0],
        ymin=ys[0],
        xmax=xs[1],
        ymax=ys[1],
        nodata=None
        if nodata is None or np.isnan(nodata)
        else _in_dtype(nodata, values),
    )
    features = [
        {
            "type": "Feature",
            "properties": {"zone": int(z)},
            "geometry": g.__geo_interface__,
        }
        for z, g in zip(zones, geometries, strict=True)
    ]
    table = exact_extract(
        source, features, ["coverage", "values"], output="pandas", include_cols=["zone"]
    )
    weight = np.array([c.sum() for c in table["coverage"]], dtype=np.float64)
    weighted = np.array(
        [np.dot(c, v) for c, v in zip(table["coverage"], table["values"], strict=True)],
        dtype=np.float64,
    )
    zone = table["zone"].to_numpy(np.int64)
    order = np.argsort(zone, kind="stable")
    return CoverageParts(zone[order], weight[order], weighted[order])


def _in_dtype(nodata: float, values: np.ndarray) -> float:
    """The nodata value as the block holds it (float32 -9999.0, uint8 0...)."""
    if np.issubdtype(values.dtype, np.integer):
        info = np.iinfo(values.dtype)
        if not (info.min <= nodata <= info.max):
            return np.nan  # matches nothing, as in the unweighted path
    return float(np.asarray(nodata).astype(values.dtype))


def merge_coverage(parts: Sequence[CoverageParts]) -> CoverageParts:
    """Add coverage partials zone by zone."""
    parts = [p for p in parts if len(p.zone)]
    if not parts:
        return CoverageParts.empty()
    zone, weight, weighted = (np.concatenate(f) for f in zip(*parts, strict=True))
    zones, inverse = np.unique(zone, return_inverse=True)
    return CoverageParts(
        zones,
        np.bincount(inverse, weight, zones.size),
        np.bincount(inverse, weighted, zones.size),
    )
