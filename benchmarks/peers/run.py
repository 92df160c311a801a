"""Every peer tool on the same data, each timed as a whole process.

    python benchmarks/peers/run.py DATA_DIR [--size 4000] [--zones 50000]
        [--overlapping] [--vrt-repeat R] [--tools a,b,c] [--repeat 3]
        [--timeout 300] [--max-memory GB] [--table OUT.md] [--jobs N] [--quick]
        [--python TOOL=PYTHON ...]

Makes the data with ``make_data.make`` (nothing is rewritten when it exists),
then runs each tool ``--repeat`` times, round robin, each run a fresh process
(``tools.py TOOL``, or the ``zonal-dask`` console script next to this Python).
A run longer than ``--timeout`` seconds, or whose processes hold more than
``--max-memory`` GB (default: half the machine's memory), is stopped and the
tool is not run again. Then, untimed, zonal_dask computes the reference
statistics and every tool's output is compared with them, polygon by polygon.
Writes a markdown table (default ``DATA_DIR/peers_SIZE_ZONES[_overlap].md``)
and the same results as JSON beside it, and prints the table.

Measurement: wall time from start to exit of the process; CPU time (user +
system) of the process and the children it waited for, from ``os.wait4``;
peak RSS as the largest sum of the resident memory of the process and all its
descendants, sampled every 0.05 s with psutil (pages that forked Pool workers
share with their parent are counted in each of them, so a Pool's peak is an
upper bound).

``--python TOOL=PYTHON`` runs TOOL with another interpreter (its console
script, for ``zonal_dask_cli``, beside it): a tool in an environment of its
own, holding what its own ``pip install`` brings and nothing the other tools
need. Several libraries import optional packages whenever they are
installed (dask.array imports scipy, rasterio boto3, numba cffi and
scipy.linalg), so one environment holding every tool makes each process pay
for the others' packages; the table's heading names each interpreter and
which of those packages it holds.

``--jobs N`` runs N tools at a time: their times then share the cores, so they
are no figures; only a check that every tool runs and agrees.
``--quick``: a 512 x 512 raster, 200 zones, one run of every tool, two at a
time, well under a minute on 2 cores (``tests/test_benchmark.py`` runs it).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
from make_data import make

HERE = Path(__file__).resolve().parent
POLL = 0.05  # seconds between RSS samples
RTOL = 1e-6
TIMES = "\N{MULTIPLICATION SIGN}"


@dataclass(frozen=True)
class Tool:
    name: str
    label: str
    # the zonal_dask result it is compared with: "centre", "coverage", or
    # None for the floors, which compute no statistics
    reference: str | None


TOOLS = [
    Tool("zonal_dask", "zonal_dask (API)", "centre"),
    Tool("zonal_dask_1thread", "zonal_dask (API), 1 thread", "centre"),
    Tool("zonal_dask_cli", "zonal-dask (CLI)", "centre"),
    Tool("zonal_dask_coverage", "zonal_dask, coverage='fraction' (API)", "coverage"),
    Tool("rasterstats", "rasterstats", "centre"),
    Tool("rasterstats_inside", "rasterstats, boundless=False", "centre"),
    Tool("exactextract", "exactextract (feature-sequential)", "coverage"),
    Tool("exactextract_rs", "exactextract (raster-sequential)", "coverage"),
    Tool("xrspatial", "xarray-spatial + rasterize (dask)", "centre"),
    Tool("flox", "flox map-reduce + rasterize (dask)", "centre"),
    Tool("gdal_loop", "per-polygon GDAL loop, 1 core", "centre"),
    Tool("gdal_pool", "per-polygon GDAL loop, Pool(2)", "centre"),
    Tool("floor_read", "floor A: read + decode every block, 2 threads", None),
    Tool("floor_read_1thread", "floor A on 1 thread", None),
    Tool("floor_rasterize", "floor B: rasterize every chunk, 2 threads", None),
]
REFERENCE_TOOLS = {"centre": "zonal_dask", "coverage": "zonal_dask_coverage"}


@dataclass(frozen=True)
class Limits:
    """When a run is stopped: wall seconds, GB resident in its process tree."""

    seconds: float
    memory_gb: float


@dataclass
class Run:
    wall: float
    cpu: float
    rss_mb: float
    status: str  # "ok", "timeout", "memory" (stopped) or "failed (exit N)"


@dataclass
class Result:
    tool: Tool
    runs: list[Run] = field(default_factory=list)
    agrees: str = "—"
    all_agree: bool | None = None


def main() -> None:
    args = parse_args()
    zones, raster = inputs(args)
    name = configuration(args)
    out_dir = args.data_dir / f"peers_{name}"
    out_dir.mkdir(exist_ok=True)
    table = args.table or args.data_dir / f"peers_{name}.md"
    tools = [t for t in TOOLS if t.name in args.tools]
    load_before = os.getloadavg()

    limits = Limits(args.timeout, args.max_memory)
    results = time_tools(
        tools, zones, raster, out_dir, args.repeat, limits, args.jobs, args.python
    )
    empty = compare_all(results, zones, raster, out_dir, args.jobs)

    header = describe(args, zones, raster, load_before, os.getloadavg())
    text = render(header, results, limits, empty)
    table.write_text(text)
    table.with_suffix(".json").write_text(
        json.dumps([asdict(r) for r in results], indent=1, ensure_ascii=False)
    )
    print(text)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--size", type=int, default=4000)
    parser.add_argument("--zones", type=int, default=50_000)
    parser.add_argument("--overlapping", action="store_true")
    parser.add_argument("--vrt-repeat", type=int, default=0)
    parser.add_argument(
        "--tools",
        type=lambda s: s.split(","),
        default=[t.name for t in TOOLS],
        help=f"comma-separated subset of {','.join(t.name for t in TOOLS)}",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument(
        "--max-memory",
        type=float,
        default=psutil.virtual_memory().total / 2**31,
        help="GB of resident memory at which a run is stopped",
    )
    parser.add_argument("--table", type=Path)
    parser.add_argument(
        "--jobs", type=int, default=1, help="tools run at a time (times not figures)"
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--python",
        action="append",
        default=[],
        metavar="TOOL=PYTHON",
        help="run TOOL with the interpreter PYTHON (an environment of its own)",
    )
    args = parser.parse_args()
    interpreters = {}
    for given in args.python:
        tool, _, python = given.partition("=")
        if not python or not Path(python).is_file():
            parser.error(f"--python {given}: TOOL=PATH of an interpreter expected")
        interpreters[tool] = str(Path(python).absolute())
    args.python = interpreters
    if args.quick:
        args.size, args.zones, args.repeat, args.jobs = 512, 200, 1, 2
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    unknown = (set(args.tools) | set(args.python)) - {t.name for t in TOOLS}
    if unknown:
        parser.error(f"unknown tools: {', '.join(sorted(unknown))}")
    if args.overlapping and args.vrt_repeat:
        parser.error("make_data.py has no overlapping zones over the VRT")
    args.command = shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])
    return args


def inputs(args: argparse.Namespace) -> tuple[Path, Path]:
    """Make the data if needed; the zones and raster paths of this configuration."""
    make(args.data_dir, args.size, [args.zones], args.overlapping, args.vrt_repeat)
    if args.vrt_repeat:
        raster = args.data_dir / f"raster_{args.size}_x{args.vrt_repeat}.vrt"
        zones = (
            args.data_dir / f"zones_{args.size}_x{args.vrt_repeat}_{args.zones}.gpkg"
        )
    else:
        raster = args.data_dir / f"raster_{args.size}.tif"
        suffix = "_overlap" if args.overlapping else ""
        zones = args.data_dir / f"zones_{args.size}_{args.zones}{suffix}.gpkg"
    return zones, raster


def configuration(args: argparse.Namespace) -> str:
    """The configuration's name, as in ``4000_50000`` or ``4000_x4_1000``."""
    repeat = f"_x{args.vrt_repeat}" if args.vrt_repeat else ""
    overlap = "_overlap" if args.overlapping else ""
    return f"{args.size}{repeat}_{args.zones}{overlap}"


