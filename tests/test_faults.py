"""Faults in real processes: Ctrl-C, a killed worker, a lost scheduler, a full disk.

Each leaves the complete output or none, and the command says which. The runs
are made long (hundreds of small chunks) so that the fault lands mid-run; the
fault is injected once the checkpoint shows that chunks are being computed.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import zonal_dask as zd
from zonal_dask.cli.main import main
from zonal_dask.io import writers

from .mounts import tiny_filesystem
from .synth import make_grid, voronoi_zones, zones_frame

CHUNKS = 64
WAIT = 120  # seconds: an upper bound for every wait, never reached when all is well


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path]:
    """A 1024 x 1024 raster and 300 zones: 256 chunk tasks at 64 x 64."""
    d = tmp_path_factory.mktemp("faults")
    grid = make_grid((1024, 1024), seed=91)
    raster = grid.write(d / "grid.tif", blocksize=CHUNKS)
    zones = d / "zones.gpkg"
    zones_frame(voronoi_zones(grid, 300, seed=91)).to_file(zones, engine="pyogrio")
    return zones, raster


@pytest.fixture(scope="module")
def expected(inputs) -> pd.DataFrame:
    return zd.zonal_stats(*inputs, chunks=CHUNKS)


def _command() -> list[str]:
    script = Path(sys.executable).parent / "zonal-dask"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "zonal_dask.cli"]


def _start(inputs, output: Path, *args: str, chunks=CHUNKS) -> subprocess.Popen:
    zones, raster = inputs
    command = [*_command(), str(zones), str(raster), str(output)]
    return subprocess.Popen(
        [*command, "--chunks", str(chunks), *args], stderr=subprocess.PIPE, text=True
    )


def _wait_for_chunks(process: subprocess.Popen, checkpoint: Path, n: int) -> None:
    deadline = time.monotonic() + WAIT
    while len(list(checkpoint.glob("chunk-*.npz"))) < n:
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "no chunk saved in time"
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before the fault"


# Ctrl-C tests cut the run in finer chunks: 1,024 tasks, so that it is still
# computing when the signal comes, however busy the machine
CTRL_C_CHUNKS = 32
CTRL_C_TASKS = (1024 // CTRL_C_CHUNKS) ** 2


def _ctrl_c_while_computing(
    process: subprocess.Popen, checkpoint: Path, n: int, group: bool = False
) -> None:
    """Ctrl-C once ``n`` chunks are saved, the run (its process group) stopped
    meanwhile: the chunks counted are the chunks saved when the signal lands."""

    def send(number: int) -> None:
        if group:
            os.killpg(process.pid, number)
        else:
            process.send_signal(number)

    _wait_for_chunks(process, checkpoint, n)
    send(signal.SIGSTOP)
    try:
        saved = len(list(checkpoint.glob("chunk-*.npz")))
        assert saved < CTRL_C_TASKS, "every chunk was saved before the Ctrl-C"
        send(signal.SIGINT)
    finally:
        send(signal.SIGCONT)


@pytest.mark.slow
def test_ctrl_c_leaves_no_output_and_the_rerun_resumes(inputs, tmp_path):
    output, checkpoint = tmp_path / "stats.parquet", tmp_path / "ck"
    options = ["--workers", "1", "--checkpoint", str(checkpoint)]
    process = _start(inputs, output, *options, chunks=CTRL_C_CHUNKS)
    _ctrl_c_while_computing(process, checkpoint, 20)
    _, err = process.communicate(timeout=WAIT)
    assert process.returncode == 130
    assert err.splitlines()[-1].startswith(
        "zonal-dask: interrupted while computing; "
        f"no output written ({output} untouched); "
    )
    assert "chunks saved in" in err and "rerun to resume" in err
    assert not output.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]
    saved = len(list(checkpoint.glob("chunk-*.npz")))
    assert 20 <= saved < CTRL_C_TASKS

    rerun = _start(inputs, output, *options, chunks=CTRL_C_CHUNKS)
    _, err = rerun.communicate(timeout=WAIT)
    assert rerun.returncode == 0, err
    expected = zd.zonal_stats(*inputs, chunks=CTRL_C_CHUNKS)
    pd.testing.assert_frame_equal(pd.read_parquet(output), expected, check_exact=True)


@pytest.fixture
def dask_cluster(tmp_path) -> Iterator[tuple[str, subprocess.Popen, list]]:
    """A scheduler and two single-thread workers, each its own process."""
    scheduler_file = tmp_path / "scheduler.json"
    dask = [sys.executable, "-m", "dask"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen(
        [
            *dask,
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(scheduler_file),
        ],
        **quiet,
    )
    workers = []
    try:
        deadline = time.monotonic() + WAIT
        while not scheduler_file.exists():
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.1)
        time.sleep(0.2)  # the file is complete once written; let it settle
        address = json.loads(scheduler_file.read_text())["address"]
        workers = [
            subprocess.Popen(
                [
                    *dask,
                    "worker",
                    "--nthreads",
                    "1",
                    "--no-nanny",
                    "--no-dashboard",
                    "--scheduler-file",
                    str(scheduler_file),
                ],
                **quiet,
            )
            for _ in range(2)
        ]
        yield address, scheduler, workers
    finally:
        for process in [*workers, scheduler]:
            process.kill()
            process.wait(timeout=WAIT)


@pytest.mark.slow
def test_a_killed_worker_still_gives_the_complete_output(
    inputs, expected, tmp_path, dask_cluster
):
    address, _, workers = dask_cluster
    output, checkpoint = tmp_path / "stats.parquet", tmp_path / "ck"
    process = _start(
        inputs, output, "--scheduler", address, "--checkpoint", str(checkpoint)
    )
    _wait_for_chunks(process, checkpoint, 10)
    workers[0].kill()
    _, err = process.communicate(timeout=WAIT)
    assert process.returncode == 0, err
    pd.testing.assert_frame_equal(pd.read_parquet(output), expected, check_exact=True)


@pytest.mark.slow
def test_a_lost_scheduler_is_a_clear_error_in_bounded_time(
    inputs, tmp_path, dask_cluster
):
    address, scheduler, _ = dask_cluster
    output, checkpoint = tmp_path / "stats.parquet", tmp_path / "ck"
    process = _start(
        inputs, output, "--scheduler", address, "--checkpoint", str(checkpoint)
    )
    _wait_for_chunks(process, checkpoint, 10)
    scheduler.kill()
    _, err = process.communicate(timeout=WAIT)  # a hang fails here
    assert process.returncode == 1
    last = err.splitlines()[-1]
    assert last.startswith("zonal-dask: error: computation failed (")
    assert f"no output written ({output} untouched)" in last
    assert not output.exists()


def test_a_failed_write_says_nothing_was_written(inputs, tmp_path, capsys, monkeypatch):
    def no_space(table, tmp):
        Path(tmp).write_text("half a table")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setitem(writers._WRITERS, ".csv", no_space)
    output = tmp_path / "stats.csv"
    zones, raster = inputs
    assert main([str(zones), str(raster), str(output), "--chunks", "512"]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"zonal-dask: error: {output}: cannot write (No space left on device); "
        "nothing written\n"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_ctrl_c_on_a_local_cluster_is_one_line(inputs, tmp_path):
    """A terminal sends Ctrl-C to the whole process group, workers included."""
    output, checkpoint = tmp_path / "stats.csv", tmp_path / "ck"
    zones, raster = inputs
    process = subprocess.Popen(
        [
            *_command(),
            str(zones),
            str(raster),
            str(output),
            "--chunks",
            str(CTRL_C_CHUNKS),
            "--cluster",
            "--workers",
            "2",
            "--threads-per-worker",
            "1",
            "--checkpoint",
            str(checkpoint),
            "-q",
        ],
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    _ctrl_c_while_computing(process, checkpoint, 10, group=True)
    _, err = process.communicate(timeout=WAIT)
    assert process.returncode == 130
    assert err.splitlines() == [
        "zonal-dask: interrupted while computing; "
        f"no output written ({output} untouched); "
        + err.split("untouched); ", 1)[1].strip()
    ]
    assert "Traceback" not in err and not output.exists()


# every output format, written into a full file system
FORMATS = {
    "stats.csv": [],
    "stats.txt": [],
    "stats.parquet": [],
    "zones.gpkg": [],
    "zones.fgb": [],
    "zones.geojson": [],
    "zones.parquet": ["--geometry"],
}


@pytest.mark.parametrize("name", [*FORMATS, "map.png"])
def test_a_full_disk_leaves_nothing_in_any_format(inputs, tmp_path, capsys, name):
    full = tmp_path / "full"
    full.mkdir()
    zones, raster = inputs
    with tiny_filesystem(full, "8k"):
        failing = full / name
        if name == "map.png":  # the table elsewhere, the map on the full disk
            pytest.importorskip("matplotlib")
            args = [tmp_path / "stats.csv", "--map", failing]
        else:
            args = [failing, *FORMATS[name]]
        args = [zones, raster, *args, "--chunks", "512", "-q"]
        assert main([str(a) for a in args]) == 1
        assert capsys.readouterr().err == (
            f"zonal-dask: error: {failing}: cannot write (No space left on device); "
            "nothing written\n"
        )
        assert list(full.iterdir()) == []


def test_a_run_that_loses_the_race_says_so(inputs, tmp_path, capsys, monkeypatch):
    def write_then_lose(table, tmp):
        Path(tmp).write_text("this run's table")
        output.write_text("the other run's table")  # published meanwhile

    output = tmp_path / "stats.csv"
    monkeypatch.setitem(writers._WRITERS, ".csv", write_then_lose)
    zones, raster = inputs
    assert main([str(zones), str(raster), str(output), "--chunks", "512"]) == 1
    assert capsys.readouterr().err == (
        f"zonal-dask: error: {output}: written by another run meanwhile; this run's "
        "table was not written (use --overwrite to replace it)\n"
    )
    assert output.read_text() == "the other run's table"
    assert [p.name for p in tmp_path.iterdir()] == ["stats.csv"]


@pytest.mark.slow
def test_two_runs_racing_for_one_output(inputs, expected, tmp_path):
    output = tmp_path / "stats.parquet"
    runs = [_start(inputs, output, "-q", chunks=512) for _ in range(2)]
    results = [(run.wait(timeout=WAIT), run.stderr.read()) for run in runs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 1], results
    (loser,) = [err for code, err in results if code == 1]
    assert len(loser.splitlines()) == 1
    assert loser.startswith(f"zonal-dask: error: {output}: ")
    assert "exists" in loser or "written by another run meanwhile" in loser
    table = pd.read_parquet(output)  # one run's table, whole (other chunks)
    pd.testing.assert_frame_equal(table, expected, check_exact=False, rtol=1e-12)
    assert [p.name for p in tmp_path.iterdir()] == ["stats.parquet"]


# Ctrl-C at each stage of the command, raised in-process where the stage calls
# into the package: (what is patched, the stage the line names)
STAGES = {
    "options": ("zonal_dask.cli.main.zonal_options", "checking the options"),
    "zones": ("zonal_dask.api.zonal_stats", "reading the zones and planning"),
    "compute": ("zonal_dask.run.scheduler.compute", "computing"),
    "pixels": ("zonal_dask.io.writers.write_pixels", "writing the pixels to {pixels}"),
    "table": ("zonal_dask.io.writers.write_delimited", "writing {output}"),
    "map": ("zonal_dask.io.maps.choropleth", "drawing the map {map}"),
}


@pytest.fixture(scope="module")
def small_inputs(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("small")
    grid = make_grid((64, 64), seed=92)
    zones = d / "zones.gpkg"
    zones_frame(voronoi_zones(grid, 5, seed=92)).to_file(zones, engine="pyogrio")
    return zones, grid.write(d / "grid.tif")


@pytest.mark.parametrize("stage", STAGES)
def test_ctrl_c_at_any_stage_is_one_line_and_leaves_nothing(
    small_inputs, tmp_path, capsys, monkeypatch, stage
):
    target, doing = STAGES[stage]
    paths = {
        n: tmp_path / f
        for n, f in [("output", "stats.csv"), ("pixels", "p.parquet"), ("map", "m.png")]
    }

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(target, interrupt)
    zones, raster = small_inputs
    args = [str(zones), str(raster), str(paths["output"]), "-q"]
    code = main([*args, "--pixels", str(paths["pixels"]), "--map", str(paths["map"])])
    assert code == 130
    err = capsys.readouterr().err
    published = stage in ("table", "map")  # the pixels, then the table, were out
    left = f"no output written ({paths['output']} untouched)"
    if stage == "options":
        left = "no output written"
    elif stage == "table":
        left = f"no output written (this run's {paths['pixels']} removed)"
    elif stage == "map":
        removed = f"{paths['pixels']}, {paths['output']}"
        left = f"no output written (this run's {removed} removed)"
    assert published or "removed" not in err
    expected = f"zonal-dask: interrupted while {doing.format(**paths)}; {left}\n"
    assert err == expected
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_once_everything_is_written_says_so(
    small_inputs, tmp_path, capsys, monkeypatch
):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("zonal_dask.cli.main._summary", interrupt)
    output = tmp_path / "stats.csv"
    assert main([*map(str, small_inputs), str(output)]) == 130
    assert capsys.readouterr().err == (
        f"zonal-dask: interrupted after {output} was written (it is complete)\n"
    )
    assert output.exists()
