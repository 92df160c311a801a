"""The coverage label source: polygons and lines as the cells they cover, each
claim weighted as exactextract's ``coverage_weight`` says (``coverage/``).

A chunk's claims are all sparse (no label plane), each with its weight; with
``group_by`` the fractions of a zone's parts are added per cell before the
rule. A chunk under zones many deep comes in pieces of a few zones each
(``CoveragePieces``), made one at a time as the chunk step reaches them, so
that its memory is bounded by the chunk, not by the zones' depth. The rest is
a ``LabelSource`` like any other (``labels/sources.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely
from dask.base import tokenize

from ..coverage.weights import CoverageRule, coverage_fractions, pooled_limit
from .chunk_tasks import ChunkTask, tasks_token
from .groups import pool_claims
from .sources import FRACTION, ChunkLabels, LabelSource, shard_collections, zones_of


def coverage_source(
    tasks: Sequence[ChunkTask],
    index: pd.Index,
    rule: CoverageRule = FRACTION,
    *,
    groups: np.ndarray | None = None,
    fields: Mapping[str, np.ndarray] | None = None,
    zone_of: np.ndarray | None = None,
) -> LabelSource:
    """Polygons as the cells they cover, each weighted by ``rule`` (the
    fraction it covers, by default); with ``zone_of``, parts of zones whose
    fractions are added per cell before the rule."""
    return LabelSource(
        tasks={
            t.block: (
                coverage_labels,
                t.dask_task(),
                rule,
                None if zone_of is None else zone_of[t.zones],
            )
            for t in tasks
        },
        zones={t.block: zones_of(t, zone_of) for t in tasks},
        index=index,
        token=tokenize(tasks_token(tasks), "coverage", rule, zone_of),
        groups=groups,
        fields=dict(fields or {}),
        dependencies=shard_collections(tasks),
        weighted=True,
    )


def coverage_labels(
    task: ChunkTask,
    rule: CoverageRule = FRACTION,
    zone_of_part: np.ndarray | None = None,
) -> ChunkLabels | CoveragePieces:
    """A chunk's coverage claims as ``ChunkLabels``: no layer, all sparse,
    each weighted by ``rule`` (a line's cells by its length in each); or,
    when its zones may claim more than ``claims_budget`` (zones over one
    another), ``CoveragePieces``."""
    task = task.with_zones()
    members = piece_members(task, zone_of_part)
    if len(members) == 1:
        return coverage_piece(task, rule, zone_of_part, None)
    return CoveragePieces(task, rule, zone_of_part, tuple(members))


@dataclass(frozen=True)
class CoveragePieces:
    """A chunk whose zones, over one another, may claim more cells than
    ``claims_budget`` at once: its claims in pieces of a few zones each,
    computed only when iteration reaches them, so that one piece at a time is
    in memory. Every piece has the chunk's zones; a zone's claims (all its
    parts', under ``group_by``) are all in one piece, in the order one piece
    would give them, so the statistics are the same bits."""

    task: ChunkTask
    rule: CoverageRule
    zone_of_part: np.ndarray | None
    members: tuple[np.ndarray, ...]

    def __iter__(self) -> Iterator[ChunkLabels]:
        for members in self.members:
            yield coverage_piece(self.task, self.rule, self.zone_of_part, members)


def coverage_piece(
    task: ChunkTask,
    rule: CoverageRule,
    zone_of_part: np.ndarray | None,
    members: np.ndarray | None,
) -> ChunkLabels:
    """The claims of the chunk's parts ``members`` (local indices; None: all)."""
    geometries = task.geometries if members is None else task.geometries[members]
    pixels, owners, fractions = coverage_fractions(
        geometries,
        task.offset,
        task.shape,
        task.orientation,
        task.raster_shape,
        rule.cell_size,
    )
    if members is not None:
        owners = members.astype(np.int32)[owners]
    zones = task.zones
    if zone_of_part is not None:
        zones, local = np.unique(zone_of_part, return_inverse=True)
        limit = pooled_limit(task.geometries, local, zones.size)
        pixels, owners, pooled = pool_claims(pixels, owners, fractions, local, limit)
        fractions = pooled if pooled is not None else fractions
    rows = pixels // task.shape[1] + task.offset[0] if rule.spherical else None
    keep, weights = rule.weights(fractions, rows)
    del fractions, rows
    if keep is not None:
        pixels, owners = pixels[keep], owners[keep]
    elif not pixels.flags.owndata:
        # the kernel's output, a view of a buffer sized for every cell of the
        # zones' windows: kept labels (a persisted source) hold the claims only
        pixels = pixels.copy()
    empty = np.empty((0, *task.shape), np.int32)
    return ChunkLabels(empty, pixels, owners, zones, weights)


def piece_members(task: ChunkTask, zone_of_part: np.ndarray | None) -> list[np.ndarray]:
    """The chunk's parts (local indices) cut into pieces of at most
    ``claims_budget`` claims (as ``claims_bound`` bounds them), or of one
    zone. Under ``group_by`` a zone's parts stay together, in their order;
    one piece: ``[all]``."""
    bound = claims_bound(task)
    budget = claims_budget(task.shape)
    if bound.sum() <= budget:
        return [np.arange(bound.size)]
    if zone_of_part is None:
        order, unit = np.arange(bound.size), np.arange(bound.size)
    else:
        order = np.argsort(zone_of_part, kind="stable")
        unit = np.unique(zone_of_part[order], return_inverse=True)[1]
    # each zone's claims, then greedy pieces of whole zones
    per_zone = np.bincount(unit, weights=bound[order])
    cuts, total = [0], 0.0
    for zone, claims in enumerate(per_zone.tolist()):
        if total + claims > budget and zone > cuts[-1]:
            cuts.append(zone)
            total = 0.0
        total += claims
    starts = np.searchsorted(unit, cuts)
    return np.split(order, starts[1:])


def claims_budget(shape: tuple[int, int]) -> int:
    """Claims a piece of a chunk may hold: two a pixel. Adjacent zones claim
    about 1.2 a pixel (their edges' cells twice), which ``claims_bound``
    puts at about 1.4: one piece, as before pieces; a piece's claims weigh
    about 44 bytes each until they are weights, some 90 bytes a pixel."""
    return max(4096, 2 * shape[0] * shape[1])


def claims_bound(task: ChunkTask) -> np.ndarray:
    """About the most cells of the chunk each part can claim: the cells of its
    bounding box inside the chunk, or its area and the cells its boundary
    can cross (a segment crosses at most its length times sqrt(2), plus one),
    whichever is fewer."""
    geometries = task.geometries
    bounds = shapely.bounds(geometries)
    flip_x, flip_y = task.orientation
    cols = np.sort(flip_x * bounds[:, [0, 2]], axis=1)
    rows = np.sort(flip_y * bounds[:, [1, 3]], axis=1)
    (r, c), (h, w) = task.offset, task.shape
    with np.errstate(invalid="ignore"):  # empty geometries: NaN bounds
        height = np.minimum(np.ceil(rows[:, 1]), r + h) - np.maximum(
            np.floor(rows[:, 0]), r
        )
        width = np.minimum(np.ceil(cols[:, 1]), c + w) - np.maximum(
            np.floor(cols[:, 0]), c
        )
    window = np.nan_to_num(np.clip(height, 0, None) * np.clip(width, 0, None))
    # the parts' vertices stand for their segments' "plus one"
    crossed = np.sqrt(2) * shapely.length(geometries)
    crossed += shapely.get_num_coordinates(geometries)
    return np.minimum(window, shapely.area(geometries) + crossed)