def time_tools(
    tools: list[Tool],
    zones: Path,
    raster: Path,
    out_dir: Path,
    repeat: int,
    limits: Limits,
    jobs: int = 1,
    interpreters: dict[str, str] | None = None,
) -> list[Result]:
    """Run every tool ``repeat`` times, round robin, ``jobs`` processes at a time
    (one for figures); a tool of ``interpreters`` with its own Python.

    Round robin spreads the machine's slow moments over all tools. A tool
    whose run was stopped or failed is not run again.
    """
    results = [Result(tool) for tool in tools]

    def run_once(result: Result, attempt: int) -> None:
        name = result.tool.name
        out = out_dir / f"{name}.parquet"
        out.unlink(missing_ok=True)
        python = (interpreters or {}).get(name, sys.executable)
        command = tool_command(name, zones, raster, out, python)
        run = measure(command, limits, out_dir / f"{name}.log")
        result.runs.append(run)
        print(
            f"{name} run {attempt + 1}: {run.wall:.2f} s, CPU {run.cpu:.2f} s, "
            f"{run.rss_mb:.0f} MB, {run.status}",
            file=sys.stderr,
        )

    with ThreadPoolExecutor(jobs) as pool:
        for attempt in range(repeat):
            running = [
                pool.submit(run_once, result, attempt)
                for result in results
                if not result.runs or result.runs[-1].status == "ok"
            ]
            for future in running:
                future.result()
    return results


