"""Compiled per-chunk kernels, and nothing else.

One sweep over a chunk's claims (pixel, zone, weight) accumulates, for each
zone present in the chunk, the columns ``COLUMNS`` names: the weight of its
finite, +inf, -inf and invalid (nodata or NaN) pixels, a compensated
weighted sum of the finite values, the weighted power sums of the finite
values shifted by the zone's reference value (its first finite value in the
chunk, or one given), the minimum and the maximum (and, when asked, where
they first are), all in float64 whatever the raster's dtype. A claim of the
label layers weighs 1; a sparse claim weighs its coverage fraction when the
label source gives one, else 1, so the unweighted statistics are the
weighted ones with unit weights, bit for bit. With a weights raster the same
pass fills a second set of columns, each claim weighing its weight times the
pixel's. Without a weights raster nor the third and fourth power sums, a
label layer's claims, which all weigh 1, are taken a run of one zone's
adjacent pixels at a time, the zone's columns held in locals along the run
(``_layer_runs``): the same operations in the same order, so the same bits,
without a memory round trip per pixel and column.

No division per pixel: the power sums of shifted values are only added; the
central moments are derived from them once per zone (``reduce/moments.py``),
which checks that the shift was close enough to the mean to lose no
precision and otherwise runs the pass again with the mean as the shift.
Infinite values take part in min and max only; the final step gives sum,
mean and std the values numpy gives when infinities are present. The
kernels release the GIL, so dask's threads run them in parallel.
"""

from __future__ import annotations

import numpy as np

from ..precompiled import njit

# the kernel's columns, in order; "s1".."s4" are the weighted power sums of
# value - shift, from which the central moments are derived
COLUMNS = (
    "weight",
    "posinf",
    "neginf",
    "nan",
    "nodata",
    "undefined",
    "sum",
    "carry",
    "shift",
    "s1",
    "s2",
    "s3",
    "s4",
    "min",
    "max",
    "min_at",
    "max_at",
)
# options: bits of the kernel's ``options`` argument
POSITIONS = 1  # track where the extremes first are
HIGHER = 2  # the third and fourth power sums
NAN_VALUES = 4  # invalid pixels count, as NaN values (default_value=NaN)


