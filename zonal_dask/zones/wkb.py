"""WKB to ``burn.Flat`` arrays, compiled: zones flattened without shapely objects.

Flattening a million zones through shapely (``get_parts``, ``get_rings``,
``get_coordinates``) makes a Python object for every part and ring; reading
their WKB (one buffer and its offsets, as Arrow holds a geometry column) is a
pass over the bytes. ``flat_of_wkb`` reads ISO and extended (PostGIS) WKB of
points, lines, polygons and their multi-kinds, little-endian, keeping x and y;
it returns None for anything else (big-endian, collections, a truncated
geometry) so that the caller flattens those through shapely instead.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..precompiled import njit

# WKB's geometry codes 1..6 to shapely's type ids
_TYPE_ID = np.array([-1, 0, 1, 3, 4, 5, 6, -1], np.int8)
# burn/prepare.py's kinds of parts by WKB code (POLYGON 0, LINE 1, POINT 2)
_KIND = np.array([-1, 2, 1, 0, 2, 1, 0, -1], np.int64)


@njit(cache=True, nogil=True)
def _u32(data, at):  # pragma: no cover - numba
    return (
        np.int64(data[at])
        | (np.int64(data[at + 1]) << 8)
        | (np.int64(data[at + 2]) << 16)
        | (np.int64(data[at + 3]) << 24)
    )


@njit(cache=True, nogil=True)
def _header(data, at, end):  # pragma: no cover - numba
    """(code 1..7, dimensions, position after the header), or code -1."""
    if at + 5 > end or data[at] != 1:
        return -1, 0, at
    raw = _u32(data, at + 1)
    at += 5
    flags = raw & 0xF0000000
    code = raw & 0x0FFFFFFF
    dims = 2
    if flags != 0:  # extended WKB: flags for Z, M and an SRID
        dims += ((raw >> 31) & 1) + ((raw >> 30) & 1)
        if (raw >> 29) & 1:
            at += 4
    else:
        dims += (1, 1, 2)[code // 1000 - 1] if 1000 <= code < 4000 else 0
        code = code % 1000
    if code < 1 or code > 7:
        return -1, 0, at
    return code, dims, at


@njit(cache=True, nogil=True)
def _walk(data, starts, ends, out, fill, base):  # pragma: no cover - numba
    """Count (``fill`` False) or write the parts, paths and coordinates of
    every geometry, the first one being zone ``base[0]`` and the counts
    starting at ``base[1:]``; return (ok, parts, paths, coords) at the end."""
    zone_parts, part_kind, part_paths, path_coords, xy, types = out  # xy: bytes
    zone0, parts, paths, coords = base
    for z in range(starts.size):
        at, end = starts[z], ends[z]
        if fill:
            zone_parts[zone0 + z] = parts
        if at == end:  # a null geometry
            if fill:
                types[zone0 + z] = -1
            continue
        code, dims, at = _header(data, at, end)
        if code < 1 or code > 6:
            return False, 0, 0, 0
        multi = code >= 4
        members = 1
        if multi:
            if at + 4 > end:
                return False, 0, 0, 0
            members = _u32(data, at)
            at += 4
        had = parts
        for _ in range(members):
            part_code = code
            part_dims = dims
            if multi:
                part_code, part_dims, at = _header(data, at, end)
                if part_code != code - 3:
                    return False, 0, 0, 0
            n_paths = 1
            if part_code == 3:
                if at + 4 > end:
                    return False, 0, 0, 0
                n_paths = _u32(data, at)
                at += 4
            first_path = paths
            part_coords = 0
            for _ in range(n_paths):
                n = 1
                if part_code != 1:
                    if at + 4 > end:
                        return False, 0, 0, 0
                    n = _u32(data, at)
                    at += 4
                if at + 8 * part_dims * n > end:
                    return False, 0, 0, 0
                keep = n
                if part_code == 1:  # an empty point is NaN
                    x = data[at : at + 8].view(np.float64)[0]
                    y = data[at + 8 : at + 16].view(np.float64)[0]
                    if np.isnan(x) and np.isnan(y):
                        keep = 0
                if fill:
                    path_coords[paths] = coords
                    if part_dims == 2:  # the bytes of x, y, x, y, ... as they are
                        xy[16 * coords : 16 * (coords + keep)] = data[
                            at : at + 16 * keep
                        ]
                    for k in range(keep if part_dims > 2 else 0):
                        p, q = at + 8 * part_dims * k, 16 * (coords + k)
                        xy[q : q + 16] = data[p : p + 16]
                at += 8 * part_dims * n
                paths += 1
                coords += keep
                part_coords += keep
            if part_coords == 0:
                paths = first_path  # an empty part: dropped, as shapely's is
                continue
            if fill:
                part_kind[parts] = _KIND[part_code]
                part_paths[parts] = first_path
            parts += 1
        if fill:
            types[zone0 + z] = _TYPE_ID[code] if parts > had else -1
    if fill:
        zone_parts[zone0 + starts.size] = parts
        part_paths[parts] = paths
        path_coords[paths] = coords
    return True, parts, paths, coords


def flat_of_wkb(
    data: np.ndarray, offsets: np.ndarray
) -> tuple[tuple[np.ndarray, ...], np.ndarray] | None:
    """``burn.Flat`` fields and shapely type ids of the geometries
    ``data[offsets[i]:offsets[i + 1]]`` (empty for a null one), or None when
    one is not WKB this reads."""
    return flat_of_wkb_pieces([(data, offsets)])


def flat_of_wkb_pieces(
    pieces: list[tuple[np.ndarray, np.ndarray]],
) -> tuple[tuple[np.ndarray, ...], np.ndarray] | None:
    """``flat_of_wkb`` of several (data, offsets) pieces, one after the other
    (the chunks of an Arrow column, read without joining them)."""
    pieces = [
        (np.ascontiguousarray(d, np.uint8), np.asarray(o, np.int64)) for d, o in pieces
    ]
    empty_out = (
        np.empty(0, np.int64),
        np.empty(0, np.int64),
        np.empty(0, np.int64),
        np.empty(0, np.int64),
        np.empty(0, np.uint8),
        np.empty(0, np.int8),
    )
    zero = (0, 0, 0, 0)

    def count(piece: tuple[np.ndarray, np.ndarray]) -> tuple:
        data, offsets = piece
        return _walk(data, offsets[:-1], offsets[1:], empty_out, False, zero)

    # the pieces are walked on all cores: the compiled walk holds no GIL
    with ThreadPoolExecutor(min(len(pieces), os.cpu_count() or 1) or 1) as pool:
        counted = list(pool.map(count, pieces))
        if not all(c[0] for c in counted):
            return None
        n = parts = paths = coords = 0
        bases = []
        for (_, offsets), (_, *counts) in zip(pieces, counted, strict=True):
            bases.append((n, parts, paths, coords))
            n += offsets.size - 1
            parts += counts[0]
            paths += counts[1]
            coords += counts[2]
        xy = np.empty((coords, 2))
        out = (
            np.empty(n + 1, np.int64),
            np.empty(parts, np.int64),
            np.empty(parts + 1, np.int64),
            np.empty(paths + 1, np.int64),
            xy.reshape(-1).view(np.uint8),
            np.empty(n, np.int8),
        )
        out[0][0] = out[2][0] = out[3][0] = 0

        def fill(piece: tuple[np.ndarray, np.ndarray], base: tuple) -> None:
            data, offsets = piece
            _walk(data, offsets[:-1], offsets[1:], out, True, base)

        list(pool.map(fill, pieces, bases))
    return (*out[:4], xy), out[5]


def wkb_buffers(geometries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The WKB of ``geometries`` as one buffer and its offsets (Arrow's
    layout: no Python object per geometry beyond shapely's own)."""
    import pyarrow as pa
    import shapely

    column = pa.array(shapely.to_wkb(geometries), type=pa.large_binary())
    return wkb_of_arrow(column)


def wkb_of_arrow(column: Any) -> tuple[np.ndarray, np.ndarray]:
    """(data, offsets) of an Arrow binary column (nulls are empty)."""
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return wkb_of_chunk(column)


def wkb_pieces(column: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """(data, offsets) of each chunk of an Arrow binary column, not joined."""
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        return [wkb_of_chunk(c) for c in column.chunks]
    return [wkb_of_chunk(column)]


def wkb_of_chunk(column: Any) -> tuple[np.ndarray, np.ndarray]:
    """(data, offsets) of one Arrow binary array."""
    import pyarrow as pa

    if isinstance(column.type, pa.ExtensionType):
        column = column.storage
    width = np.int32 if pa.types.is_binary(column.type) else np.int64
    if width is np.int64 and not pa.types.is_large_binary(column.type):
        column = column.cast(pa.large_binary())
    _, offset_buffer, data_buffer = column.buffers()
    offsets = np.frombuffer(offset_buffer, width)
    offsets = offsets[column.offset : column.offset + len(column) + 1]
    offsets = offsets.astype(np.int64)
    if data_buffer is None:
        return np.empty(0, np.uint8), offsets - offsets[0]
    return np.frombuffer(data_buffer, np.uint8), offsets
