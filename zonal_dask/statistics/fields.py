"""The fields statistics read, declared once.

Two levels:

* ``PARTIAL_FIELDS``: what the chunk step's compiled pass
  (``reduce/moment_kernel.py``) says about each zone present in a chunk, in
  the order of its columns. Each field has a name, the value an absent zone
  holds (``fill``), a dtype and the ``merge`` that combines the field of
  several parts of one zone (``reduce/moment_merge.py`` implements each
  kind once). A checkpoint's format is derived from them (``layout_digest``).
* ``READS``: the names a statistic of ``statistics/table.py`` may read:
  the dense fields ``reduce/moments.dense_moments`` derives from the partial
  fields (each with the partial fields it needs), the same weighted by a
  weights raster, the centres of the extreme cells, zone fields, and the
  ``classes`` and ``values`` families. ``check_reads`` refuses any other
  name, when the table is imported.

Adding a streaming statistic: the kernel update (its column in
``moment_kernel.COLUMNS``), its partial field here (with a merge kind, new or
existing), the dense field it gives, and the table entry that reads it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

MERGES = ("add", "compensated", "carry", "reference", "central", "min", "max", "first")


@dataclass(frozen=True)
class PartialField:
    """One field of the moments' partials, per zone.

    ``merge`` is one of ``MERGES``: ``add`` (weights), ``compensated`` and
    ``carry`` (a Neumaier sum and the rounding error it carries),
    ``reference`` (the shift the central moments are taken around: the first
    part's), ``central`` (the weighted mean of ``value - shift`` for
    ``order`` 1, the weighted sum of ``order``-th powers of deviations from
    it for 2 and more: merged by the binomial translation, Pébay's pairwise
    formulas over any number of parts), ``min``, ``max``, ``first`` (the
    first grid position holding the extreme field ``of``).
    """

    name: str
    merge: str
    fill: float
    doc: str
    dtype: str = "float64"
    order: int = 0
    of: str = ""


PARTIAL_FIELDS: tuple[PartialField, ...] = (
    PartialField("weight", "add", 0.0, "weight (pixels) of the finite values"),
    PartialField("posinf", "add", 0.0, "weight of the +inf values"),
    PartialField("neginf", "add", 0.0, "weight of the -inf values"),
    PartialField("nan", "add", 0.0, "weight of pixels counted as NaN values"),
    PartialField("nodata", "add", 0.0, "weight of the nodata and NaN pixels"),
    PartialField("undefined", "add", 0.0, "weight of valid pixels of no weight"),
    PartialField("sum", "compensated", 0.0, "weighted sum of the finite values"),
    PartialField("carry", "carry", 0.0, "the rounding error ``sum`` misses"),
    PartialField("shift", "reference", 0.0, "one finite value of the zone"),
    PartialField("mean", "central", 0.0, "weighted mean of value - shift", order=1),
    PartialField("m2", "central", 0.0, "sum of w (value - mean)**2", order=2),
    PartialField("m3", "central", 0.0, "sum of w (value - mean)**3", order=3),
    PartialField("m4", "central", 0.0, "sum of w (value - mean)**4", order=4),
    PartialField("min", "min", float("inf"), "smallest valid value"),
    PartialField("max", "max", float("-inf"), "largest valid value"),
    PartialField("min_at", "first", -1.0, "grid position of the min", of="min"),
    PartialField("max_at", "first", -1.0, "grid position of the max", of="max"),
)
INDEX: dict[str, int] = {f.name: i for i, f in enumerate(PARTIAL_FIELDS)}

# dense field -> the partial fields it is derived from
_COUNTS = ("weight", "posinf", "neginf", "nan")
DENSE_FIELDS: dict[str, tuple[str, ...]] = {
    "count": _COUNTS,
    "nodata": ("nodata",),
    "sum": (*_COUNTS, "sum", "carry"),
    "mean": (*_COUNTS, "sum", "carry", "shift", "mean"),
    "variance": (*_COUNTS, "m2"),
    "moment3": (*_COUNTS, "m3"),
    "moment4": (*_COUNTS, "m4"),
    "min": ("min",),
    "max": ("max",),
    "undefined": ("undefined",),
    "min_at": ("min", "min_at"),
    "max_at": ("max", "max_at"),
}
CENTRE_FIELDS: dict[str, str] = {
    "min_center_x": "min_at",
    "min_center_y": "min_at",
    "max_center_x": "max_at",
    "max_center_y": "max_at",
}
WEIGHTED_FIELDS: dict[str, str] = {
    "weighted_count": "count",
    "weighted_sum": "sum",
    "weighted_mean": "mean",
    "weighted_variance": "variance",
}
ZONE_FIELDS = ("outside",)
FAMILIES = ("classes", "weighted_classes", "values", "weighted_values")
READS = frozenset(
    [*DENSE_FIELDS, *CENTRE_FIELDS, *WEIGHTED_FIELDS, *ZONE_FIELDS, *FAMILIES]
)


def check_registry() -> None:
    """Refuse a registry whose fields do not hold together."""
    for f in PARTIAL_FIELDS:
        if f.merge not in MERGES:
            raise ValueError(f"partial field {f.name!r}: unknown merge {f.merge!r}")
        if f.merge == "first" and f.of not in INDEX:
            raise ValueError(f"partial field {f.name!r}: unknown extreme {f.of!r}")
    for name, needs in DENSE_FIELDS.items():
        unknown = [n for n in needs if n not in INDEX]
        if unknown:
            raise ValueError(f"dense field {name!r} reads unknown {unknown}")
    orders = sorted(f.order for f in PARTIAL_FIELDS if f.merge == "central")
    if orders != list(range(1, len(orders) + 1)):
        raise ValueError(f"central moments must be of orders 1, 2, ...: {orders}")


def check_reads(statistic: str, reads: Iterable[str]) -> None:
    """Refuse a statistic that reads a field nobody computes (a typo)."""
    unknown = sorted(set(reads) - READS)
    if unknown:
        raise ValueError(
            f"statistic {statistic!r} reads unknown field(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(READS))}"
        )


def kernel_options(reads: Iterable[str]) -> tuple[bool, bool]:
    """Whether the chunk step must track the extremes' positions, and the
    third and fourth central moments, for statistics reading ``reads``."""
    reads = set(reads)
    dense = {WEIGHTED_FIELDS.get(r, r) for r in reads}
    dense |= {CENTRE_FIELDS[r] for r in reads if r in CENTRE_FIELDS}
    needed = {p for d in dense if d in DENSE_FIELDS for p in DENSE_FIELDS[d]}
    return bool(needed & {"min_at", "max_at"}), bool(needed & {"m3", "m4"})


def layout_digest(fields: Iterable[PartialField] = PARTIAL_FIELDS, *more: str) -> str:
    """A short digest of the partials' layout: a checkpoint's format."""
    described = [(f.name, f.merge, f.fill, f.dtype, f.order, f.of) for f in fields]
    text = json.dumps([described, list(more)], default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


check_registry()
