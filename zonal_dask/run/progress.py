"""Progress of a computation: the fraction of its tasks done, and a message.

``progress=`` takes what exactextract's does: ``True`` draws one bar on
standard error, redrawn in place; a function is called with
``(fraction, message)`` as tasks finish (at most ten times a second, and
once with 1.0 at the end). The same reports come from dask's local
schedulers (a scheduler callback) and from a ``distributed`` cluster (its
scheduler's progress feed), so a run looks the same wherever it computes.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any, TypeAlias

from dask.callbacks import Callback

from ..errors import OptionError

Report: TypeAlias = Callable[[float, str], object]
ProgressLike: TypeAlias = bool | Report | None
INTERVAL = 0.1  # seconds between two reports


def check_progress(progress: object) -> None:
    """Refuse a ``progress=`` that is neither a bool, None nor a function."""
    if progress is None or isinstance(progress, bool) or callable(progress):
        return
    raise OptionError(
        f"progress must be True, False or a function of (fraction, message), "
        f"not {progress!r}"
    )


def reporter(progress: ProgressLike) -> Report | None:
    """The function to report to: a new ``Bar`` for ``True``, else as given."""
    check_progress(progress)
    if progress is True:
        return Bar()
    return progress or None


class Bar:
    """One progress line on a terminal stream, redrawn in place.

    Each drawing pads the line to the previous one's length, so no character
    of a longer line is left behind; ``close`` clears the line.
    """

    def __init__(self, stream: IO[str] | None = None, width: int = 30) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self._shown = 0

    def __call__(self, fraction: float, message: str) -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        filled = "#" * int(self.width * fraction)
        line = f"[{filled:<{self.width}}] {100 * fraction:3.0f}% {message}"
        self._draw(line)

    def close(self) -> None:
        """Clear the line (the next output starts at its beginning)."""
        self._draw("")
        self.stream.write("\r")
        self.stream.flush()

    def _draw(self, line: str) -> None:
        self.stream.write("\r" + line.ljust(self._shown))
        self.stream.flush()
        self._shown = len(line)


class _Throttle:
    """Report ``done`` of ``total`` tasks, at most once per ``INTERVAL``."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.start = time.monotonic()
        self.last = -float("inf")
        self.lock = threading.Lock()

    def __call__(self, done: int, total: int, final: bool = False) -> None:
        now = time.monotonic()
        with self.lock:
            if not final and now - self.last < INTERVAL:
                return
            self.last = now
            fraction = done / total if total else 1.0
            self.report(
                fraction, f"{done:,} of {total:,} tasks, {now - self.start:.1f} s"
            )


class _SchedulerCallback(Callback):
    """dask's local schedulers (threads, processes, synchronous) report here."""

    def __init__(self, throttle: _Throttle) -> None:
        super().__init__()
        self.throttle = throttle
        self.total = 0
        self.done = 0

    def _start_state(self, dsk: Any, state: dict) -> None:
        self.total = sum(len(state[k]) for k in ("ready", "waiting", "running"))
        self.total += len(state["finished"])
        self.done = len(state["finished"])

    def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, id: Any) -> None:
        self.done += 1
        self.throttle(self.done, self.total)

    def _finish(self, dsk: Any, state: Any, errored: bool) -> None:
        if not errored:
            self.throttle(self.total, self.total, final=True)


@contextmanager
def local_progress(report: Report | None) -> Iterator[None]:
    """Report the tasks of dask's local schedulers inside the block."""
    if report is None:
        yield
        return
    try:
        with _SchedulerCallback(_Throttle(report)):
            yield
    finally:
        _close(report)


def wait_with_progress(future: Any, report: Report | None) -> Any:
    """The result of a ``distributed`` future, reporting its tasks meanwhile."""
    if report is None:
        return future.result()
    from distributed.diagnostics.progressbar import TextProgressBar

    throttle = _Throttle(report)

    class Feed(TextProgressBar):
        """The scheduler's progress feed, to ``report`` instead of stdout."""

        def _draw_bar(self, remaining: int, all: int, **kwargs: Any) -> None:
            throttle(all - remaining, all, final=remaining == 0)

        def _draw_stop(self, **kwargs: Any) -> None:
            pass

    try:
        Feed([future], future.client.scheduler.address, interval=f"{INTERVAL}s")
    finally:
        _close(report)
    return future.result()


def _close(report: Report) -> None:
    if isinstance(report, Bar):
        report.close()