def tool_command(
    name: str, zones: Path, raster: Path, out: Path, python: str = sys.executable
) -> list[str]:
    if name == "zonal_dask_cli":
        cli = Path(python).parent / "zonal-dask"
        stats = "count,min,mean,max,std,sum"
        options = ["--stats", stats, "--id-field", "zone", "--overwrite", "-q"]
        return [str(cli), str(zones), str(raster), str(out), *options]
    return [
        python,
        str(HERE / "tools.py"),
        name,
        str(zones),
        str(raster),
        str(out),
    ]


def measure(command: list[str], limits: Limits, log: Path) -> Run:
    """Run ``command`` as a new process group; its wall, CPU and peak tree RSS.

    Output goes to ``log``. Past either limit the whole group is killed.
    """
    start = time.perf_counter()
    with log.open("w") as sink:
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    watched = psutil.Process(process.pid)
    peak, stopped = 0, ""
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        peak = max(peak, tree_rss(watched))
        if time.perf_counter() - start > limits.seconds:
            stopped = "timeout"
        elif peak > limits.memory_gb * 2**30:
            stopped = "memory"
        if stopped:
            os.killpg(process.pid, signal.SIGKILL)
            _, status, usage = os.wait4(process.pid, 0)
            break
        time.sleep(POLL)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if stopped:
        outcome = stopped
    elif process.returncode:
        outcome = f"failed (exit {process.returncode})"
    else:
        outcome = "ok"
    cpu = usage.ru_utime + usage.ru_stime
    return Run(wall, cpu, peak / 2**20, outcome)


def tree_rss(process: psutil.Process) -> int:
    """Resident bytes of a process and all its descendants (0 for those gone)."""
    total = 0
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            pass
    return total


def compare_all(
    results: list[Result], zones: Path, raster: Path, out_dir: Path, jobs: int = 1
) -> int:
    """Fill each result's ``agrees``; the number of zones with no valid pixel."""
    kinds = sorted({r.tool.reference for r in results} - {None})
    paths = {kind: out_dir / f"reference_{kind}.parquet" for kind in kinds}

    def reference(kind: str) -> None:
        command = tool_command(REFERENCE_TOOLS[kind], zones, raster, paths[kind])
        subprocess.run(command, check=True)

    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(reference, kinds))
    references = {kind: pd.read_parquet(paths[kind]) for kind in kinds}
    for result in results:
        kind = result.tool.reference
        if kind is None:
            continue
        if not result.runs or result.runs[-1].status != "ok":
            result.agrees = "no output"
            result.all_agree = False
            continue
        output = read_output(out_dir / f"{result.tool.name}.parquet")
        ok, detail = compare(output, references[kind], exact_count=kind == "centre")
        result.all_agree = ok == len(references[kind])
        result.agrees = f"{ok}/{len(references[kind])}{detail}"
    reference = references.get("centre", references.get("coverage"))
    return 0 if reference is None else int((reference["count"] == 0).sum())


