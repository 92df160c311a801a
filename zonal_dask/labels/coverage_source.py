"""The coverage label source: polygons and lines as the cells they cover, each
claim weighted as exactextract's ``coverage_weight`` says (``coverage/``).

A chunk's claims are all sparse (no label plane), each with its weight; with
``group_by`` the fractions of a zone's parts are added per cell before the
rule. The rest is a ``LabelSource`` like any other (``labels/sources.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
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
) -> ChunkLabels:
    """A chunk's coverage claims as ``ChunkLabels``: no layer, all sparse,
    each weighted by ``rule`` (a line's cells by its length in each)."""
    task = task.with_zones()
    pixels, owners, fractions = coverage_fractions(
        task.geometries,
        task.offset,
        task.shape,
        task.orientation,
        task.raster_shape,
        rule.cell_size,
    )
    zones = task.zones
    if zone_of_part is not None:
        zones, local = np.unique(zone_of_part, return_inverse=True)
        limit = pooled_limit(task.geometries, local, zones.size)
        pixels, owners, pooled = pool_claims(pixels, owners, fractions, local, limit)
        fractions = pooled if pooled is not None else fractions
    keep, weights = rule.weights(fractions, pixels // task.shape[1] + task.offset[0])
    empty = np.empty((0, *task.shape), np.int32)
    return ChunkLabels(empty, pixels[keep], owners[keep], zones, weights)
