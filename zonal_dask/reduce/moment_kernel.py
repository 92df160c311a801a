"""Compiled per-chunk kernels, and nothing else.

One sweep over a chunk's claims (pixel, zone, weight) accumulates, for each
zone present in the chunk: the weight of its finite, +inf, -inf and invalid
(nodata or NaN) pixels, a compensated weighted sum of the finite values,
West's weighted running mean and M2, the minimum and the maximum, all in
float64 whatever the raster's dtype. A claim of the label layers weighs 1; a
sparse claim weighs its coverage fraction when the label source gives one, else
1, so the unweighted statistics are the weighted ones with unit weights, bit
for bit.

The running mean is taken of values shifted by the zone's first finite value
in the chunk: shifted values are exact and small, so M2 keeps full precision
even for values near 1e8 with unit spread, where the running mean's own
rounding would not. Infinite values take part in min and max only; the final
step gives sum, mean and std the values numpy gives when infinities are
present. The kernels release the GIL, so dask's threads run them in parallel.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def moments(
    values,
    labels,
    extra_pixels,
    extra_zones,
    extra_weights,
    n_zones,
    nodata,
    has_nodata,
    pixel_weights,
    origin,
):  # pragma: no cover - numba
    """Per-zone weighted moments of one chunk.

    Parameters
    ----------
    values : 2-D array, any numeric dtype, C-contiguous
    labels : 3-D int32 array (layers, rows, cols); local zone index, or -1
    extra_pixels, extra_zones : 1-D int64 / int32
        Flat pixel index and local zone of each sparse claim (pixels that
        several zones of a layer cover, or every claim of a coverage source).
    extra_weights : 1-D float64
        Weight of each sparse claim; empty when every claim weighs 1.
    n_zones : int
        Number of local zones.
    nodata : scalar of ``values.dtype``
        The nodata value, compared in that dtype (exactly, for 64-bit
        integers too); ignored unless ``has_nodata``. NaN is always invalid.
    pixel_weights : 2-D float64
        A weight per pixel multiplying every claim's weight (a weights
        raster), NaN where undefined; empty (size 0) for none. A zero weight
        adds nothing; a valid value with an undefined weight is counted in
        ``undefined`` instead.
    origin : 1-D int64 (row, col, width)
        The chunk's first pixel in the grid and the grid's width: positions
        are ``row * width + col`` in the grid.

    Returns
    -------
    weight, posinf, neginf, invalid, total, carry, shift, mean, m2, low, high,
    undefined, low_at, high_at
        1-D arrays over the local zones: the weights of the finite, +inf,
        -inf and invalid pixels; the weighted sum of the finite values as a
        float and the rounding error it carries (Neumaier's compensation, 0
        once the sum overflows), kept apart so that sums of several chunks
        lose nothing either; the shift; the weighted mean of ``value -
        shift`` and its M2; the minimum and maximum of the valid values (+inf
        and -inf where a zone has none); the weight of the valid claims whose
        pixel weight is undefined; the grid position (float64) of the first
        pixel in row-major order holding the minimum and the maximum (-1 for
        none).
    """
    # one row per zone: the fields of one zone share a cache line
    acc = np.zeros((n_zones, 10), np.float64)
    low = np.full(n_zones, np.inf)
    high = np.full(n_zones, -np.inf)
    low_at = np.full(n_zones, -1.0)
    high_at = np.full(n_zones, -1.0)
    flat_values = values.ravel()
    n_pixels = flat_values.size
    n_cols = values.shape[1]
    n_layers = labels.shape[0]
    flat_labels = labels.reshape(n_layers, n_pixels)
    weighted = extra_weights.size > 0
    by_pixel = pixel_weights.size > 0
    flat_pixel_weights = pixel_weights.ravel()
    row0, col0, grid_width = origin[0], origin[1], origin[2]
    # One loop body for the layers' pixels and, last, the sparse claims: the
    # update written once and inline runs twice as fast as the same update in
    # a helper function, inlined or not (numba 0.6x).
    for layer in range(n_layers + 1):
        main = layer < n_layers
        for i in range(n_pixels if main else extra_pixels.size):
            w = 1.0
            if main:
                z = flat_labels[layer, i]
                if z < 0:
                    continue
                pixel = i
            else:
                z = extra_zones[i]
                pixel = extra_pixels[i]
                if weighted:
                    w = extra_weights[i]
                    if not w > 0.0:
                        continue
            raw = flat_values[pixel]
            x = np.float64(raw)
            # row: weight, posinf, neginf, invalid, sum, compensation, shift,
            # mean, m2, undefined
            # nodata is compared in the raster's dtype: exact for int64 too
            if x != x or (has_nodata and raw == nodata):
                acc[z, 3] += w
                continue
            if x <= low[z] or x >= high[z]:
                at = float(
                    (row0 + pixel // n_cols) * grid_width + col0 + pixel % n_cols
                )
                if x < low[z] or (x == low[z] and at < low_at[z]):
                    low[z] = x
                    low_at[z] = at
                if x > high[z] or (x == high[z] and at < high_at[z]):
                    high[z] = x
                    high_at[z] = at
            if by_pixel:
                pw = flat_pixel_weights[pixel]
                if pw != pw:
                    acc[z, 9] += w
                    continue
                w *= pw
            if w == 0.0:
                continue
            if np.isinf(x):
                acc[z, 1 if x > 0 else 2] += w
                continue
            if acc[z, 0] == 0.0:
                acc[z, 6] = x
            total_weight = acc[z, 0] + w
            acc[z, 0] = total_weight
            # Neumaier's compensated sum: integer sums stay exact up to 2**53.
            wx = w * x
            total = acc[z, 4]
            t = total + wx
            if abs(total) >= abs(wx):
                acc[z, 5] += (total - t) + wx
            else:
                acc[z, 5] += (wx - t) + total
            acc[z, 4] = t
            # West's weighted update; with w = 1 exactly Welford's
            y = x - acc[z, 6]
            delta = y - acc[z, 7]
            acc[z, 7] += delta * w / total_weight
            acc[z, 8] += w * delta * (y - acc[z, 7])
    # an overflowed sum is inf, whatever its compensation says (inf - inf)
    carry = acc[:, 5].copy()
    for z in range(n_zones):
        if not np.isfinite(acc[z, 4]):
            carry[z] = 0.0
    return (
        acc[:, 0].copy(),
        acc[:, 1].copy(),
        acc[:, 2].copy(),
        acc[:, 3].copy(),
        acc[:, 4].copy(),
        carry,
        acc[:, 6].copy(),
        acc[:, 7].copy(),
        acc[:, 8].copy(),
        low,
        high,
        acc[:, 9].copy(),
        low_at,
        high_at,
    )
