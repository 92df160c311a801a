"""The command line as a GIS analyst meets it: its help, its flags, what it
prints, what each output holds, and what a checkpointed run says."""

from __future__ import annotations

import inspect
import io
import os
import signal
import warnings
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

import zonal_dask as zd
from zonal_dask.cli.main import main
from zonal_dask.cli.options import API_ONLY, FLAGS, build_parser
from zonal_dask.run import local_cluster, scheduler
from zonal_dask.run.progress import Bar
from zonal_dask.statistics.table import ALIASES, STATISTICS

from .synth import make_grid, voronoi_zones, zones_frame

GRID = make_grid((40, 50), seed=8)


@pytest.fixture
def inputs(tmp_path):
    """A 40 x 50 raster and nine zones, one of them outside the raster."""
    geometries = voronoi_zones(GRID, 8, seed=8)
    _, y0, x1, y1 = GRID.bounds()
    geometries.append(shapely.box(x1 + 100, y0, x1 + 500, y1))  # no pixel
    zones = tmp_path / "zones.gpkg"
    zones_frame(geometries).to_file(zones, engine="pyogrio")
    return zones, GRID.write(tmp_path / "grid.tif")


def _run(capsys, *args) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize("columns", [40, 64, 80, 132])
def test_help_names_demo_and_never_cuts_a_word(monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    text = build_parser().format_help()
    assert text.startswith(
        "usage: zonal-dask ZONES RASTER OUTPUT [options]\n       zonal-dask demo [DIR]"
    )
    shown = set(text.split())
    for action in build_parser()._actions:
        for word in (action.help or "").replace("%%", "%").split():
            assert word in shown, (word, columns)


def test_every_option_of_the_api_has_a_flag_or_a_reason():
    parameters = set(inspect.signature(zd.zonal_stats).parameters) - {"zones", "raster"}
    flags = {flag.param for flag in FLAGS}
    assert flags | set(API_ONLY) == parameters
    assert not flags & set(API_ONLY)
    text = build_parser().format_help()
    assert all(flag.flag in text for flag in FLAGS)


def test_every_statistic_and_alias_from_the_command_line(data_dir, tmp_path):
    names = [*STATISTICS, *ALIASES, "p90", "percentile_25", "quantile(q=0.5)"]
    weighted = [n for n in names if n in STATISTICS and STATISTICS[n].needs_weights]
    weighted += [a for a in ALIASES if ALIASES[a] in weighted]
    zones = data_dir / "rasterio" / "box.shp"
    raster = data_dir / "rasterio" / "RGB.byte.tif"
    for asked, weights in (
        ([n for n in names if n not in weighted], None),
        (["mean", "sum", *weighted], raster),
    ):
        out = tmp_path / f"{weights is None}.parquet"
        extra = [] if weights is None else ["--weights", str(weights)]
        args = [str(zones), str(raster), str(out), "--stats", ",".join(asked)]
        assert main(args + extra) == 0
        expected = zd.zonal_stats(zones, raster, asked, weights=weights)
        expected.columns = [str(c) for c in expected.columns]
        pd.testing.assert_frame_equal(pd.read_parquet(out), expected)


def test_coverage_weights_with_the_default_statistics(data_dir, tmp_path):
    zones = data_dir / "rasterstats" / "polygons.shp"
    raster = data_dir / "rasterstats" / "slope.tif"
    out = tmp_path / "weighted.csv"
    assert main([str(zones), str(raster), str(out), "--weights", "coverage"]) == 0
    expected = zd.zonal_stats(zones, raster, weights="coverage")
    pd.testing.assert_frame_equal(pd.read_csv(out, index_col="fid"), expected)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--chunks", "0"], "chunks must be a number of pixels of at least 1"),
        (["--chunks", "-3"], "chunks must be a number of pixels of at least 1"),
        (["--chunks", "lots"], "argument --chunks: invalid int value: 'lots'"),
        (["--workers", "-2"], "--workers must be a whole number of at least 1"),
        (["--workers", "0"], "--workers must be a whole number of at least 1"),
        (["--cluster", "--threads-per-worker", "0"], "--threads-per-worker must be"),
        (["--cluster", "--memory-limit", "lots"], "--memory-limit 'lots': expected"),
        (["--memory-limit", "4GB"], "--memory-limit sizes the workers of --cluster"),
        (["--split-every", "1"], "split_every must be at least 2"),
        (["--band", "x"], "argument --band: expected a number or 'all'"),
        (["--stats", "meen"], "did you mean 'mean'?"),
        (["--include-cols", "a,a"], "include_cols repeats 'a'"),
        (["--cluster", "--scheduler", "tcp://127.0.0.1:9"], "--cluster starts"),
        (["--workers", "2", "--scheduler", "tcp://127.0.0.1:9"], "its own workers"),
    ],
)
def test_values_out_of_range_are_one_line_before_any_input_is_read(
    tmp_path, capsys, flags, message
):
    # the inputs do not exist: the option must be refused before they are read
    args = [tmp_path / "nope.gpkg", tmp_path / "nope.tif", tmp_path / "o.csv", *flags]
    code, err = _run(capsys, *args)
    assert code != 0
    assert len(err) == 1 and err[0].startswith("zonal-dask: error: "), err
    assert message in err[0]
    assert list(tmp_path.iterdir()) == []


