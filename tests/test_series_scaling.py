"""Series files declaring a scale and an offset (GDAL's metadata) are read
decoded, each with its own pair, as ``zonal_stats`` reads one; a series
cube whose ``scale_factor``/``add_offset`` are not yet decoded (opened with
``mask_and_scale=False``) is summarised as xarray's decoding reads it;
``raw=True`` keeps the stored values (issue 22). The references:
``zonal_stats`` of each file, or of each step decoded by
``xarray.decode_cf`` (or read raw), one step at a time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import zonal_dask as zd
from zonal_dask.errors import SeriesError

from .reference import assert_tables_close
from .synth import make_grid, voronoi_zones, zones_frame

SHAPE = (30, 41)
DATES = pd.date_range("2024-01-01", periods=3, freq="D")
GRIDS = [make_grid(SHAPE, "int16", seed=240 + t, nodata=-1, loc=400) for t in range(3)]
FRAME = zones_frame(voronoi_zones(GRIDS[0], 6, seed=241))
STATS = ["count", "mean", "max", "sum"]


def _stored() -> xr.DataArray:
    """The cube as ``mask_and_scale=False`` gives it: int16, its encoding in
    its attributes."""
    arrays = [g.to_dataarray().rio.write_nodata(None) for g in GRIDS]
    cube = xr.concat(arrays, dim="time").assign_coords(time=DATES).rename("lst")
    cube.attrs.update(scale_factor=0.02, add_offset=-273.15, _FillValue=-1)
    return cube


def _step(cube: xr.Dataset, t: int) -> pd.DataFrame:
    step = cube.isel(time=t)
    table = pd.DataFrame({c: step[c].to_numpy() for c in STATS})
    return table.set_axis(pd.Index(step["fid"].to_numpy(), name="fid"))


def _decoded_steps() -> list[xr.DataArray]:
    decoded = xr.decode_cf(_stored().to_dataset())["lst"]
    assert decoded.dtype.kind == "f" and np.isnan(decoded).any()
    return [
        decoded.isel(time=t).rio.write_nodata(np.nan, encoded=False)
        for t in range(len(DATES))
    ]


@pytest.mark.parametrize("chunks", [None, (8, 11)])
def test_an_undecoded_cube_is_summarised_decoded(chunks):
    cube = zd.zonal_series(FRAME, _stored(), STATS, chunks=chunks)
    for t, step in enumerate(_decoded_steps()):
        expected = zd.zonal_stats(FRAME, step, STATS)
        assert_tables_close(_step(cube, t), expected, rtol=1e-12)
    # and as zonal_stats decodes one step of the same undecoded cube
    alone = zd.zonal_stats(FRAME, _stored().isel(time=1), STATS)
    assert_tables_close(_step(cube, 1), alone, rtol=1e-12)


def test_raw_keeps_the_stored_values():
    cube = zd.zonal_series(FRAME, _stored(), STATS, raw=True)
    for t, grid in enumerate(GRIDS):
        expected = zd.zonal_stats(FRAME, grid.to_dataarray(), STATS)
        assert_tables_close(_step(cube, t), expected, rtol=1e-12)


def test_a_netcdf_cube_decoded_unless_raw(tmp_path):
    path = tmp_path / "lst.nc"
    stored = _stored()
    decoded_cube = xr.decode_cf(stored.to_dataset())
    decoded_cube["lst"].encoding = {
        "dtype": "int16",
        **{k: stored.attrs[k] for k in ("scale_factor", "add_offset", "_FillValue")},
    }
    decoded_cube.to_netcdf(path)  # int16 on disk, with the attributes
    decoded = zd.zonal_series(FRAME, path, STATS)
    raw = zd.zonal_series(FRAME, path, STATS, raw=True)
    for t, step in enumerate(_decoded_steps()):
        expected = zd.zonal_stats(FRAME, step, STATS)
        assert_tables_close(_step(decoded, t), expected, rtol=1e-9)
        stored_step = zd.zonal_stats(FRAME, GRIDS[t].to_dataarray(), STATS)
        assert_tables_close(_step(raw, t), stored_step, rtol=1e-12)


def test_bands_declaring_different_scales_are_refused_in_one_line():
    stored = _stored()
    stack = xr.concat([stored, stored], dim="band").transpose("time", "band", "y", "x")
    stack = stack.assign_coords(band=[1, 2])
    stack.attrs = {"scales": (0.02, 0.5), "offsets": (0.0, 0.0), "_FillValue": -1}
    with pytest.raises(SeriesError, match="different scales") as raised:
        zd.zonal_series(FRAME, stack, STATS, band=None)
    assert "\n" not in str(raised.value)


def _scaled_files(tmp_path, pairs):
    """One GeoTIFF a step, each declaring its (scale, offset), or none."""
    import rasterio

    paths = []
    for t, (grid, pair) in enumerate(zip(GRIDS, pairs, strict=True)):
        path = grid.write(tmp_path / f"lst_{t}.tif")
        if pair is not None:
            with rasterio.open(path, "r+") as dst:
                dst.scales, dst.offsets = (pair[0],), (pair[1],)
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("chunks", [None, (8, 11)])
def test_files_declaring_scales_are_read_decoded_each_with_its_own(tmp_path, chunks):
    paths = _scaled_files(tmp_path, [(0.02, -273.15), (0.5, 0.0), (2.0, -1.0)])
    cube = zd.zonal_series(FRAME, paths, STATS, chunks=chunks)
    raw = zd.zonal_series(FRAME, paths, STATS, chunks=chunks, raw=True)
    for t, path in enumerate(paths):
        assert_tables_close(_step(cube, t), zd.zonal_stats(FRAME, path, STATS))
        stored = zd.zonal_stats(FRAME, path, STATS, raw=True)
        assert_tables_close(_step(raw, t), stored, rtol=1e-12)
    assert not np.allclose(_step(cube, 0)["mean"], _step(raw, 0)["mean"])


def test_files_declaring_a_scale_beside_files_without_are_refused(tmp_path):
    paths = _scaled_files(tmp_path, [(0.02, -273.15), None, (0.02, -273.15)])
    with pytest.raises(SeriesError, match=r"lst_1\.tif: declares no scale") as raised:
        zd.zonal_series(FRAME, paths, STATS)
    assert "\n" not in str(raised.value)
    raw = zd.zonal_series(FRAME, paths, STATS, raw=True)  # stored values: fine
    assert_tables_close(
        _step(raw, 1), zd.zonal_stats(FRAME, paths[1], STATS), rtol=1e-12
    )
