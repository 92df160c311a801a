"""Series outputs at URLs: staged under a hidden prefix on the same store,
published by the client only once every batch is in, appended to with the
new steps only; fsspec's ``memory://`` file system and the loopback S3
server (moto) stand for object storage."""

from __future__ import annotations

import fsspec
import pandas as pd
import pytest
import xarray as xr

import zonal_dask as zd
from zonal_dask.io.location import storage_options
from zonal_dask.series import cube_files, cube_store
from zonal_dask.series.cube import to_long

from .shared_nothing import BUCKET, url
from .test_series import DATES
from .test_series_output import FRAME, STATS, series


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from .test_series import write_steps

    return write_steps(tmp_path_factory.mktemp("url-cube"))


@pytest.fixture(scope="module")
def full(files):
    return zd.zonal_series(FRAME, files, STATS, time_pattern="%Y-%m-%d", batch=2)


@pytest.fixture
def memory():
    """An empty ``memory://`` store, emptied again after the test."""
    fs = fsspec.filesystem("memory")
    fs.rm("/", recursive=True) if fs.ls("/") else None
    yield fs
    fs.rm("/", recursive=True) if fs.ls("/") else None


@pytest.fixture
def fresh_s3(s3):
    """s3fs keeps its file systems by arguments: one made before the S3
    server's credentials were set would be reused without them."""
    type(fsspec.filesystem("s3")).clear_instance_cache()
    yield s3
    type(fsspec.filesystem("s3")).clear_instance_cache()


def objects(fs, root="/out") -> dict:
    """Every object under ``root`` with its bytes."""
    return {p: fs.cat_file(p) for p in fs.find(root)}


def read_back(where: str, fs) -> xr.Dataset | pd.DataFrame:
    if where.endswith(".parquet"):
        return pd.read_parquet(fs.open(where.split("://")[1]))
    return zd.open_cube(where).load()


def assert_same(actual, expected):
    if isinstance(actual, pd.DataFrame):
        pd.testing.assert_frame_equal(actual, to_long(expected), check_dtype=False)
    else:
        xr.testing.assert_identical(actual.drop_attrs(), expected.drop_attrs())


@pytest.mark.parametrize("suffix", [".zarr", ".nc", ".parquet"])
def test_a_series_written_to_a_url_equals_the_local_one(files, full, memory, suffix):
    where = f"memory://out/lst{suffix}"
    assert list(series(files, where)) == list(DATES.to_numpy())
    assert_same(read_back(where, memory), full)
    assert memory.ls("/out", detail=False) == [f"/out/lst{suffix}"]  # no staging


@pytest.mark.parametrize("suffix", [".zarr", ".parquet"])
def test_appending_to_a_url_equals_a_full_run(files, full, memory, suffix):
    where = f"memory://out/lst{suffix}"
    assert len(series(files[:2], where)) == 2
    assert len(series(files[:4], where, append=True, batch=1)) == 2
    assert len(series(files, where, append=True)) == 1
    before = objects(memory)
    assert series(files, where, append=True) == []
    assert objects(memory) == before  # nothing new: untouched
    assert_same(read_back(where, memory), full)
    assert memory.ls("/out", detail=False) == [f"/out/lst{suffix}"]


@pytest.mark.parametrize("suffix", [".zarr", ".parquet"])
def test_refusals_at_a_url_leave_the_output_and_no_staging(files, memory, suffix):
    where = f"memory://out/lst{suffix}"
    series(files[:3], where)
    before = objects(memory)
    with pytest.raises(zd.OutputError, match=r"made with other statistics or options"):
        zd.zonal_series(
            FRAME, files, ["mean"], time_pattern="%Y-%m-%d", output=where, append=True
        )
    with pytest.raises(zd.OutputError, match="made with other zones"):
        zd.zonal_series(
            FRAME.iloc[:5],
            files,
            STATS,
            time_pattern="%Y-%m-%d",
            output=where,
            append=True,
        )
    with pytest.raises(
        zd.OutputError, match=r"^memory://out/lst\.\w+: exists \(use --overwrite"
    ):
        series(files, where)
    assert objects(memory) == before


@pytest.mark.parametrize("suffix", [".zarr", ".nc", ".parquet"])
def test_an_output_published_at_the_url_meanwhile_is_not_replaced(
    files, memory, monkeypatch, suffix
):
    where = f"memory://out/lst{suffix}"
    series(files[:1], f"memory://other/lst{suffix}")
    commit = cube_store.Output.commit

    def race(self, identity):
        memory.copy(f"/other/lst{suffix}", f"/out/lst{suffix}", recursive=True)
        return commit(self, identity)

    monkeypatch.setattr(cube_store.Output, "commit", race)
    with pytest.raises(zd.OutputError, match="written by another run meanwhile"):
        series(files, where)
    assert read_back(where, memory).equals(
        read_back(f"memory://other/lst{suffix}", memory)
    )
    assert memory.ls("/out", detail=False) == [f"/out/lst{suffix}"]


