"""Zones as flat arrays in the raster's pixel space: what the burner reads.

A million zones as shapely objects cost seconds whenever Python touches them
one by one (moving them to pixel space object by object took 3.7 s of a
12.7 s plan). ``ZoneArrays`` holds every zone's coordinates in one array and
its parts, rings and lines as offsets into it (``burn.Flat``): moving zones to
pixel space is one affine on that array (``burn.pixel_xy``), a chunk's zones
are a gather (``take``), a digest is a hash of a few buffers, and a set of
zones pickles as a few raw buffers, smaller than their WKB. Shapely objects
are made again (``geometries``) only where a stage needs them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import shapely
from affine import Affine

from ..burn.prepare import LINE, POINT, POLYGON
from ..burn.rules import Flat, flatten, pixel_xy
from .bounds import zone_bounds
from .gather import take_flat
from .wkb import flat_of_wkb, wkb_buffers

# shapely's type ids of the zones ``geometries`` makes
_SINGLE = (0, 1, 3)
_MULTI = {4: shapely.multipoints, 5: shapely.multilinestrings, 6: shapely.multipolygons}
_LINES = (1, 5)


@dataclass(frozen=True, eq=False)
class ZoneArrays:
    """Zones as ``burn.Flat`` arrays and each zone's shapely type id.

    ``types[z]`` is -1 for a zone without parts (None or empty).
    """

    flat: Flat
    types: np.ndarray

    def __len__(self) -> int:
        return len(self.types)

    @classmethod
    def of(
        cls,
        geometries: np.ndarray,
        transform: Affine | None = None,
        wkb: tuple[np.ndarray, np.ndarray] | None = None,
        read: np.ndarray | None = None,
    ) -> ZoneArrays:
        """The zones ``geometries``, moved to ``transform``'s oriented pixel
        space on the way (GDAL's arithmetic, ``burn.to_pixel_space``'s) unless
        it is None (``geometries`` are in pixel space already).

        They are flattened from their WKB (``zones.wkb``). ``wkb`` is that of
        ``read``, the geometries as read (their buffer and offsets, as Arrow
        held them): a zone that is still the object read is flattened from it,
        the others (repaired, reprojected) from their own WKB.
        """
        geometries = np.asarray(geometries, dtype=object)
        if wkb is not None and read is not None and len(read) == len(geometries):
            arrays = cls._parsed(wkb, read)
            changed = np.flatnonzero(~_same_objects(geometries, read))
            if changed.size:
                fresh = geometries[changed]
                source = np.arange(len(geometries))
                source[changed] = len(geometries) + np.arange(changed.size)
                fresh_arrays = cls._parsed(wkb_buffers(fresh), fresh)
                arrays = cls.concat([arrays, fresh_arrays]).take(source)
        else:
            arrays = cls._parsed(wkb_buffers(geometries), geometries)
        if transform is not None:
            pixel_xy(arrays.flat.xy, transform)
        return arrays

    @classmethod
    def _parsed(
        cls, wkb: tuple[np.ndarray, np.ndarray], geometries: np.ndarray
    ) -> ZoneArrays:
        parsed = flat_of_wkb(*wkb)
        if parsed is not None:
            return cls(Flat(*parsed[0]), parsed[1])
        flat = flatten(geometries)  # WKB zones.wkb does not read: shapely's way
        types = shapely.get_type_id(geometries).astype(np.int8)
        types[np.diff(flat.zone_parts) == 0] = -1
        return cls(flat, types)

    @classmethod
    def empty(cls) -> ZoneArrays:
        return cls.of(np.empty(0, object))

    def take(self, zones: np.ndarray) -> ZoneArrays:
        """Zones ``zones`` (positions), in that order."""
        zones = np.asarray(zones, np.int64)
        n = len(self)
        if zones.size and (zones.min() < -n or zones.max() >= n):
            raise IndexError(f"zone positions beyond {n} zones")
        zones = np.where(zones < 0, zones + n, zones)  # as NumPy indexes
        flat = Flat(*take_flat(*self.flat, zones))
        return ZoneArrays(flat, self.types[zones])

    @staticmethod
    def concat(pieces: list[ZoneArrays]) -> ZoneArrays:
        """The zones of ``pieces``, one after the other."""
        if len(pieces) == 1:
            return pieces[0]
        counts = [p._counts() for p in pieces]
        flat = Flat(
            _starts(np.concatenate([c[0] for c in counts])),
            np.concatenate([c[1] for c in counts]),
            _starts(np.concatenate([c[2] for c in counts])),
            _starts(np.concatenate([c[3] for c in counts])),
            np.concatenate([p.flat.xy for p in pieces]).reshape(-1, 2),
        )
        return ZoneArrays(flat, np.concatenate([p.types for p in pieces]))

    def _counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        f = self.flat
        return (
            np.diff(f.zone_parts),
            f.part_kind,
            np.diff(f.part_paths),
            np.diff(f.path_coords),
        )

    def lines(self) -> np.ndarray:
        """Whether each zone is a (Multi)LineString."""
        return np.isin(self.types, _LINES)

    def bounds(self) -> np.ndarray:
        """(n, 4) min x, min y, max x, max y of each zone (NaN without parts;
        read-only: made once, the coordinates being fixed by then)."""
        return self._bounds

    @cached_property
    def _bounds(self) -> np.ndarray:
        f = self.flat
        out = zone_bounds(f.zone_parts, f.part_paths, f.path_coords, f.xy)
        out.flags.writeable = False
        return out

    def digest(self) -> str:
        """A hash of every array: equal for equal zones, in any process."""
        digest = hashlib.sha1()
        for array in (self.types, *self.flat):
            digest.update(np.ascontiguousarray(array).data)
            digest.update(str(array.shape).encode())
        return digest.hexdigest()

    def geometries(self) -> np.ndarray:
        """The zones as shapely geometries (None for a zone without parts)."""
        f = self.flat
        n, n_parts, n_paths = len(self), len(f.part_kind), len(f.path_coords) - 1
        zone_of_part = np.repeat(np.arange(n), np.diff(f.zone_parts))
        part_of_path = np.repeat(np.arange(n_parts), np.diff(f.part_paths))
        path_of_coord = np.repeat(np.arange(n_paths), np.diff(f.path_coords))
        parts = np.full(n_parts, None, object)
        for kind in (POLYGON, LINE, POINT):
            chosen = f.part_kind == kind
            if not chosen.any():
                continue
            paths = chosen[part_of_path]
            coords = paths[path_of_coord]
            xy, path = f.xy[coords], _rank(path_of_coord[coords])
            if kind == POLYGON:
                rings = shapely.linearrings(xy, indices=path)
                made = shapely.polygons(rings, indices=_rank(part_of_path[paths]))
            elif kind == LINE:
                made = shapely.linestrings(xy, indices=path)
            else:
                made = shapely.points(xy)
            parts[chosen] = made
        out = np.full(n, None, object)
        single = np.flatnonzero(np.isin(self.types, _SINGLE))
        out[single] = parts[f.zone_parts[single]]
        for type_id, make in _MULTI.items():
            zones = np.flatnonzero(self.types == type_id)
            if zones.size:
                chosen = np.isin(zone_of_part, zones)
                out[zones] = make(parts[chosen], indices=_rank(zone_of_part[chosen]))
        return out

    def __reduce__(self) -> tuple:
        # counts in the narrowest integer type that holds them, coordinates as
        # raw float64 without each ring's closing vertex (the same bits as its
        # first): a small polygon weighs less than its WKB
        counts = self._counts()
        closed = _closed_rings(self.flat)
        coords = counts[3] - closed if closed is not None else counts[3]
        packed = [_narrow(c) for c in (counts[0], counts[2], coords)]
        kinds = counts[1].astype(np.int8)
        xy = self.flat.xy
        if closed is not None:
            xy = np.delete(xy, self.flat.path_coords[1:][closed] - 1, axis=0)
        return (
            _unpack,
            (
                packed,
                kinds.tobytes(),
                self.types.tobytes(),
                _bytes(xy),
                closed is not None,
            ),
        )


def _same_objects(a: np.ndarray, b: np.ndarray) -> bool | np.ndarray:
    """Whether each element of ``a`` is the very object in ``b`` (by id, in C:
    no Python code runs per element)."""
    n = len(a)
    return np.fromiter(map(id, a), np.intp, n) == np.fromiter(map(id, b), np.intp, n)


def _bytes(xy: np.ndarray) -> bytes:
    return np.ascontiguousarray(xy, np.float64).tobytes()


def _rings(kinds: np.ndarray, part_paths: np.ndarray) -> np.ndarray:
    """Whether each path is a polygon's ring."""
    part_of_path = np.repeat(np.arange(kinds.size), np.diff(part_paths))
    return kinds[part_of_path] == POLYGON


