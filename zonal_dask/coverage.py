"""Geometries to weighted pixels for one chunk: exactextract's coverage fractions.

exactextract gives, for every cell a polygon touches, the exact fraction of
the cell it covers. A cell's fraction depends on the polygon and the cell only,
so each chunk is handed to exactextract on its own, in the same oriented pixel
space the burner uses; the fractions become the weights of the chunk's sparse
claims, and every statistic downstream weighs its pixels by them.
"""

from __future__ import annotations

import numpy as np

from .errors import ZonalError


def coverage_claims(
    geometries: np.ndarray,
    offset: tuple[int, int],
    shape: tuple[int, int],
    orient: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every cell of the chunk each zone covers, with the fraction it covers.

    ``geometries`` are in the oriented pixel space of ``burn.to_pixel_space``,
    ``offset`` the chunk's (row, column) and ``shape`` its size.

    Returns
    -------
    pixels, zones, fractions
        int64 flat pixel index in the chunk (row-major, as the raster block),
        int32 local zone (position in ``geometries``), float64 fraction in
        (0, 1].
    """
    try:
        from exactextract import exact_extract
        from exactextract.raster import NumPyRasterSource
    except ImportError:  # pragma: no cover - a dependency of the coverage extra
        raise ZonalError(
            "coverage weighting needs exactextract: pip install exactextract"
        ) from None

    rows, cols = shape
    (row_off, col_off), (flip_x, flip_y) = offset, orient
    xs = sorted((flip_x * col_off, flip_x * (col_off + cols)))
    ys = sorted((flip_y * row_off, flip_y * (row_off + rows)))
    # the grid's cells only: exactextract reads no value for these operations
    grid = NumPyRasterSource(
        np.zeros((rows, cols), np.uint8), xmin=xs[0], ymin=ys[0], xmax=xs[1], ymax=ys[1]
    )
    features = [
        {"type": "Feature", "properties": {"z": z}, "geometry": g.__geo_interface__}
        for z, g in enumerate(geometries)
    ]
    table = exact_extract(
        grid, features, ["cell_id", "coverage"], output="pandas", include_cols=["z"]
    )
    sizes = np.array([len(c) for c in table["cell_id"]], np.int64)
    if sizes.sum() == 0:
        return np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0)
    cell = np.concatenate(table["cell_id"].to_numpy()).astype(np.int64)
    fraction = np.concatenate(table["coverage"].to_numpy()).astype(np.float64)
    zone = np.repeat(table["z"].to_numpy(np.int32), sizes)
    # exactextract numbers cells from the top left (largest y, smallest x)
    row, col = np.divmod(cell, cols)
    if flip_y > 0:
        row = rows - 1 - row
    if flip_x < 0:
        col = cols - 1 - col
    keep = fraction > 0
    return (row * cols + col)[keep], zone[keep], fraction[keep]