def test_an_interrupted_run_leaves_no_output_and_no_staging(files, memory, monkeypatch):
    add = cube_store.Output.add
    staged = []

    def interrupted(self, cube):
        if self.times:  # the second batch: the first is staged
            staged.extend(p for p in memory.find("/out") if ".series-" in p)
            raise KeyboardInterrupt
        return add(self, cube)

    monkeypatch.setattr(cube_store.Output, "add", interrupted)
    with pytest.raises(KeyboardInterrupt):
        series(files, "memory://out/lst.zarr")
    assert staged, "the first batch was not staged under a hidden prefix"
    assert memory.find("/out") == []


def test_a_store_is_published_metadata_last(files, memory, monkeypatch):
    copied = []
    copy = type(memory).copy

    def recording(self, path1, path2, *args, **kwargs):
        copied.append(path2)
        return copy(self, path1, path2, *args, **kwargs)

    monkeypatch.setattr(type(memory), "copy", recording)
    series(files[:2], "memory://out/lst.zarr")
    names = [p.split("/out/lst.zarr/")[1] for p in copied]
    assert names[-1] == "zarr.json"  # the root group: the store appears last
    metadata = [i for i, n in enumerate(names) if n.endswith("zarr.json")]
    chunks = [i for i, n in enumerate(names) if "/c/" in n]
    assert chunks and max(chunks) < min(metadata)


def test_an_append_on_s3_copies_only_what_it_changed(
    files, full, fresh_s3, monkeypatch
):
    """Chunks of one step along time: the old steps' chunks are neither
    staged nor published again, and the cube equals a full run."""
    monkeypatch.setattr(cube_files, "TIME_CHUNK", 1)
    where = url("append-only.zarr")
    series(files[:3], where)
    fs = fsspec.filesystem("s3", **storage_options(where))  # the writers' own
    fs.invalidate_cache()
    before = {p: i["ETag"] for p, i in fs.find(where, detail=True).items()}
    copied = []
    copy = fs.copy  # s3fs: a method of the (cached) instance

    def recording(path1, path2, *args, **kwargs):
        copied.extend(path2 if isinstance(path2, list) else [path2])
        return copy(path1, path2, *args, **kwargs)

    monkeypatch.setattr(fs, "copy", recording)
    assert len(series(files, where, append=True)) == 2

    def relative(path: str) -> str:
        return path.split("append-only.zarr/", 1)[1]

    old_chunks = {relative(p) for p in before if "/mean/c/" in p}
    touched = {relative(p) for p in copied if "append-only.zarr/" in p}
    assert len(old_chunks) == 3 and not old_chunks & touched
    assert {"mean/c/0/3", "mean/c/0/4", "mean/zarr.json", "zarr.json"} <= touched
    assert_same(zd.open_cube(where).load(), full)
    fs.invalidate_cache()
    assert not [p for p in fs.ls(BUCKET, detail=False) if p.endswith(".tmp")]
    after = {p: i["ETag"] for p, i in fs.find(where, detail=True).items()}
    assert all(after[p] == before[p] for p in before if "/mean/c/" in p)


def test_a_bucket_that_is_not_there_is_one_line_before_any_work(files, s3, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("computed before the output was checked")

    monkeypatch.setattr(cube_store.Output, "add", never)
    with pytest.raises(zd.OutputError) as refused:
        series(files, "s3://no-such-bucket/lst.zarr")
    line = str(refused.value)
    assert line.startswith("s3://no-such-bucket/lst.zarr: cannot write there (")
    assert line.endswith("); nothing computed") and "\n" not in line


def test_a_gdal_virtual_path_is_refused_as_an_output(files):
    with pytest.raises(zd.OutputError, match="GDAL virtual path can be read, not"):
        series(files, "/vsis3/bucket/lst.zarr")


def test_a_ctrl_c_while_objects_are_written_waits_for_the_write():
    """fsspec writes on its own thread: the interrupt is held until the block
    ends, never raised with a write in flight."""
    import os
    import signal

    from zonal_dask.series.cube_publish import interrupts_deferred

    done = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts_deferred(True):
            os.kill(os.getpid(), signal.SIGINT)
            done.append("the write went on")
    assert done == ["the write went on"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_overwriting_a_store_at_a_url_leaves_only_the_new_one(files, memory):
    where = "memory://out/lst.zarr"
    series(files, where)
    assert len(series(files[:2], where, overwrite=True)) == 2
    fresh = "memory://fresh/lst.zarr"
    series(files[:2], fresh)
    ours = {p.split("/lst.zarr/")[1]: b for p, b in objects(memory).items()}
    theirs = objects(memory, "/fresh")
    assert ours == {p.split("/lst.zarr/")[1]: b for p, b in theirs.items()}
    assert zd.open_cube(where).sizes["time"] == 2
