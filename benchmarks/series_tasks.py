"""Where a time series' wall time goes, task by task, on the local threads.

    python benchmarks/series_tasks.py DIR [--input zarr|tif] [--zones N]
        [--steps N] [--repeat N]

``zonal_series`` over the first ``steps`` steps of DIR (what
``peers/make_timeseries.py`` writes: ``lst.zarr`` or the GeoTIFFs), as
``timeseries.py`` calls it, ``repeat`` times in one process; the last call is
recorded through dask's local scheduler callbacks: each task's start and end
(wall) and its thread's CPU time. Printed: the call's wall and CPU, the
time spent outside the graphs' computations (planning, building the cube),
and for each kind of task (its key's name without the token) the number of
tasks, their summed wall and CPU, and the wall time during which it was the
only task running (one core idle while it ran). The first call in a process
also loads the kernels and plans the zones once: compare the later ones.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import re
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

STATS = ["count", "min", "mean", "max", "std", "sum"]


def kind(key: Any) -> str:
    """A task key's name without its token and indices."""
    name = str(key[0] if isinstance(key, tuple) else key)
    parts = [p for p in name.split("-") if not re.fullmatch(r"[0-9a-f]{8,}", p)]
    return "-".join(p for p in parts if not p.isdigit()) or name


class Recorder:
    """Each task's (key, thread, start, end, CPU), timed in the thread that
    runs it (dask's ``_pretask``/``_posttask`` callbacks run in the scheduling
    thread, so they would count the wait in the queue), and each graph
    computation's start and end."""

    def __init__(self) -> None:
        self.tasks: list[tuple[Any, int, float, float, float]] = []
        self.computes: list[tuple[float, float]] = []

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        import dask.local
        from dask.callbacks import Callback

        recorder, plain = self, dask.local.execute_task

        def execute_task(key: Any, *args: Any, **kwargs: Any) -> Any:
            start, cpu = time.perf_counter(), time.thread_time()
            try:
                return plain(key, *args, **kwargs)
            finally:
                end = time.perf_counter()
                cpu = time.thread_time() - cpu
                recorder.tasks.append((key, threading.get_ident(), start, end, cpu))

        class Computes(Callback):
            def _start(self, dsk: Any) -> None:
                recorder.computes.append((time.perf_counter(), float("nan")))

            def _finish(self, dsk: Any, state: Any, errored: bool) -> None:
                began, _ = recorder.computes[-1]
                recorder.computes[-1] = (began, time.perf_counter())

        dask.local.execute_task = execute_task
        try:
            with Computes():
                yield
        finally:
            dask.local.execute_task = plain


def occupancy(tasks: list, window: tuple[float, float]) -> tuple[dict, float]:
    """Within ``window``: the wall time each kind of task ran alone (the
    other threads idle), and the time no task ran."""
    events = sorted(
        [(t[2], 1, i) for i, t in enumerate(tasks)]
        + [(t[3], -1, i) for i, t in enumerate(tasks)]
    )
    alone: defaultdict = defaultdict(float)
    running: set[int] = set()
    idle, last = 0.0, window[0]
    for at, change, i in [*events, (window[1], 0, -1)]:
        if len(running) == 1:
            (only,) = running
            alone[kind(tasks[only][0])] += at - last
        elif not running:
            idle += at - last
        last = at
        if change > 0:
            running.add(i)
        elif change < 0:
            running.discard(i)
    return alone, idle


def report(recorder: Recorder, wall: float) -> None:
    """Print the breakdown of the recorded call."""
    inside = sum(end - start for start, end in recorder.computes)
    print(
        f"  {len(recorder.computes)} graph computations: {inside:.2f} s of the "
        f"call's {wall:.2f} s wall; outside them {wall - inside:.2f} s"
    )
    alone: defaultdict = defaultdict(float)
    for start, end in recorder.computes:
        tasks = [t for t in recorder.tasks if start <= t[2] <= end]
        by_kind, idle = occupancy(tasks, (start, end))
        busy = sum(t[3] - t[2] for t in tasks)
        lone = sorted(by_kind.items(), key=lambda kv: -kv[1])[:3]
        print(
            f"  computation of {len(tasks)} tasks: {end - start:.3f} s, "
            f"{busy / (end - start):.2f} threads busy on average, no task "
            f"{idle:.3f} s, one task alone {sum(by_kind.values()):.3f} s ("
            + ", ".join(f"{k} {v:.3f}" for k, v in lone)
            + ")"
        )
        for name, value in by_kind.items():
            alone[name] += value
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for key, _, start, end, cpu in recorder.tasks:
        entry = totals[kind(key)]
        entry[0] += 1
        entry[1] += end - start
        entry[2] += cpu
    print(f"  {'task':<34} {'n':>5} {'wall s':>8} {'CPU s':>8} {'alone s':>8}")
    for name, (n, task_wall, cpu) in sorted(totals.items(), key=lambda t: -t[1][1]):
        print(f"  {name:<34} {n:>5} {task_wall:>8.3f} {cpu:>8.3f} {alone[name]:>8.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--input", choices=["zarr", "tif"], default="zarr")
    parser.add_argument("--zones", type=int, default=200_000)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    import xarray as xr

    import zonal_dask as zd

    zones = args.directory / f"lst_zones_{args.zones}.gpkg"
    for r in range(args.repeat):
        if args.input == "zarr":
            cube = xr.open_zarr(args.directory / "lst.zarr", decode_coords="all")
            series: Any = cube.isel(time=slice(0, args.steps))
            pattern = None
        else:
            found = sorted(glob.glob(str(args.directory / "lst_2*.tif")))
            series, pattern = found[: args.steps], "%Y-%m-%d"
        recorder = Recorder()
        wall, cpu = time.perf_counter(), time.process_time()
        with recorder.recording():
            zd.zonal_series(zones, series, STATS, time_pattern=pattern)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"call {r + 1}, {args.steps} steps: {wall:.2f} s wall, {cpu:.2f} CPU s")
        if r == args.repeat - 1:
            report(recorder, wall)


if __name__ == "__main__":
    main()