def test_the_address_in_the_environment_takes_no_workers(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://127.0.0.1:9")
    code, err = _run(capsys, "z.gpkg", "r.tif", tmp_path / "o.csv", "--workers", "2")
    assert code == 1
    assert err == [
        "zonal-dask: error: --workers: the run goes to the scheduler at "
        "tcp://127.0.0.1:9 ($DASK_SCHEDULER_ADDRESS), with its own workers"
    ]


def test_warnings_are_one_line_in_words(tmp_path, capsys):
    bow_tie = shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])
    x0, y0, x1, y1 = GRID.bounds()
    scale = shapely.affinity.scale(bow_tie, (x1 - x0) / 2, (y1 - y0) / 2, origin=(0, 0))
    zones = tmp_path / "z.gpkg"
    zones_frame([shapely.affinity.translate(scale, x0, y0)]).to_file(zones)
    code, err = _run(capsys, zones, GRID.write(tmp_path / "g.tif"), tmp_path / "o.csv")
    assert code == 0
    assert err[0] == (
        f"zonal-dask: warning: {zones}: 1 invalid geometries repaired with make_valid"
    )
    assert len(err) == 2 and err[1].startswith("zonal-dask: 1 zone, ")


def _visible(stream: str) -> str:
    """What a terminal shows of a line redrawn with carriage returns."""
    shown = ""
    for part in stream.split("\r"):
        shown = part + shown[len(part) :]
    return shown


def test_the_progress_bar_leaves_no_stale_characters():
    out = io.StringIO()
    bar = Bar(out, width=10)
    bar(0.5, "500 of 1,000 tasks, 999.9 s")
    bar(1.0, "1 of 1 tasks, 1.0 s")
    assert _visible(out.getvalue()).rstrip() == "[##########] 100% 1 of 1 tasks, 1.0 s"
    bar.close()
    assert _visible(out.getvalue()).strip() == ""


class _FakeCluster:
    dashboard_link = "http://127.0.0.1:8787/status"


def test_the_dashboard_link_only_when_asked_and_served(monkeypatch):
    @contextmanager
    def fake(*args, dashboard):
        yield _FakeCluster() if dashboard else None

    monkeypatch.setattr(scheduler, "local_cluster", fake)
    for served, expected in ((True, [_FakeCluster.dashboard_link]), (False, [])):
        monkeypatch.setattr(scheduler, "has_dashboard", lambda served=served: served)
        told: list[str] = []
        with scheduler.scheduler(cluster=True, echo=told.append):
            pass
        assert told == expected
    with scheduler.scheduler(cluster=True, echo=None):  # -q: nobody to tell
        pass


def test_the_command_tells_the_dashboard_unless_quiet(inputs, tmp_path, monkeypatch):
    echoes = []

    @contextmanager
    def fake(*args, echo=None, **kwargs):
        echoes.append(echo)
        yield None

    monkeypatch.setattr(scheduler, "scheduler", fake)
    for quiet in ([], ["-q"]):
        out = tmp_path / f"o{len(quiet)}.csv"
        assert main([*map(str, inputs), str(out), "--cluster", *quiet]) == 0
    assert callable(echoes[0]) and echoes[1] is None


def test_a_local_cluster_without_a_dashboard(monkeypatch):
    import distributed

    seen = {}

    class Local:
        def __init__(self, **options):
            seen.update(options)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    class Client(Local):
        def __init__(self, local, **options):
            pass

    monkeypatch.setattr(distributed, "LocalCluster", Local)
    monkeypatch.setattr(distributed, "Client", Client)
    with local_cluster.local_cluster(1, 1, None, dashboard=False):
        pass
    # no dashboard, and the scheduler's HTTP routes on any free port
    assert seen["scheduler_kwargs"] == {"dashboard": False, "dashboard_address": ":0"}
    assert seen["preload"] == ["zonal_dask.run.local_cluster"]


def test_categorical_columns_in_every_format(data_dir, tmp_path):
    zones = data_dir / "rasterio" / "box.shp"
    raster = data_dir / "rasterio" / "RGB.byte.tif"
    expected = zd.zonal_stats(zones, raster, ["count"], categorical=True)
    classes = [str(c) for c in expected.columns[1:]]
    for name in ("c.gpkg", "c.fgb", "c.geojson", "c.parquet", "g.parquet"):
        out = tmp_path / name
        extra = ["--geometry"] if name == "g.parquet" else []
        args = [zones, raster, out, "--categorical", "--stats", "count", *extra]
        assert main([str(a) for a in args]) == 0, name
        if name == "c.parquet":
            got = pd.read_parquet(out)
        else:
            got = pyogrio.read_dataframe(out) if out.suffix != ".parquet" else None
            got = pd.read_parquet(out) if got is None else got
        assert [c for c in got.columns if c in classes] == classes, name
        for c in ["count", *classes]:
            np.testing.assert_array_equal(
                got[c].to_numpy(dtype=float), expected[c if c == "count" else int(c)]
            )