def _closed_rings(flat: Flat) -> np.ndarray | None:
    """The rings (paths) whose closing vertex is dropped when pickled: every
    non-empty ring, when each has at least two vertices and ends on the very
    bits it starts with (as GEOS keeps them); else None (nothing dropped)."""
    rings = _rings(flat.part_kind, flat.part_paths)
    n = np.diff(flat.path_coords)
    closed = rings & (n > 0)
    if (n[closed] < 2).any():
        return None
    bits = flat.xy.view(np.uint64)
    first, last = flat.path_coords[:-1][closed], flat.path_coords[1:][closed] - 1
    if not np.array_equal(bits[first], bits[last]):
        return None
    return closed


def _unpack(
    packed: list[tuple[str, bytes]],
    kinds: bytes,
    types: bytes,
    xy: bytes,
    closed: bool,
) -> ZoneArrays:
    zone_parts, part_paths, path_coords = (
        _starts(np.frombuffer(data, dtype)) for dtype, data in packed
    )
    part_kind = np.frombuffer(kinds, np.int8).astype(np.int64)
    points = np.frombuffer(xy, np.float64).reshape(-1, 2)
    if closed:  # put each ring's closing vertex back: its first vertex again
        counts = np.diff(path_coords)
        ring = _rings(part_kind, part_paths) & (counts > 0)
        full = _starts(counts + ring)
        out = np.empty((int(full[-1]), 2))
        path_of = np.repeat(np.arange(counts.size), counts)
        out[np.arange(len(points)) + (full[:-1] - path_coords[:-1])[path_of]] = points
        out[full[1:][ring] - 1] = out[full[:-1][ring]]
        points, path_coords = out, full
    flat = Flat(zone_parts, part_kind, part_paths, path_coords, points.copy())
    return ZoneArrays(flat, np.frombuffer(types, np.int8).copy())


def _narrow(counts: np.ndarray) -> tuple[str, bytes]:
    top = int(counts.max()) if counts.size else 0
    dtype = next(t for t in ("u1", "u2", "u4", "u8") if top <= np.iinfo(t).max)
    return dtype, counts.astype(dtype).tobytes()


def _starts(counts: np.ndarray) -> np.ndarray:
    out = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def _ranges(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """The positions ``starts[i]:stops[i]`` for every i, concatenated."""
    counts = stops - starts
    before = np.cumsum(counts) - counts
    return np.repeat(starts - before, counts) + np.arange(int(counts.sum()))


def _rank(sorted_ids: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... for each run of equal values of a sorted array."""
    if sorted_ids.size == 0:
        return sorted_ids
    return np.concatenate([[0], np.cumsum(np.diff(sorted_ids) != 0)])
