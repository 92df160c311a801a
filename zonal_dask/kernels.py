"""Compiled per-chunk kernels, and nothing else.

One sweep over a chunk's pixels accumulates, for each zone present in the chunk:
the number of finite, +inf, -inf and invalid (nodata or NaN) pixels, a
compensated sum of the finite values, Welford's running mean and M2, the
minimum and the maximum, all in float64 whatever the raster's dtype. Welford
runs on values shifted by the zone's first finite value in the chunk: shifted
values are exact and small, so M2 keeps full precision even for values near
1e8 with unit spread, where the running mean's own rounding would not.
Infinite values take part in min and max only; the final step gives sum, mean
and std the values numpy gives when infinities are present. The kernels release
the GIL, so dask's threads run them in parallel.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def moments(
    values, labels, extra_pixels, extra_zones, n_zones, nodata, has_nodata
):  # pragma: no cover - numba
    """Per-zone moments of one chunk.

    Parameters
    ----------
    values : 2-D array, any numeric dtype, C-contiguous
    labels : 3-D int32 array (layers, rows, cols); local zone index, or -1
    extra_pixels, extra_zones : 1-D int64 / int32
        Flat pixel index and local zone of each claim on a pixel that several
        zones cover (those pixels hold -1 in ``labels``).
    n_zones : int
        Number of local zones.
    nodata : float
        The nodata value, already cast to ``values.dtype``; ignored unless
        ``has_nodata``. NaN is always invalid.

    Returns
    -------
    acc : 2-D float64 array (n_zones, 9)
        Columns: finite count, +inf count, -inf count, invalid count, sum,
        sum compensation, shift, mean of ``value - shift``, M2.
    lo, hi : 1-D float64 arrays
        Minimum and maximum (+inf and -inf where a zone has no valid pixel).
    """
    acc = np.zeros((n_zones, 9), np.float64)
    lo = np.full(n_zones, np.inf)
    hi = np.full(n_zones, -np.inf)
    flat_values = values.ravel()
    n_pixels = flat_values.size
    n_layers = labels.shape[0]
    flat_labels = labels.reshape(n_layers, n_pixels)
    # One loop body for the layers' pixels and, last, the extra claims: the
    # update written once and inline runs twice as fast as the same update in
    # a helper function, inlined or not (numba 0.6x).
    for layer in range(n_layers + 1):
        main = layer < n_layers
        for i in range(n_pixels if main else extra_pixels.size):
            if main:
                z = flat_labels[layer, i]
                if z < 0:
                    continue
                x = np.float64(flat_values[i])
            else:
                z = extra_zones[i]
                x = np.float64(flat_values[extra_pixels[i]])
            if x != x or (has_nodata and x == nodata):
                acc[z, 3] += 1.0
                continue
            # acc columns: finite, posinf, neginf, invalid, sum, comp, shift,
            # mean, m2
            if x < lo[z]:
                lo[z] = x
            if x > hi[z]:
                hi[z] = x
            if np.isinf(x):
                acc[z, 1 if x > 0 else 2] += 1.0
                continue
            n = acc[z, 0] + 1.0
            acc[z, 0] = n
            if n == 1.0:
                acc[z, 6] = x
            # Neumaier's compensated sum: integer sums stay exact up to 2**53.
            total = acc[z, 4]
            t = total + x
            if abs(total) >= abs(x):
                acc[z, 5] += (total - t) + x
            else:
                acc[z, 5] += (x - t) + total
            acc[z, 4] = t
            y = x - acc[z, 6]
            delta = y - acc[z, 7]
            acc[z, 7] += delta / n
            acc[z, 8] += delta * (y - acc[z, 7])
    return acc, lo, hi


@njit(cache=True, nogil=True)
def decode_claims(burn, count_bits, max_claims):  # pragma: no cover - numba
    """Split an add-burn into labels and the pixels several zones claim.

    ``burn`` holds, per pixel, the sum over the zones claiming it of
    ``(zone + 1) << count_bits | 1``. Returns int32 labels (the zone when
    exactly one claims the pixel, else -1), the flat indices of the pixels
    claimed more than once, and False instead when a pixel has more than
    ``max_claims`` claims (the sum may then have carried into the zone bits).
    """
    mask = (1 << count_bits) - 1
    flat = burn.reshape(-1)
    labels = np.full(flat.size, -1, np.int32)
    n_multi = 0
    for i in range(flat.size):
        count = flat[i] & mask
        if count == 1:
            labels[i] = (flat[i] >> count_bits) - 1
        elif count > 1:
            if count > max_claims:
                return labels.reshape(burn.shape), np.empty(0, np.int64), False
            n_multi += 1
    multi = np.empty(n_multi, np.int64)
    k = 0
    if n_multi:
        for i in range(flat.size):
            if (flat[i] & mask) > 1:
                multi[k] = i
                k += 1
    return labels.reshape(burn.shape), multi, True
