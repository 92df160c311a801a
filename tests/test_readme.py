"""The README says what the code does: its tables are made from the code, and
every command and code block in it runs.

Blocks are fenced. ``python`` blocks are executed, each on its own, in a
directory holding the example files the README names; ``sh`` blocks are run
line by line through ``zonal_dask.cli.main.main`` (only ``zonal-dask`` commands);
``text`` blocks show the usage or the summary line and are checked against
them. A block preceded by ``<!-- not run: REASON -->`` (a cluster address, an
install) is only checked: Python compiled, shell by ``bash -n``, each
``zonal-dask`` command parsed by the command's own parser. ``<!-- run as a
script -->`` runs a Python block as ``python FILE.py``.
"""

from __future__ import annotations

import inspect
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import rasterio

import zonal_dask as zd
from zonal_dask.cli.main import main
from zonal_dask.cli.options import USAGE, build_parser
from zonal_dask.statistics.names import markdown_table

from .synth import make_grid, voronoi_zones, zones_frame

README = Path(__file__).resolve().parents[1] / "README.md"
TEXT = README.read_text()
SECTIONS = [
    "Quickstart",
    "The command line",
    "Python",
    "Statistics and pixel rules",
    "Outputs",
    "From a laptop to a cluster",
    "Coming from another tool",
    "Limits and errors",
    "Performance",
    "Development",
]
INSTALLS = ("demo-command", "test-command")
MARKERS = ("not run:", "run as a script", *INSTALLS)
SUMMARY = re.compile(
    r"zonal-dask: [\d,]+ zones?, [\d,]+ pixels? read in [\d.]+ s \([\d.]+ Mpixel/s\), "
    r"peak memory [\d,]+ MB, [\d,]+ zones? with no valid pixel"
)


class Block(NamedTuple):
    line: int
    kind: str
    code: str
    marker: str


def _blocks(text: str) -> list[Block]:
    lines = text.splitlines()
    blocks, start, kind = [], None, ""
    for i, line in enumerate(lines):
        if not line.startswith("```"):
            continue
        if start is None:
            start, kind = i, line[3:].strip()
            continue
        before = [x for x in lines[:start] if x.strip()]
        marker = before[-1].removeprefix("<!--").removesuffix("-->").strip()
        if not marker.startswith(MARKERS):
            marker = ""
        blocks.append(Block(start + 1, kind, "\n".join(lines[start + 1 : i]), marker))
        start = None
    assert start is None, f"README.md:{start + 1}: unclosed code block"
    return blocks


BLOCKS = _blocks(TEXT)


def _between(text: str, marker: str) -> str:
    start = text.index(f"<!-- {marker} -->\n") + len(f"<!-- {marker} -->\n")
    return text[start : text.index(f"<!-- /{marker} -->")].strip()


def test_the_statistics_table_is_the_registry():
    assert _between(TEXT, "statistics") == markdown_table()


def test_a_manual_read_top_down():
    titles = re.findall(r"^## (.+)$", TEXT, flags=re.MULTILINE)
    assert titles == SECTIONS
    assert len(TEXT.encode()) < 20_000
    assert not re.search(r"\b20\d\d-\d\d-\d\d\b", TEXT), (
        "dated figures go to benchmarks"
    )
    outside = [
        line
        for line in re.sub(r"```.*?```", "", TEXT, flags=re.DOTALL).splitlines()
        if line.startswith("    ")
    ]
    assert outside == [], "indented code escapes the tests: fence it"


def test_the_signature_in_the_readme_is_the_function_s():
    shown = re.search(r"`zonal_stats\((zones, raster.*?)\)`", TEXT, flags=re.DOTALL)
    assert shown is not None
    names = [p.split("=")[0].strip() for p in shown.group(1).split(",")]
    names = [n for n in names if n not in ("", "*")]
    assert names == list(inspect.signature(zd.zonal_stats).parameters)


@pytest.fixture(scope="module")
def examples(tmp_path_factory) -> Path:
    """The files the README's examples name, small, on one grid."""
    d = tmp_path_factory.mktemp("readme")
    pop = make_grid((60, 80), "uint16", seed=21, loc=50, scale=20, nodata=65535)
    pop.write(d / "pop.tif")
    cells = voronoi_zones(pop, 12, seed=21)
    borders = zones_frame(cells).assign(code=np.arange(101, 101 + len(cells)))
    borders.to_file(d / "borders.gpkg", engine="pyogrio")
    classes = make_grid((60, 80), "uint8", seed=22, loc=3, scale=1.5, nodata=0)
    classes.write(d / "landcover.tif")
    labels = make_grid((60, 80), "int32", seed=23, loc=3, scale=2, nodata=None)
    labels.write(d / "watersheds.tif")
    profile = {"driver": "GTiff", "count": 3, "dtype": "float32", "nodata": -1.0}
    profile.update(height=60, width=80, crs=pop.crs, transform=pop.transform)
    with rasterio.open(d / "ndvi.tif", "w", **profile) as dst:
        for band in (1, 2, 3):
            dst.write(make_grid((60, 80), seed=30 + band, nodata=-1.0).values, band)
    for day in (1, 2, 3):  # a daily series on the same grid
        make_grid((60, 80), seed=40 + day).write(d / f"lst_2024-01-0{day}.tif")
    return d


def _commands(code: str) -> list[str]:
    return [c for c in code.replace("\\\n", " ").splitlines() if c.strip()]


def _check_shell(code: str) -> None:
    check = subprocess.run(["bash", "-n"], input=code, text=True, capture_output=True)
    assert check.returncode == 0, check.stderr
    for command in _commands(code):
        words = shlex.split(command)
        while words and "=" in words[0]:  # VARIABLE=value before the command
            words = words[1:]
        if words[:1] == ["zonal-dask"] and words[1:2] != ["demo"]:
            build_parser().parse_args(words[1:])


@pytest.mark.parametrize(
    "block",
    [  # a script starts a LocalCluster's worker processes
        pytest.param(b, marks=pytest.mark.slow) if b.marker == "run as a script" else b
        for b in BLOCKS
    ],
    ids=lambda b: f"line{b.line}-{b.kind}",
)
def test_the_block_runs(block, examples, monkeypatch, capsys):
    monkeypatch.chdir(examples)
    if block.kind == "text":
        assert block.code.startswith("zonal-dask")
        if block.code.startswith("zonal-dask ZONES"):
            assert block.code.split() == USAGE.split()
        else:
            assert SUMMARY.fullmatch(block.code), block.code
        return
    assert block.kind in ("python", "sh", ""), f"line {block.line}: {block.kind}"
    if block.marker.startswith("not run") or block.marker in INSTALLS:
        assert block.marker in INSTALLS or block.marker.split(":", 1)[1].strip()
        if block.kind == "python":
            compile(block.code, f"README.md:{block.line}", "exec")
        else:
            _check_shell(block.code)
        return
    if block.kind == "python" and block.marker == "run as a script":
        script = examples / f"readme_{block.line}.py"
        script.write_text(block.code)
        done = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        return
    if block.kind == "python":
        exec(compile(block.code, f"README.md:{block.line}", "exec"), {})
        return
    for command in _commands(block.code):
        words = shlex.split(command)
        assert words[0] == "zonal-dask", f"only zonal-dask commands run: {command}"
        capsys.readouterr()
        assert main(words[1:]) == 0, (command, capsys.readouterr().err)