def read_output(path: Path) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    # the CLI writes the id field as the index
    return frame if "zone" in frame.columns else frame.reset_index()


def compare(
    output: pd.DataFrame, reference: pd.DataFrame, exact_count: bool
) -> tuple[int, str]:
    """Polygons whose zone, count, mean and sum match the reference.

    Counts must be equal (``exact_count``) or within RTOL; means and sums within
    RTOL, NaN (or None) matching NaN. Where the reference has no valid pixel a
    sum of 0 matches its NaN: exactextract, flox and xarray-spatial say 0 there.
    Returns the count and a note naming the columns that differ, and on how many.
    """
    if len(output) != len(reference):
        return 0, f" ({len(output)} rows)"
    empty = reference["count"].to_numpy() == 0
    differs = {"zone": output["zone"].to_numpy() != reference["zone"].to_numpy()}
    for column in ("count", "mean", "sum"):
        got = output[column].to_numpy(dtype=np.float64, na_value=np.nan)
        want = reference[column].to_numpy(dtype=np.float64, na_value=np.nan)
        if column == "count" and exact_count:
            same = got == want
        else:
            same = np.isclose(got, want, rtol=RTOL, atol=0, equal_nan=True)
        if column == "sum":
            same |= empty & (got == 0)
        differs[column] = ~same
    bad = np.logical_or.reduce(list(differs.values()))
    notes = [f"{c} {int(d.sum())}" for c, d in differs.items() if d.any()]
    return int((~bad).sum()), f" (differ: {', '.join(notes)})" if notes else ""


