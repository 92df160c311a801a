"""Exact sums of 64-bit integer rasters beyond 2**53, for the moments.

The compiled pass adds values converted to float64, which drops the low bits
of integers beyond 2**53; ``exact_integer_sum`` recomputes those zones' sums
exactly (21-bit limbs summed in float64, joined as Python integers).
"""

from __future__ import annotations

import numpy as np

from ..labels.sources import ChunkLabels
from ..statistics.fields import INDEX


def exact_integer_sum(
    data: np.ndarray,
    plane: np.ndarray,
    labels: ChunkLabels,
    has_nodata: bool,
    nodata: np.generic,
) -> np.ndarray:
    """The fields (zones, N_FIELDS) of a 64-bit integer plane, with each zone's sum
    recomputed exactly when a value is beyond 2**53 (the kernel adds values
    converted to float64, which drops their low bits: 2**62 + 1 and -2**62
    would sum to 0): the float64 nearest the exact sum, and what it misses as
    its carry."""
    if not plane.size or max(abs(int(plane.min())), abs(int(plane.max()))) <= 2**53:
        return data
    valid = ~(plane == nodata) if has_nodata else np.ones(plane.shape, bool)
    flat, n = plane.reshape(-1), len(labels.zones)
    zone = [labels.extra_zones[valid.reshape(-1)[labels.extra_pixels]]]
    pixel = [labels.extra_pixels[valid.reshape(-1)[labels.extra_pixels]]]
    for layer in labels.labels:
        claimed = np.flatnonzero((layer.reshape(-1) >= 0) & valid.reshape(-1))
        zone.append(layer.reshape(-1)[claimed])
        pixel.append(claimed)
    zones, values = np.concatenate(zone), flat[np.concatenate(pixel)]
    # three 21-bit limbs, each summed exactly in float64 (< 2**53 for any chunk
    # under 2**31 pixels), then joined as Python integers
    limbs = [(values >> shift) & (2**21 - 1) for shift in (0, 21)]
    limbs.append(values >> 42)
    sums = [
        np.bincount(zones, weights=limb.astype(np.float64), minlength=n)
        for limb in limbs
    ]
    exact = [
        int(s0) + (int(s1) << 21) + (int(s2) << 42)
        for s0, s1, s2 in zip(*sums, strict=True)
    ]
    high = np.array([float(e) for e in exact])
    carry = np.array([float(e - int(h)) for e, h in zip(exact, high, strict=True)])
    data[:, INDEX["sum"]] = high
    data[:, INDEX["carry"]] = carry
    return data
