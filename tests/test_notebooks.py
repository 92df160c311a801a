"""The notebooks run from top to bottom, and git holds them without outputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import zonal_dask as zd

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


def test_the_notebooks_are_there():
    assert [p.name for p in NOTEBOOKS] == [
        "01-laptop.ipynb",
        "02-cluster.ipynb",
        "03-time-series.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_notebook_is_stored_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source


@pytest.mark.timeout(300)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_notebook_runs(path, tmp_path, monkeypatch):
    """On a LocalCluster and, for the COG, on moto's S3 server on 127.0.0.1."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "DASK_", "ZONAL_DASK_")):
            monkeypatch.delenv(name)
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=240,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    figures = [
        output
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    ]
    if path.stem == "01-laptop":
        assert len(figures) == 2  # the choropleth map and the histogram
        assert (
            (tmp_path / "zonal-dask-demo" / "stats.txt")
            .read_text()
            .startswith("min\tmean\tmax\tstd\tsum\tfid\n")
        )
    elif path.stem == "02-cluster":
        said = printed(notebook)
        assert "saved to s3://zonal-dask-demo/run/zones.plan.zarr" in said
        assert "identical to the local file's result" in said
    else:
        assert len(figures) == 2  # a date on the map, a zone's series
        cube = tmp_path / "zonal-dask-series" / "ndvi.zarr"
        assert zd.open_cube(cube).sizes["time"] == 13


def printed(notebook) -> str:
    """What the notebook's cells printed."""
    return "".join(
        output.get("text", "")
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream"
    )