def describe(
    args: argparse.Namespace,
    zones: Path,
    raster: Path,
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> str:
    """The table's heading: data, command, date, machine, versions."""
    kind = "overlapping (buffered)" if args.overlapping else "adjacent"
    side = args.size * (args.vrt_repeat or 1)
    packages = ["zonal-dask", "rasterstats", "exactextract", "xarray-spatial"]
    packages += ["flox", "dask", "rasterio", "numpy"]
    versions = ", ".join(f"{p} {version(p)}" for p in packages)
    import rasterio

    return "\n".join(
        [
            f"## Peer benchmark: {side:,} {TIMES} {side:,} float32, {args.zones:,} "
            f"{kind} zones",
            "",
            f"* data: `{raster.name}`, `{zones.name}` (benchmarks/peers/make_data.py)",
            f"* command: `python benchmarks/peers/{args.command}`",
            f"* date: {datetime.date.today().isoformat()}; {args.repeat} run(s) "
            f"per tool, stopped past {args.timeout:g} s or "
            f"{args.max_memory:.3g} GB RSS",
            f"* machine: {os.cpu_count()} cores, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB; load average "
            f"{load_before[0]:.2f} before, {load_after[0]:.2f} after",
            f"* versions: {versions}, GDAL {rasterio.__gdal_version__}",
            *(
                f"* {tool} runs in `{python}`: {environment_of(python)}"
                for tool, python in sorted(args.python.items())
            ),
            f"* every other tool runs in `{sys.executable}`: "
            f"{environment_of(sys.executable)}",
        ]
    )


# imported by a library whenever installed: dask.array (scipy), rasterio
# (boto3), numba (cffi, scipy.linalg)
OPTIONAL = ("scipy", "boto3", "cffi")


def environment_of(python: str) -> str:
    """Which of ``OPTIONAL`` the environment of ``python`` holds."""
    probe = (
        "import importlib.util as u; "
        f"print(' '.join(n for n in {OPTIONAL!r} if u.find_spec(n)))"
    )
    found = subprocess.run(
        [python, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    held = ", ".join(found) if found else "none"
    return f"of {', '.join(OPTIONAL)}, holds {held}"


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def render(header: str, results: list[Result], limits: Limits, empty: int) -> str:
    """The markdown table and its notes."""
    base = next(
        (
            median_wall(r)
            for r in results
            if r.tool.name == "zonal_dask" and r.runs[-1].status == "ok"
        ),
        None,
    )
    lines = [
        header,
        "",
        "| tool | wall s (median) | runs, s | CPU s | peak RSS MB "
        f"| {TIMES} zonal_dask | agrees |",
        "| --- | ---: | --- | ---: | ---: | ---: | --- |",
    ]
    for result in results:
        runs = result.runs
        last = runs[-1].status if runs else "not run"
        wall = median_wall(result)
        stopped = last in ("timeout", "memory")
        if last == "timeout":
            wall_text = f"> {limits.seconds:g} s (stopped)"
        elif last == "memory":
            wall_text = f"> {wall:.0f} s (stopped at {limits.memory_gb:.3g} GB RSS)"
        elif last != "ok":
            wall_text = last
        else:
            wall_text = f"{wall:.2f}"
        if base is None or not (stopped or last == "ok"):
            ratio = "—"
        else:
            ratio = f"{'> ' if stopped else ''}{wall / base:.2f}"
        lines.append(
            f"| {result.tool.label} | {wall_text} "
            f"| {', '.join(f'{r.wall:.2f}' for r in runs)} "
            f"| {statistics.median(r.cpu for r in runs):.2f} "
            f"| {max(r.rss_mb for r in runs):.0f} | {ratio} | {result.agrees} |"
        )
    return "\n".join(
        [*lines, "", NOTES.format(empty=empty, rtol=RTOL, times=TIMES), ""]
    )


def median_wall(result: Result) -> float:
    return statistics.median(r.wall for r in result.runs) if result.runs else np.nan


NOTES = """\
Notes:

* Every run is a fresh process: interpreter start, imports, reading the zones,
  the statistics and writing one parquet row per polygon are all timed. Wall:
  median of the runs. CPU: user + system time of the process and the children
  it waited for (`os.wait4`), median. Peak RSS: the largest sum of the resident
  memory of the process and its descendants, sampled every 0.05 s, the largest
  over the runs (a Pool's workers share pages with their parent, counted in
  each, so that figure is an upper bound). {times} zonal_dask: median wall
  over zonal_dask (API)'s.
* agrees: polygons whose count, mean and sum match zonal_dask's (default
  pixel-centre rule): counts equal, mean and sum within {rtol:g} relative.
  exactextract weights pixels by the fraction of them the polygon covers; it
  is compared with zonal_dask's `weights="coverage"`, counts within {rtol:g}
  too. {empty} zone(s) have no valid pixel: zonal_dask says sum NaN there,
  rasterstats None, exactextract, flox and xarray-spatial 0; all count as
  agreeing.
* xarray-spatial and flox need a label raster: one `rasterio.features.rasterize`
  of all polygons (timed), chunked as zonal_dask chunks the raster. Where
  polygons overlap, the last one drawn gets the pixel, so on overlapping zones
  they cannot agree. xarray-spatial accumulates in the raster's dtype (float32)
  and computes std from sums of squares; flox is asked for float64.
* rasterstats reads each polygon's window with rasterio's boundless read by
  default, which reopens the raster for every polygon and, with GDAL's default
  block cache, can hold more memory with every polygon; `boundless=False`, its
  option for zones inside the raster, reads from the open dataset.
* The GDAL loop rasterizes each polygon alone into its bounding-box window
  (rounded outward, clipped to the raster), reads the window and leaves nodata
  out: the classic recipe done right. Pool(2) sends 500 polygons per task; each
  worker opens the raster once.
* Floors: A reads and decodes every block of the raster (no zones); B reads
  the zones, builds an STRtree and burns the polygons meeting each chunk
  (chunks as zonal_dask picks them) into an int32 window (no raster read).
  Any tool that reads every pixel and rasterizes the zones pays about A + B,
  less one interpreter start and imports (each floor is a whole process too)."""


if __name__ == "__main__":
    main()
