"""Zones shipped once: the planned zones in shards, chunk tasks as ranges into them.

A chunk task used to carry its own copy of its zones' geometry, so a graph
shipped every zone once per chunk it meets (1.49 x the layer's WKB for the
246-gigapixel plan) and the scheduler unpickled all of it. Here the zones a
plan uses are put in the order of the first chunk each meets and cut into
shards of about ``SHARD_COORDINATES`` vertices; each shard is one data key of
the graph (``ZoneShards.collection``), and a chunk's task names the shards it
needs and ranges of positions in them (``Selection``). A chunk's zones are
mostly one range of one shard; a zone straddling chunks is stored once, in
the shard of the first chunk it meets. On a cluster each shard then travels
to the workers whose chunks need it, and the graph holds each zone once.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph

from ..zones.arrays import ZoneArrays, _narrow, _ranges

# vertices per shard: about 8 MB of coordinates, a few shards per worker
SHARD_COORDINATES = 2**19


@dataclass(frozen=True, eq=False)
class ZoneShard:
    """Some zones: their global indices, arrays and overlap layers."""

    ids: np.ndarray
    arrays: ZoneArrays
    layers: np.ndarray | None

    def __reduce__(self) -> tuple:
        return (_shard, (_narrow(self.ids), self.arrays, self.layers))


def _shard(ids: tuple[str, bytes], arrays: ZoneArrays, layers: Any) -> ZoneShard:
    dtype, data = ids
    return ZoneShard(np.frombuffer(data, dtype).astype(np.int64), arrays, layers)


@dataclass(frozen=True, eq=False)
class Selection:
    """A chunk's zones in the shards: the shards ``used`` (numbers in
    ``shards``) and ``ranges``, int32 rows (shard's place in ``used``, first
    position, end position) as bytes."""

    shards: ZoneShards
    used: tuple[int, ...]
    ranges: bytes


class ZoneShards:
    """The zones a plan uses, in shards, each one key of the graph."""

    def __init__(
        self, shards: list[ZoneShard], rank: np.ndarray, starts: np.ndarray, token: str
    ) -> None:
        self.shards = shards
        self.rank = rank  # each zone's position in shard order (-1: unused)
        self.starts = starts  # the first position of each shard
        self.token = token
        self.name = f"zonal-zones-{token}"

    def key(self, shard: int) -> tuple[str, int]:
        return (self.name, shard)

    @classmethod
    def of(
        cls,
        zones: ZoneArrays,
        chunk_index: np.ndarray,
        zone_index: np.ndarray,
        layers: np.ndarray | None = None,
    ) -> ZoneShards:
        """Shards of the zones of (chunk, zone) pairs sorted by chunk, then zone."""
        used, first = np.unique(zone_index, return_index=True)
        order = used[np.lexsort((used, chunk_index[first]))]
        flat = zones.flat
        vertices = np.diff(flat.path_coords[flat.part_paths[flat.zone_parts]])
        cumulative = np.cumsum(vertices[order]) - vertices[order]
        shard_of = cumulative // SHARD_COORDINATES
        starts = np.flatnonzero(np.diff(shard_of, prepend=-1)).astype(np.int64)
        rank = np.full(len(zones), -1, np.int64)
        rank[order] = np.arange(order.size)
        pieces = np.split(order, starts[1:])
        # the gathers (compiled) and the digest (hashlib) hold no GIL: on
        # every core at once
        with ThreadPoolExecutor(min(len(pieces), os.cpu_count() or 1) or 1) as pool:
            whole = pool.submit(zones.digest)
            taken = list(pool.map(zones.take, pieces))
            token = whole.result()
        shards = [
            ZoneShard(
                ids,
                arrays,
                None if layers is None else np.asarray(layers)[ids].astype(np.int64),
            )
            for ids, arrays in zip(pieces, taken, strict=True)
        ]
        digest = hashlib.sha1(token.encode())
        digest.update(order.tobytes())
        digest.update(starts.tobytes())
        if layers is not None:
            digest.update(np.asarray(layers, np.int64).tobytes())
        return cls(shards, rank, starts, digest.hexdigest())

    def selections(
        self, chunk_index: np.ndarray, zone_index: np.ndarray
    ) -> list[Selection]:
        """Each chunk's ``Selection``, in the order of the chunks (pairs sorted
        by chunk): runs of consecutive positions in one shard."""
        rank = self.rank[zone_index]
        shard = np.searchsorted(self.starts, rank, "right") - 1
        position = rank - self.starts[shard]
        order = np.lexsort((position, shard, chunk_index))
        chunk, shard, position = chunk_index[order], shard[order], position[order]
        new = np.ones(chunk.size, bool)
        new[1:] = (
            (chunk[1:] != chunk[:-1])
            | (shard[1:] != shard[:-1])
            | (position[1:] != position[:-1] + 1)
        )
        first = np.flatnonzero(new)
        last = np.append(first[1:], chunk.size) - 1
        run_chunk, run_shard = chunk[first], shard[first]
        runs = np.column_stack((run_shard, position[first], position[last] + 1)).astype(
            np.int64
        )
        by_chunk = np.flatnonzero(np.diff(run_chunk, prepend=-1))
        selections = []
        for rows in np.split(runs, by_chunk[1:]):
            used = np.unique(rows[:, 0])
            local = rows.copy()
            local[:, 0] = np.searchsorted(used, rows[:, 0])
            selections.append(
                Selection(self, tuple(used.tolist()), local.astype(np.int32).tobytes())
            )
        return selections

    @staticmethod
    def gather(
        ranges: bytes, shards: list[ZoneShard]
    ) -> tuple[np.ndarray, ZoneArrays, np.ndarray | None]:
        """The zones ``ranges`` name in ``shards``: their global indices
        (ascending), arrays and layers."""
        rows = np.frombuffer(ranges, np.int32).reshape(-1, 3).astype(np.int64)
        ids, arrays, layers = [], [], []
        for k, shard in enumerate(shards):
            mine = rows[rows[:, 0] == k]
            positions = _ranges(mine[:, 1], mine[:, 2])
            ids.append(shard.ids[positions])
            arrays.append(shard.arrays.take(positions))
            if shard.layers is not None:
                layers.append(shard.layers[positions])
        zones = np.concatenate(ids)
        order = np.argsort(zones, kind="stable")
        joined = ZoneArrays.concat(arrays).take(order)
        return zones[order], joined, np.concatenate(layers)[order] if layers else None

    def collection(self) -> Delayed:
        """The shards as data keys of a graph, for a ``LabelSource``'s
        dependencies (a graph built on it then holds each zone once)."""
        dsk = {self.key(s): shard for s, shard in enumerate(self.shards)}
        graph = HighLevelGraph.from_collections(self.name, dsk, dependencies=[])
        return Delayed(self.key(0), graph, layer=self.name)