def test_text_tables_hold_every_statistic_and_leave_undefined_fields_empty(
    inputs, tmp_path
):
    txt, csv = tmp_path / "s.txt", tmp_path / "s.csv"
    assert main([*map(str, inputs), str(txt), "-q"]) == 0
    assert main([*map(str, inputs), str(csv), "-q"]) == 0
    lines = txt.read_text().splitlines()
    assert lines[0].split("\t") == ["min", "mean", "max", "std", "sum", "fid", "count"]
    assert lines[-1].split("\t") == ["", "", "", "", "", "8", "0"]  # outside
    assert "nan" not in txt.read_text() and "nan" not in csv.read_text()
    from_txt = pd.read_csv(txt, sep="\t", index_col="fid")
    from_csv = pd.read_csv(csv, index_col="fid")
    pd.testing.assert_frame_equal(from_txt[from_csv.columns], from_csv)
    pd.testing.assert_frame_equal(from_csv, zd.zonal_stats(*inputs))


def test_outside_fraction_is_zero_inside_the_raster(tmp_path):
    grid = make_grid((37, 53), seed=5)
    x0, y0, x1, y1 = grid.bounds()
    inside = shapely.box(x0, y0, x1, y1).buffer(-1e-6)
    cells = [shapely.intersection(c, inside) for c in voronoi_zones(grid, 40, seed=5)]
    cells = [c for c in cells if not c.is_empty]
    half = shapely.box((x0 + x1) / 2, y0 + 20, x1 + (x1 - x0) / 2, y1 - 20)
    table = zd.zonal_stats(
        zones_frame([*cells, half]), grid.write(tmp_path / "g.tif"), "outside_fraction"
    )
    assert (table["outside_fraction"].iloc[:-1] == 0.0).all()
    assert table["outside_fraction"].iloc[-1] == pytest.approx(0.5, rel=1e-12)


def test_a_resumed_run_says_so_reads_only_the_rest_and_cleans_up(
    inputs, tmp_path, capsys
):
    checkpoint = tmp_path / "ck"
    expected = zd.zonal_stats(*inputs, chunks=16, checkpoint=checkpoint)
    saved = sorted(checkpoint.glob("chunk-*.npz"))
    assert len(saved) == 12  # 3 x 4 chunks
    out = tmp_path / "stats.csv"
    args = [*inputs, out, "--chunks", 16, "--checkpoint", checkpoint]
    code, err = _run(capsys, *args)
    assert code == 0
    assert err[-1].startswith("zonal-dask: 9 zones, no pixel read, ")
    assert ", resumed: 12 of 12 chunks loaded, " in err[-1]
    assert not checkpoint.exists()  # removed once the output is written
    pd.testing.assert_frame_equal(pd.read_csv(out, index_col="fid"), expected)

    zd.zonal_stats(*inputs, chunks=16, checkpoint=checkpoint)
    for block in ("0-0", "2-3"):  # 16 x 16 and 8 x 2 pixels
        os.unlink(checkpoint / f"chunk-{block}.npz")
    code, err = _run(capsys, *args, "--overwrite")
    assert code == 0
    assert ", resumed: 10 of 12 chunks loaded, " in err[-1]
    assert err[-1].startswith("zonal-dask: 9 zones, 272 pixels read in ")
    pd.testing.assert_frame_equal(pd.read_csv(out, index_col="fid"), expected)


def test_the_summary_says_nothing_it_cannot_know(inputs, tmp_path, capsys):
    for stats, empty in [("histogram", None), ("unique", None), ("p90,mean", 1)]:
        code, err = _run(capsys, *inputs, tmp_path / f"{stats}.csv", "--stats", stats)
        assert code == 0
        if empty is None:
            assert "with no valid pixel" not in err[-1]
        else:
            assert err[-1].endswith(", 1 zone with no valid pixel")


def test_include_cols_from_the_command_line(inputs, tmp_path):
    out = tmp_path / "named.csv"
    assert main([*map(str, inputs), str(out), "--include-cols", "name"]) == 0
    table = pd.read_csv(out, index_col="fid")
    expected = zd.zonal_stats(*inputs, include_cols="name")
    pd.testing.assert_frame_equal(table, expected)
    long = tmp_path / "long.csv"
    args = [*inputs, long, "--include-cols", "name", "--band", "all"]
    assert main([str(a) for a in args]) == 0
    assert pd.read_csv(long).columns.tolist() == [
        "fid",
        "band",
        "name",
        *table.columns[1:],
    ]
    mapped = tmp_path / "mapped.csv"
    args = [*inputs, mapped, "--include-cols", "name", "--map", tmp_path / "m.png"]
    assert main([str(a) for a in args]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(mapped, index_col="fid"), expected)


def test_the_workers_preload_leaves_ctrl_c_and_words_warnings(monkeypatch, capsys):
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)
    previous = signal.getsignal(signal.SIGINT)
    try:
        local_cluster.dask_setup(worker=None)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("overflow\nin a chunk", RuntimeWarning, stacklevel=1)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert capsys.readouterr().err == "zonal-dask: warning: overflow in a chunk\n"
