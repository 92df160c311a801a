"""The planning stage alone: zones read, moved to pixel space, chunk tasks made.

    python benchmarks/planning.py ZONES RASTER

Builds ``zonal_stats(ZONES, RASTER, compute=False)`` in a fresh process and
prints its CPU time and wall time (imports included, as a command-line run
pays them), the process's peak memory, and the graph's tasks and pickled size.
On a loaded machine the CPU time is the steadier figure.
"""

from __future__ import annotations

import argparse
import resource
import time

CPU, WALL = time.process_time(), time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zones")
    parser.add_argument("raster")
    args = parser.parse_args()

    import cloudpickle

    import zonal_dask as zd

    lazy = zd.zonal_stats(args.zones, args.raster, compute=False)
    cpu, wall = time.process_time() - CPU, time.perf_counter() - WALL
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    graph = dict(lazy.__dask_graph__())
    size = len(cloudpickle.dumps(graph, protocol=5))
    print(
        f"planning: {cpu:.2f} CPU s, {wall:.2f} s wall (imports included); "
        f"peak {peak:,.0f} MB; {len(graph):,} tasks, {size / 1e6:,.1f} MB pickled"
    )


if __name__ == "__main__":
    main()
