"""Where a GeoTIFF time series' CPU goes, stage by stage, in one process.

    python benchmarks/series_stages.py DIR [--zones N] [--steps N] [--chunks N]
        [--repeat N]

``zonal_series`` over the first ``steps`` GeoTIFF steps of DIR (what
``peers/make_timeseries.py`` writes), all steps in one batch, on the local
threads, ``repeat`` times; each time it prints the whole process's CPU
seconds for the call and the CPU time (of the thread running each task,
summed) of three stages: the read tasks (``series.steps.read_window``: open
or borrow the file, read and decode a window), the chunk steps
(``reduce.partials.chunk_step``: the moments kernel over a chunk and its
labels) and the merges of partials (``reduce.partials.merge_moments``).
The first call in a process also loads the kernels: compare the later ones.
"""

from __future__ import annotations

import argparse
import glob
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

STATS = ["count", "min", "mean", "max", "std", "sum"]


def timed(module: Any, name: str, into: defaultdict, label: str) -> None:
    """Wrap ``module.name`` to add its thread's CPU time to ``into[label]``."""
    plain: Callable = getattr(module, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.thread_time()
        try:
            return plain(*args, **kwargs)
        finally:
            into[label] += time.thread_time() - start

    setattr(module, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--zones", type=int, default=200_000)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--chunks", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    import zonal_dask as zd
    from zonal_dask.reduce import partials
    from zonal_dask.series import steps

    cpu: defaultdict = defaultdict(float)
    timed(steps, "read_window", cpu, "read")
    timed(partials, "chunk_step", cpu, "chunk step")
    timed(partials, "merge_moments", cpu, "merge")
    paths = sorted(glob.glob(str(args.directory / "lst_2*.tif")))[: args.steps]
    zones = args.directory / f"lst_zones_{args.zones}.gpkg"
    options = {} if args.chunks is None else {"chunks": args.chunks}
    for _ in range(args.repeat):
        cpu.clear()
        wall, process = time.perf_counter(), time.process_time()
        zd.zonal_series(
            zones,
            paths,
            STATS,
            time_pattern="%Y-%m-%d",
            batch=len(paths),
            **options,
        )
        wall, process = time.perf_counter() - wall, time.process_time() - process
        stages = ", ".join(f"{k} {v:.2f}" for k, v in cpu.items())
        print(
            f"{len(paths)} steps: {wall:.2f} s wall, {process:.2f} CPU s; "
            f"CPU s by stage: {stages}"
        )


if __name__ == "__main__":
    main()
