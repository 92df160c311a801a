"""What checking a cluster's workers costs a run (run/workers.py).

Starts a LocalCluster of 2 single-threaded workers and times, 5 times each:
``check_reach`` with one local input and one written directory (all seen),
with one missing input (the one-line refusal), and ``prepared`` (the check
plus registering and removing the run's worker plugin). Prints medians.

    python benchmarks/worker_checks.py
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

from distributed import Client, LocalCluster

from zonal_dask.errors import ZonalError
from zonal_dask.run.reach import Reach
from zonal_dask.run.workers import check_reach, prepared


def median_seconds(call, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        try:
            call()
        except ZonalError:
            pass
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    directory = tempfile.mkdtemp()
    raster = os.path.join(directory, "r.tif")
    open(raster, "wb").close()
    seen = Reach.of([raster], [directory])
    missing = Reach.of([os.path.join(directory, "none.tif")])
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as c,
        Client(c) as client,
    ):
        client.run(lambda: None)

        def run_prepared() -> None:
            with prepared(client, Reach(), {"GDAL_CACHEMAX": "16"}):
                pass

        for label, reach in (("all seen", seen), ("refused", missing)):
            seconds = median_seconds(lambda: check_reach(client, reach))  # noqa: B023
            print(f"check, {label}: {seconds:.3f} s")
        print(f"check + plugin on and off: {median_seconds(run_prepared):.3f} s")


if __name__ == "__main__":
    main()
