"""Compiled per-chunk kernels, and nothing else.

One sweep over a chunk's pixels accumulates, for each zone present in the chunk,
the valid-pixel count, a compensated sum, Welford's running mean and M2, the
minimum and the maximum, all in float64 whatever the raster's dtype. Welford
runs on values shifted by the zone's first value in the chunk: the shifted
values are exact and small, so M2 keeps full precision even for values near
1e8 with unit spread, where the running mean's own rounding would not. The
kernels release the GIL, so dask's threads run them in parallel.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def _add(z, x, count, total, comp, shift, mean, m2, lo, hi):  # pragma: no cover
    n = count[z] + 1
    count[z] = n
    if n == 1:
        shift[z] = x
    # Neumaier's compensated sum: integer sums stay exact up to 2**53.
    t = total[z] + x
    if abs(total[z]) >= abs(x):
        comp[z] += (total[z] - t) + x
    else:
        comp[z] += (x - t) + total[z]
    total[z] = t
    y = x - shift[z]
    delta = y - mean[z]
    mean[z] += delta / n
    m2[z] += delta * (y - mean[z])
    if x < lo[z]:
        lo[z] = x
    if x > hi[z]:
        hi[z] = x


@njit(cache=True, nogil=True)
def moments(
    values, labels, extra_pixels, extra_zones, n_zones, nodata, has_nodata
):  # pragma: no cover - numba
    """Per-zone moments of one chunk.

    Parameters
    ----------
    values : 2-D array, any numeric dtype, C-contiguous
    labels : 2-D int32 array, same shape; local zone index, or -1
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
    count, total, shift, mean, m2, lo, hi : 1-D arrays of length ``n_zones``
        ``mean`` is the mean of ``value - shift``; ``m2`` the sum of squared
        deviations from the mean.
    """
    count = np.zeros(n_zones, np.int64)
    total = np.zeros(n_zones, np.float64)
    comp = np.zeros(n_zones, np.float64)
    shift = np.zeros(n_zones, np.float64)
    mean = np.zeros(n_zones, np.float64)
    m2 = np.zeros(n_zones, np.float64)
    lo = np.full(n_zones, np.inf)
    hi = np.full(n_zones, -np.inf)
    flat_values = values.ravel()
    flat_labels = labels.ravel()
    for i in range(flat_labels.size):
        z = flat_labels[i]
        if z < 0:
            continue
        x = np.float64(flat_values[i])
        if x != x or (has_nodata and x == nodata):
            continue
        _add(z, x, count, total, comp, shift, mean, m2, lo, hi)
    for j in range(extra_pixels.size):
        x = np.float64(flat_values[extra_pixels[j]])
        if x != x or (has_nodata and x == nodata):
            continue
        _add(extra_zones[j], x, count, total, comp, shift, mean, m2, lo, hi)
    return count, total + comp, shift, mean, m2, lo, hi
