"""A bar counting time steps on standard error, for ``zonal_series``.

Locally it moves as the chunk tasks of a batch finish (a dask callback); on a
``distributed.Client`` it moves a batch at a time.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from . import cluster
from .graph import CHUNK


def is_chunk(key: Any) -> bool:
    """Whether ``key`` names a chunk task of ``graph.zonal_graph``."""
    return isinstance(key, tuple) and str(key[0]).startswith(f"{CHUNK}-")


class Bar:
    """Steps done out of ``total`` on standard error, updated as chunks finish."""

    def __init__(self, total: int, show: bool) -> None:
        self.total, self.show, self.done = total, show, 0.0
        self.shown = (-1, -1)
        self.started = time.perf_counter()

    def note(self, text: str) -> None:
        if self.show:
            print(f"\r{text}".ljust(60), file=sys.stderr, flush=True)
            self.shown = (-1, -1)

    def draw(self) -> None:
        width = 30
        filled = int(width * self.done / self.total) if self.total else 0
        if not self.show or not self.total or (filled, int(self.done)) == self.shown:
            return
        self.shown = (filled, int(self.done))
        elapsed = time.perf_counter() - self.started
        text = (
            f"\rsteps {int(self.done):>{len(str(self.total))}}/{self.total} "
            f"[{'#' * filled}{' ' * (width - filled)}] {elapsed:6.1f} s"
        )
        print(text, end="", file=sys.stderr, flush=True)

    @contextmanager
    def batch(self, steps: int, chunks: int) -> Iterator[None]:
        base = self.done
        callback = None
        if self.show and chunks and cluster.active_client() is None:
            from dask.callbacks import Callback

            finished = [0]

            def posttask(key: Any, *args: Any) -> None:
                if is_chunk(key):
                    finished[0] += 1
                    self.done = base + steps * finished[0] / chunks
                    self.draw()

            callback = Callback(posttask=posttask)
        if callback is None:
            yield
        else:
            with callback:
                yield
        self.done = base + steps
        self.draw()


@contextmanager
def progress(total: int, show: bool) -> Iterator[Bar]:
    bar = Bar(total, show)
    bar.draw()
    try:
        yield bar
    finally:
        if show and total:
            print(file=sys.stderr)
