"""Wall time of one job on threads, a LocalCluster and dask CLI processes.

    python benchmarks/schedulers.py [DIR] [--repeat N]

Writes the demo data (``zonal-dask demo``'s, 2048 x 2048 pixels, 300 zones)
into DIR and times the same ``zonal-dask`` command, as a fresh process each
time (imports and, for ``--cluster``, the cluster's start and stop included):

* ``threads``: the default, dask's threaded scheduler on all cores;
* ``local-cluster``: ``--cluster --workers 2 --threads-per-worker 1``;
* ``dask-cli``: ``--scheduler`` to a ``dask scheduler`` and two ``dask worker
  --nthreads 1`` processes started beforehand on 127.0.0.1 (not timed).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from zonal_dask.cli.demo import make_sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", nargs="?", default="zonal-dask-bench")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    zones, raster = make_sample(args.dir)
    output = Path(args.dir) / "bench.txt"
    base = [sys.executable, "-m", "zonal_dask.cli", str(zones), str(raster)]
    base += [str(output), "--overwrite"]
    with dask_cli_cluster() as address:
        runs = {
            "threads": base,
            "local-cluster": [
                *base,
                "--cluster",
                "--workers",
                "2",
                "--threads-per-worker",
                "1",
            ],
            "dask-cli": [*base, "--scheduler", address],
        }
        for name, command in runs.items():
            times = [timed(command) for _ in range(args.repeat)]
            print(
                f"{name:14s} median {statistics.median(times):6.2f} s  "
                f"(runs: {', '.join(f'{t:.2f}' for t in times)})"
            )


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


class dask_cli_cluster:
    """``dask scheduler`` and two one-thread ``dask worker`` processes."""

    def __enter__(self) -> str:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.address = f"tcp://127.0.0.1:{port}"
        dask = [sys.executable, "-m", "dask"]
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        self.processes = [
            subprocess.Popen(
                [
                    *dask,
                    "scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--no-dashboard",
                ],
                **quiet,
            )
        ]
        for _ in range(2):
            self.processes.append(
                subprocess.Popen(
                    [
                        *dask,
                        "worker",
                        self.address,
                        "--nthreads",
                        "1",
                        "--host",
                        "127.0.0.1",
                        "--no-dashboard",
                    ],
                    **quiet,
                )
            )
        from distributed import Client

        with Client(self.address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
        return self.address

    def __exit__(self, *exc: object) -> None:
        for process in reversed(self.processes):
            process.terminate()
            process.wait(30)


if __name__ == "__main__":
    main()
