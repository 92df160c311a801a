"""Locations classified once on the client: local paths absolute, URLs kept."""

from __future__ import annotations

import os

import cloudpickle
import fsspec
import pytest

import zonal_dask as zd
from zonal_dask.io.location import locate, publish_directory
from zonal_dask.run.checkpoint import saved_blocks

from .synth import make_grid, voronoi_zones, zones_frame

GRID = make_grid((40, 48), seed=21)
FRAME = zones_frame(voronoi_zones(GRID, 7, seed=21))


@pytest.mark.parametrize(
    ("given", "url", "remote"),
    [
        ("s3://bucket/a/out.zarr", "s3://bucket/a/out.zarr", True),
        ("gs://b/x.parquet", "gs://b/x.parquet", True),
        ("az://c/x", "az://c/x", True),
        ("https://h/x.tif", "https://h/x.tif", True),
        ("/vsis3/b/x.tif", "/vsis3/b/x.tif", True),
        ("file:///data/x.tif", "/data/x.tif", False),
        ("/data/../data/x.tif", "/data/x.tif", False),
        ("C:\\data", None, False),
    ],
)
def test_a_location_is_classified_once(given, url, remote, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    where = locate(given)
    assert where.remote is remote
    assert where.url == (url or os.path.join(str(tmp_path), given))
    if remote and "://" in given:  # never collapsed to "s3:/bucket" as Path does
        assert where.join("part-0").url == f"{given}/part-0"
        assert where.parent.join(where.name).url == given


def test_a_relative_path_is_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert locate("ck").url == str(tmp_path / "ck")
    assert locate("ck").parent.url == str(tmp_path)


def test_a_relative_raster_path_reaches_the_tasks_absolute(tmp_path, monkeypatch):
    """The workers resolve nothing against their own working directory."""
    GRID.write(tmp_path / "grid.tif")
    monkeypatch.chdir(tmp_path)
    lazy = zd.zonal_stats(FRAME, "grid.tif", chunks=16, compute=False)
    shipped = cloudpickle.dumps(dict(lazy.__dask_graph__()))
    assert str(tmp_path / "grid.tif").encode() in shipped
    expected = zd.zonal_stats(FRAME, tmp_path / "grid.tif", chunks=16)
    monkeypatch.chdir(tmp_path.parent)  # the computing process is elsewhere
    assert lazy.compute().equals(expected)


def test_a_checkpoint_url_is_written_through_fsspec(tmp_path):
    """A URL is never taken as a local path (``Path`` made ``memory:/ck``)."""
    fs = fsspec.filesystem("memory")
    raster = GRID.write(tmp_path / "grid.tif")
    plain = zd.zonal_stats(FRAME, raster, chunks=16)
    url = "memory://zonal-test/ck"
    try:
        assert zd.zonal_stats(FRAME, raster, chunks=16, checkpoint=url).equals(plain)
        assert len(saved_blocks(url)) == 3 * 3
        assert fs.exists("/zonal-test/ck/checkpoint.json")
        fs.rm("/zonal-test/ck/chunk-1-1.npz")
        fs.pipe_file("/zonal-test/ck/chunk-0-0.npz", b"damaged")
        with pytest.warns(UserWarning, match="damaged checkpoint chunk"):
            again = zd.zonal_stats(FRAME, raster, chunks=16, checkpoint=url)
        assert again.equals(plain)
        assert len(saved_blocks(url)) == 3 * 3
        assert not os.path.exists("memory:")
    finally:
        fs.rm("/zonal-test", recursive=True)


def test_a_staged_directory_is_published_whole_or_refused(tmp_path):
    fs = fsspec.filesystem("memory")
    target = locate("memory://zonal-publish/out.parquet")
    staged = target.sibling("staged")
    try:
        for i in range(3):
            fs.pipe_file(f"{staged.fs_path}/part.{i}.parquet", b"x%d" % i)
        publish_directory(staged, target)
        assert sorted(fs.ls(target.fs_path, detail=False)) == [
            f"/zonal-publish/out.parquet/part.{i}.parquet" for i in range(3)
        ]
        assert not fs.exists(staged.fs_path)
        fs.pipe_file(f"{staged.fs_path}/part.0.parquet", b"new")
        with pytest.raises(FileExistsError):
            publish_directory(staged, target)
        publish_directory(staged, target, overwrite=True)
        assert fs.ls(target.fs_path, detail=False) == [
            "/zonal-publish/out.parquet/part.0.parquet"
        ]
    finally:
        fs.rm("/zonal-publish", recursive=True)
    local = locate(tmp_path / "out.parquet")
    staged = local.sibling("staged")
    os.makedirs(staged.url)
    publish_directory(staged, local)
    assert os.path.isdir(local.url) and not os.path.exists(staged.url)
