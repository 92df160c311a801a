"""The plan of a huge job, measured without computing it.

    python benchmarks/terabyte_plan.py ZONES RASTER [--slice PIXELS] [--scheduler ADDR]

Builds the graph of ``zonal_stats(ZONES, RASTER, compute=False)`` (for the issue:
a VRT repeating the 16000² benchmark raster to about 250 gigapixels, with a
million polygons: ``python benchmarks/peers/make_data.py DIR --size 16000
--zones 1000000 --vrt-repeat 31 --format parquet``) and prints:

* the raster's size and chunking, and the number of tasks in the graph;
* the time to build it and this process's peak memory (the client's);
* the bytes of the whole graph pickled (what a client sends a scheduler),
  against the zones' own WKB, and the share of it the zones' shards hold: each
  zone travels once, in one shard, and chunk tasks hold ranges into them;
* the time to pickle and unpickle the graph and to order it (``dask.order``),
  the scheduler's own work before it dispatches a task.

With ``--slice N`` it then computes the statistics of the top-left N x N
pixels (``N = 100000`` is 10 gigapixels) on the scheduler at ``--scheduler``
(a ``dask scheduler`` address) or a LocalCluster of 2 single-threaded
workers, and prints the Mpixel/s.
"""

from __future__ import annotations

import argparse
import pickle
import resource
import time
from contextlib import ExitStack

import cloudpickle
import dask
import geopandas as gpd
import shapely
from dask.order import order

import zonal_dask as zd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zones")
    parser.add_argument("raster")
    parser.add_argument("--slice", type=int, default=0)
    parser.add_argument("--scheduler")
    args = parser.parse_args()

    from zonal_dask.io.raster import open_raster

    array = open_raster(args.raster)
    rows, cols = array.chunks
    print(
        f"raster: {array.shape[0]:,} x {array.shape[1]:,} = "
        f"{array.size / 1e9:,.1f} gigapixels, chunks {rows[0]} x {cols[0]} "
        f"({len(rows) * len(cols):,} of them)"
    )
    start, cpu = time.perf_counter(), time.process_time()
    lazy = zd.zonal_stats(args.zones, args.raster, compute=False)
    built, built_cpu = time.perf_counter() - start, time.process_time() - cpu
    graph = dict(lazy.__dask_graph__())
    chunk_tasks = [t for k, t in graph.items() if _is_chunk(k)]
    shard_bytes = sum(
        len(cloudpickle.dumps(v, protocol=5)) for k, v in graph.items() if _is_shard(k)
    )
    cpu = time.process_time()
    blob = cloudpickle.dumps(graph, protocol=5)
    dumped, cpu = time.process_time() - cpu, time.process_time()
    pickle.loads(blob)
    loaded, cpu = time.process_time() - cpu, time.process_time()
    order(graph)
    ordered = time.process_time() - cpu
    layer_bytes = _layer_wkb(args.zones)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"graph: {len(graph):,} tasks ({len(chunk_tasks):,} chunk tasks)")
    print(
        f"built in {built:.1f} s ({built_cpu:.1f} CPU s); "
        f"client peak memory {peak:,.0f} MB"
    )
    print(
        f"pickled graph: {len(blob) / 1e6:,.0f} MB, "
        f"{len(blob) / layer_bytes:.3f} x the layer's WKB "
        f"({layer_bytes / 1e6:,.0f} MB); "
        f"of which the zones' shards {shard_bytes / 1e6:,.0f} MB "
        f"({shard_bytes / layer_bytes:.3f} x)"
    )
    print(
        f"CPU s: pickle.dumps {dumped:.2f}, pickle.loads {loaded:.2f}, "
        f"dask.order {ordered:.2f}"
    )
    if args.slice:
        _compute_slice(args, array)


def _is_chunk(key: object) -> bool:
    return isinstance(key, tuple) and str(key[0]).startswith("zonal-chunk-")


def _is_shard(key: object) -> bool:
    return isinstance(key, tuple) and str(key[0]).startswith("zonal-zones-")


def _layer_wkb(zones: str) -> int:
    frame = (
        gpd.read_parquet(zones)
        if zones.endswith(".parquet")
        else gpd.read_file(zones, engine="pyogrio")
    )
    return sum(len(w) for w in shapely.to_wkb(frame.geometry.to_numpy()))


def _compute_slice(args: argparse.Namespace, array) -> None:
    from distributed import Client, LocalCluster

    part = array.isel(y=slice(0, args.slice), x=slice(0, args.slice))
    with ExitStack() as stack:
        if args.scheduler:
            client = stack.enter_context(Client(args.scheduler))
        else:
            cluster = stack.enter_context(
                LocalCluster(n_workers=2, threads_per_worker=1, processes=True)
            )
            client = stack.enter_context(Client(cluster))
        start = time.perf_counter()
        lazy = zd.zonal_stats(args.zones, part, compute=False)
        table = client.compute(lazy).result()
        elapsed = time.perf_counter() - start
    where = args.scheduler or "LocalCluster(2 x 1 thread)"
    zones = int((table["count"] > 0).sum())
    print(
        f"slice {args.slice:,}² on {where}: {elapsed:.1f} s, "
        f"{part.size / elapsed / 1e6:,.1f} Mpixel/s, {zones:,} zones with pixels"
    )


if __name__ == "__main__":
    with dask.config.set({"distributed.worker.daemon": False}):
        main()
