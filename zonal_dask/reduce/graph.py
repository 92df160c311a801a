"""The one dask reduction every route computes through.

* chunk step: one task per raster chunk that holds zones, reading the block,
  making its labels from the label source and computing the partials
  (``partials.chunk_step``); a 2-D block's read is nested in that task
  (``BlockReads``), so a chunk costs the scheduler one task, not three; a
  block of several bands or time steps is read by a task of its own (its
  indexing nested in it) and shares its chunk's labels, made once;
* combine step: a tree of merge tasks with ``split_every`` inputs each, per
  band block for the moments and over everything for the classes;
* values: one task per group of nearby zones gathers their values from the
  chunks they touch and computes the ``values`` statistics
  (``finalize.values_step``), and on a float raster the ``classes``
  statistics too, when none has a column per class
  (``statistics.table.classes_by_group``);
* final steps: one task per band block makes its moments' columns
  (``finalize.block_table``: dense spreading and finalizing, so a batch of
  time steps finalizes each step while the next ones are computed), and one
  task puts them side by side with the classes' and values' columns
  (``finalize.table``); a label raster's rows, the values found in every
  block, are one task before them (``finalize.found_rows``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import dask.array as da
import numpy as np
from dask._task_spec import GraphNode, convert_legacy_graph
from dask.base import tokenize
from dask.core import iskey
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph

from ..labels.sources import Block, LabelSource
from ..statistics.fields import WEIGHTED_FIELDS, kernel_options
from ..statistics.table import Column, classes_by_group
from .finalize import Layout, block_table, found_rows, table, values_step
from .partials import (
    ChunkSpec,
    Needs,
    chunk_step,
    merge_classes,
    merge_moments,
    merge_weighted,
)

CHUNK = "zonal-chunk"


def zonal_graph(
    values: da.Array,
    source: LabelSource,
    columns: Sequence[Column],
    nodata: float | None,
    *,
    split_every: int = 8,
    plane_dim: str = "band",
    plane_coords: np.ndarray | None = None,
    wrap_chunk: Callable[[tuple, Any], Any] | None = None,
    weights: da.Array | None = None,
    default_value: float | None = None,
    grid: dict[str, Any] | None = None,
) -> Delayed:
    """The whole computation as one lazy object.

    Parameters
    ----------
    values
        The raster, 2-D ``(y, x)`` or 3-D ``(band or time, y, x)``, chunked
        as ``source``'s blocks.
    source
        Each chunk's labels and what is known of the zones.
    columns
        The output columns, in order.
    nodata
        The value to leave out (NaN always is).
    split_every
        Inputs of each merge task.
    plane_dim, plane_coords
        Name and coordinates of a 3-D raster's first dimension.
    wrap_chunk
        If given, maps each chunk task's key and task to the task to run
        instead (``checkpoint.Checkpoint.wrap`` loads or saves its result).
    weights
        A 2-D float64 weights array on the same grid and chunks (NaN where
        undefined): each chunk step gets its block.
    default_value
        The value that nodata and NaN pixels take instead of being left out.
    grid
        More ``finalize.Layout`` fields: the grid's ``transform`` and
        ``width``, the raster's ``dtype``.

    Returns
    -------
    dask.delayed.Delayed
        Computes to a ``pandas.DataFrame`` (2-D raster) or an
        ``xarray.Dataset`` with dimensions (zone, ``plane_dim``).
    """
    if split_every < 2:
        raise ValueError(f"split_every must be at least 2, got {split_every}")
    columns = list(columns)
    families = {c.statistic.family for c in columns}
    reads = {f for c in columns for f in c.statistic.reads}
    positions, higher = kernel_options(reads)
    by_group = classes_by_group(columns, values.dtype)
    needs = Needs(
        classes="classes" in families and not by_group,
        values="values" in families or by_group,
        weighted=bool(reads & set(WEIGHTED_FIELDS)),
        weighted_classes="weighted_classes" in reads,
        weighted_values="weighted_values" in reads,
        positions=positions,
        higher=higher,
    )
    if (
        needs.weighted or needs.weighted_classes or needs.weighted_values
    ) and weights is None:
        raise ValueError("weighted statistics need a weights array")
    # zones unknown before the labels are read (a label raster) are spread by
    # id over as many value groups as there are chunks
    n_groups = max(1, len(values.chunks[-2]) * len(values.chunks[-1]))
    plane_blocks = values.chunks[0] if values.ndim == 3 else (1,)
    if values.ndim == 3 and plane_coords is None:
        plane_coords = np.arange(1, values.shape[0] + 1)
    layout = Layout(
        columns=columns,
        index=source.index,
        fields=dict(source.fields),
        weighted=source.weighted,
        fallback=source.fallback,
        planes=None if plane_coords is None else (plane_dim, plane_coords),
        classes_by_group=by_group,
        **(grid or {}),
        unsigned=source.unsigned,
    )
    token = tokenize(
        values.name,
        source.token,
        nodata,
        [(c.name, c.statistic.identity) for c in columns],
        split_every,
        layout.planes,
        wrap_chunk,
        None if weights is None else weights.name,
        default_value,
        layout.transform,
    )
    dsk: dict = {}
    row_edges = np.cumsum((0, *values.chunks[-2]))
    col_edges = np.cumsum((0, *values.chunks[-1]))
    # a 2-D block's read is nested in its chunk task; a 3-D block's stays a
    # task of its own (nested, the series benchmark's 10 steps over 200,000
    # zones peaked 90 MB higher: 1.69 GB, 1.60 GB), its own steps (a cube's
    # indexing) nested in it: a task to schedule, not three
    block_reads = BlockReads(values)
    chunk_keys: dict[Block, list] = {}
    plane_keys: list[list] = [[] for _ in plane_blocks]
    for block, label_task in source.tasks.items():
        groups = source.block_groups(block, n_groups) if needs.values else None
        labels: Any = label_task  # 2-D: fused, the labels never leave the task
        if values.ndim == 3 and not iskey(label_task):  # the planes share them
            labels = (f"zonal-labels-{token}", *block)
            dsk[labels] = label_task
        chunk_keys[block] = []
        for b in range(len(plane_blocks)):
            where = (b, *block) if values.ndim == 3 else block
            key = (f"{CHUNK}-{token}", *where)
            spec = ChunkSpec(
                nodata,
                needs,
                groups,
                (sum(plane_blocks[:b]), sum(plane_blocks)),
                (int(row_edges[block[0]]), int(col_edges[block[1]]), values.shape[-1]),
                default_value,
            )
            block_weights = None if weights is None else (weights.name, *block)
            read: Any = (values.name, *where)
            if values.ndim == 2:
                read = block_reads.task(read)
            elif (fused := block_reads.task(read)) is not read:
                dsk[read] = fused
            dsk[key] = (chunk_step, read, labels, block_weights, spec)
            if wrap_chunk is not None:
                dsk[key] = wrap_chunk(where, dsk[key])
            chunk_keys[block].append(key)
            plane_keys[b].append(key)
    roots = [
        _tree(dsk, keys, merge_moments, f"zonal-merge-{b}-{token}", split_every)
        for b, keys in enumerate(plane_keys)
    ]
    # None when nothing is weighted; a plane without chunks has a None root
    weighted_roots = (
        [
            _tree(dsk, keys, merge_weighted, f"zonal-weighted-{b}-{token}", split_every)
            for b, keys in enumerate(plane_keys)
        ]
        if needs.weighted
        else None
    )
    all_keys = [k for keys in chunk_keys.values() for k in keys]
    classes = None
    if needs.classes:
        classes = _tree(
            dsk, all_keys, merge_classes, f"zonal-classes-{token}", split_every
        )
    # the layout (the zones' index among it) is one key every task reads,
    # not a copy in each task a cluster's scheduler sends
    layout_key = f"zonal-layout-{token}"
    dsk[layout_key] = layout
    group_keys = []
    if needs.values:
        touching: dict[int, list] = {}
        for block, keys in chunk_keys.items():
            groups = source.block_groups(block, n_groups)
            ids = np.unique(groups) if isinstance(groups, np.ndarray) else range(groups)
            for g in ids:
                touching.setdefault(int(g), []).extend(keys)
        for g, keys in sorted(touching.items()):
            key = (f"zonal-group-{token}", g)
            dsk[key] = (values_step, keys, g, layout_key)
            group_keys.append(key)
    found = None
    if layout.index is None:  # a label raster: its rows are the values found
        found = f"zonal-rows-{token}"
        dsk[found] = (found_rows, roots, layout_key)
    blocks = []
    for b, size in enumerate(plane_blocks):
        weighted_root = None if weighted_roots is None else weighted_roots[b]
        key = (f"zonal-block-{token}", b)
        dsk[key] = (block_table, roots[b], weighted_root, size, found, layout_key)
        blocks.append(key)
    final = f"zonal-stats-{token}"
    dsk[final] = (table, blocks, found, classes, group_keys, layout_key)
    inputs = [*([] if weights is None else [weights]), *source.dependencies]
    dsk.update(block_reads.shared)
    if block_reads.external:
        inputs.append(values)
    graph = HighLevelGraph.from_collections(final, dsk, dependencies=inputs)
    return Delayed(final, graph)


class BlockReads:
    """Each block of a dask array as one task to nest in its chunk task.

    A block's own tasks (the read of its window, a band picked from it) run
    inside the chunk task; tasks several blocks share (the array's opened
    file, a rechunk's source block) stay tasks of their own, in ``shared``.
    The graph then holds one task per chunk instead of three: 19,321 chunks
    of a 250-gigapixel raster are 19,321 tasks, not 57,963. Blocks the graph
    does not compute (a persisted array's, held by a cluster) stay references
    to their keys, and ``external`` says the array's graph is needed.
    """

    def __init__(self, array: da.Array) -> None:
        self._graph = convert_legacy_graph(dict(array.__dask_graph__()))
        self._dependents = Counter(
            d for node in self._graph.values() for d in node.dependencies
        )
        self.shared: dict = {}
        self.external = False

    def task(self, key: tuple) -> GraphNode | tuple:
        """The task computing block ``key``, with its own steps nested."""
        if key not in self._graph:
            self.external = True
            return key
        node = self._graph[key]
        own = {}
        for dep in node.dependencies:
            if isinstance(dep, tuple) and self._dependents[dep] == 1:
                own[dep] = self.task(dep)
            else:
                self._share(dep)
        return node.substitute(own) if own else node

    def _share(self, key: Any) -> None:
        if key not in self._graph:
            self.external = True
            return
        if key in self.shared:
            return
        node = self.shared[key] = self._graph[key]
        for dep in node.dependencies:
            self._share(dep)


def _tree(dsk: dict, keys: list, combine: Callable, name: str, split_every: int) -> Any:
    """Add a tree of ``combine`` tasks over ``keys``; return the root key."""
    if not keys:
        return None
    level, depth = list(keys), 0
    while len(level) > 1:
        groups = [level[i : i + split_every] for i in range(0, len(level), split_every)]
        level = []
        for g, group in enumerate(groups):
            dsk[(f"{name}-{depth}", g)] = (combine, group)
            level.append((f"{name}-{depth}", g))
        depth += 1
    if level[0] in keys:  # a single chunk: still combine it to its partial type
        dsk[(f"{name}-0", 0)] = (combine, level)
        level = [(f"{name}-0", 0)]
    return level[0]


def chunk_keys(lazy: Delayed) -> list[tuple]:
    """The chunk tasks' keys of a graph ``zonal_graph`` made:
    ``(zonal-chunk-<token>, [plane block,] row, col)``."""
    return [
        key
        for key in lazy.dask
        if isinstance(key, tuple) and str(key[0]).startswith(f"{CHUNK}-")
    ]