@njit(nogil=True, inline="always")
def _extremes(
    acc, z, x, low, high, positions, pixel, row0, col0, grid_width, n_cols
):  # pragma: no cover - numba
    """``_layer_runs``' minimum and maximum of a run after value ``x``, and
    where they first are (in ``acc``) when ``positions``."""
    if positions:
        at = float((row0 + pixel // n_cols) * grid_width + col0 + pixel % n_cols)
        if x < low or (x == low and at < acc[z, 15]):
            low = x
            acc[z, 15] = at
        if x > high or (x == high and at < acc[z, 16]):
            high = x
            acc[z, 16] = at
    else:
        low = min(low, x)
        high = max(high, x)
    return low, high


@njit(cache=True, nogil=True)
def _layer_runs(
    flat_values,
    layer_labels,
    acc,
    nodata,
    has_nodata,
    positions,
    invalid_column,
    row0,
    col0,
    grid_width,
    n_cols,
):  # pragma: no cover - numba
    """One label layer's pixels, each claim weighing 1, a zone's run of
    adjacent pixels at a time: the columns every valid pixel updates are held
    in locals along the run and stored once at its end; the rare ones
    (infinities, invalid pixels, the extremes' positions) are updated where
    they are. The same operations in the same order as the generic loop of
    ``moments`` (whose weights are all 1 here), so the same bits; the
    accumulators no longer wait on memory from pixel to pixel. Without the
    third and fourth power sums, whose two more accumulators cost a quarter
    of the speed (skewness and kurtosis take the generic loop).

    Runs are short where zones are small (13 pixels at 200,000 zones over
    8000²), so what a run costs beside its pixels counts: 8 columns loaded
    and stored, not 13; the zone's first finite value (its shift) found
    before the run's loop, not tested for at every pixel; its weight the
    run's length less the pixels skipped; NaN, nodata and infinities behind
    one test (``benchmarks/README.md``)."""
    n_pixels = flat_values.size
    i = 0
    while i < n_pixels:
        z = layer_labels[i]
        if z < 0:
            i += 1
            continue
        total = acc[z, 6]
        carry = acc[z, 7]
        shift = acc[z, 8]
        s1 = acc[z, 9]
        s2 = acc[z, 10]
        low = acc[z, 13]
        high = acc[z, 14]
        start = i
        skipped = 0
        if shift != shift:
            while i < n_pixels and layer_labels[i] == z:
                raw = flat_values[i]
                x = np.float64(raw)
                if abs(x) < np.inf and not (has_nodata and raw == nodata):
                    shift = x
                    break
                i += 1
            i = start
        while i < n_pixels and layer_labels[i] == z:
            pixel = i
            i += 1
            raw = flat_values[pixel]
            x = np.float64(raw)
            finite = abs(x) < np.inf
            if not finite or (has_nodata and raw == nodata):
                if x != x or (has_nodata and raw == nodata):
                    skipped += 1
                    acc[z, invalid_column] += 1.0
                    continue
            if x <= low or x >= high:
                low, high = _extremes(
                    acc,
                    z,
                    x,
                    low,
                    high,
                    positions,
                    pixel,
                    row0,
                    col0,
                    grid_width,
                    n_cols,
                )
            if not finite:  # an extreme as any value, then counted apart
                skipped += 1
                acc[z, 1 if x > 0 else 2] += 1.0
                continue
            t = total + x
            if abs(total) >= abs(x):
                carry += (total - t) + x
            else:
                carry += (x - t) + total
            total = t
            y = x - shift
            s1 += y
            s2 += y * y
        acc[z, 0] += float(i - start - skipped)  # whole numbers: exact
        acc[z, 6] = total
        acc[z, 7] = carry
        acc[z, 8] = shift
        acc[z, 9] = s1
        acc[z, 10] = s2
        acc[z, 13] = low
        acc[z, 14] = high


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
    shifts,
    options,
):  # pragma: no cover - numba
    """Per-zone weighted power sums of one chunk.

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
    shifts : 2-D float64 (zones, sets)
        Each zone's shift per set of columns; NaN (or an empty array) for
        its first finite value.
    options : int
        ``POSITIONS | HIGHER | NAN_VALUES``, as asked.

    Returns
    -------
    3-D float64 array (zones, sets, COLUMNS)
        Set 0 weighs claims by their own weight, set 1 (with a weights
        raster only) by their weight times the pixel's. ``carry`` is the
        rounding error ``sum`` misses (Neumaier's compensation, products'
        errors included; 0 once the sum overflows); ``min``/``max`` are +inf
        and -inf for a zone without valid values, ``min_at``/``max_at`` the
        grid position (float64) of the first pixel in row-major order
        holding them, -1 for none or when not asked; set 1 holds no extremes.
    """
    by_pixel = pixel_weights.size > 0
    sets = 2 if by_pixel else 1
    acc = np.zeros((n_zones * sets, 17), np.float64)
    for z in range(n_zones):
        row = z * sets
        for s in range(sets):
            acc[row + s, 8] = np.nan
            if shifts.size > 0:
                acc[row + s, 8] = shifts[z, s]
            acc[row + s, 13] = np.inf
            acc[row + s, 14] = -np.inf
            acc[row + s, 15] = -1.0
            acc[row + s, 16] = -1.0
    positions = (options & 1) != 0
    higher = (options & 2) != 0
    invalid_column = 3 if (options & 4) != 0 else 4
    flat_values = values.ravel()
    n_pixels = flat_values.size
    n_cols = values.shape[1]
    n_layers = labels.shape[0]
    flat_labels = labels.reshape(n_layers, n_pixels)
    weighted = extra_weights.size > 0
    flat_pixel_weights = pixel_weights.ravel()
    row0, col0, grid_width = origin[0], origin[1], origin[2]
    # Without a weights raster or the higher power sums the layers go zone
    # run by zone run (2-2.5x the pixels a CPU second of this loop on a
    # 2048² float32 chunk, benchmarks/README.md). The rest takes one loop
    # body for the layers' pixels and, last, the sparse claims: the update
    # written once and inline runs twice as fast as the same update in a
    # helper function, inlined or not (numba 0.6x).
    first = 0
    if not (by_pixel or higher):
        for layer in range(n_layers):
            _layer_runs(
                flat_values,
                flat_labels[layer],
                acc,
                nodata,
                has_nodata,
                positions,
                invalid_column,
                row0,
                col0,
                grid_width,
                n_cols,
            )
        first = n_layers
    for layer in range(first, n_layers + 1):
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
            row = z * sets
            raw = flat_values[pixel]
            x = np.float64(raw)
            pw = flat_pixel_weights[pixel] if by_pixel else 1.0
            # nodata is compared in the raster's dtype: exact for int64 too
            if x != x or (has_nodata and raw == nodata):
                for s in range(sets):
                    acc[row + s, invalid_column] += w
                continue
            if x <= acc[row, 13] or x >= acc[row, 14]:
                if positions:
                    at = float(
                        (row0 + pixel // n_cols) * grid_width + col0 + pixel % n_cols
                    )
                    low, high = acc[row, 13], acc[row, 14]
                    if x < low or (x == low and at < acc[row, 15]):
                        acc[row, 13] = x
                        acc[row, 15] = at
                    if x > high or (x == high and at < acc[row, 16]):
                        acc[row, 14] = x
                        acc[row, 16] = at
                else:
                    acc[row, 13] = min(acc[row, 13], x)
                    acc[row, 14] = max(acc[row, 14], x)
            for s in range(sets):
                ws = w
                if s == 1:
                    if pw != pw:
                        acc[row + 1, 5] += w
                        break
                    ws = w * pw
                    if ws == 0.0:
                        break
                if np.isinf(x):
                    acc[row + s, 1 if x > 0 else 2] += ws
                    continue
                shift = acc[row + s, 8]
                if shift != shift:
                    shift = x
                    acc[row + s, 8] = x
                acc[row + s, 0] += ws
                # Neumaier's compensated sum: integer sums stay exact up to
                # 2**53, and a weighted product's rounding error (Dekker's
                # split) is compensated too: means exact under cancellation
                wx = ws * x
                if ws != 1.0 and abs(x) < 1e290 and ws < 1e290:
                    split = 134217729.0 * x
                    xh = split - (split - x)
                    xl = x - xh
                    split = 134217729.0 * ws
                    wh = split - (split - ws)
                    wl = ws - wh
                    acc[row + s, 7] += ((wh * xh - wx) + wh * xl + wl * xh) + wl * xl
                total = acc[row + s, 6]
                t = total + wx
                if abs(total) >= abs(wx):
                    acc[row + s, 7] += (total - t) + wx
                else:
                    acc[row + s, 7] += (wx - t) + total
                acc[row + s, 6] = t
                # power sums of the shifted value: no division per pixel
                y = x - shift
                wy = ws * y
                acc[row + s, 9] += wy
                wyy = wy * y
                acc[row + s, 10] += wyy
                if higher:
                    wyyy = wyy * y
                    acc[row + s, 11] += wyyy
                    acc[row + s, 12] += wyyy * y
    for z in range(n_zones):
        row = z * sets
        for s in range(sets):
            # an overflowed sum is inf, whatever its compensation says
            if not np.isfinite(acc[row + s, 6]):
                acc[row + s, 7] = 0.0
            if acc[row + s, 8] != acc[row + s, 8]:
                acc[row + s, 8] = 0.0
    return acc.reshape(n_zones, sets, 17)
