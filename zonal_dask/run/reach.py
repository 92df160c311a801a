"""The locations a run's workers must see: what they read, where they write."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..io.location import Location, locate


@dataclass(frozen=True)
class Reach:
    """Locations the workers of a run must see: inputs they read, and
    directories they write into (which the client reads back)."""

    reads: tuple[Location, ...] = ()
    writes: tuple[Location, ...] = ()

    @classmethod
    def of(cls, reads: Iterable[Any] = (), writes: Iterable[Any] = ()) -> Reach:
        """Keep the paths and URLs (DataArrays, frames and None are skipped)."""

        def located(items: Iterable[Any]) -> tuple[Location, ...]:
            return tuple(
                locate(i) for i in items if isinstance(i, (str, os.PathLike, Location))
            )

        return cls(located(reads), located(writes))
