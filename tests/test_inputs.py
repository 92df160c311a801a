"""Inputs GDAL, xarray and geopandas hand over that once gave wrong answers
or tracebacks (issue 13): each class generated, compared with the float64
one-polygon-at-a-time reference or refused with one line."""

from __future__ import annotations

import json
import os
import warnings

import cloudpickle
import numpy as np
import pytest
import rasterio
import rioxarray  # noqa: F401  (the rio accessor)
import shapely
import xarray as xr
from affine import Affine
from dask._task_spec import Task
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.enums import ColorInterp, MaskFlags

import zonal_dask as zd
from zonal_dask.cli.main import main
from zonal_dask.io.masks import read_mask
from zonal_dask.labels import sources

from .reference import assert_tables_close, reference_stats, reference_table
from .synth import Grid, make_grid, voronoi_zones, zones_frame


def _small_and_large_zones(grid, seed: int, chunks: tuple[int, int]):
    """Zones all over the grid: slivers holding no pixel centre, laid across
    chunk edges so their touched pixels fall in several chunks, and discs."""
    rng = np.random.default_rng(seed)
    rows, cols = grid.shape
    zones = []
    for _ in range(30):
        # a pixel corner on a chunk edge, in pixel units
        r = rng.integers(1, rows // chunks[0]) * chunks[0]
        c = rng.integers(0, cols)
        if rng.random() < 0.5:
            r, c = rng.integers(0, rows), rng.integers(1, cols // chunks[1]) * chunks[1]
        x, y = grid.transform @ (c + rng.uniform(-0.3, 0.3), r + rng.uniform(-0.3, 0.3))
        zones.append(shapely.Point(x, y).buffer(0.2 * grid.transform.a))
        x, y = grid.transform @ rng.uniform((0, 0), (cols, rows))
        zones.append(shapely.Point(x, y).buffer(rng.uniform(1, 5) * grid.transform.a))
    return zones


@pytest.mark.parametrize("in_pieces", [False, True], ids=["whole", "pieces"])
def test_small_touched_with_values_statistics_over_several_groups(
    monkeypatch, in_pieces
):
    """The all-touched stand-ins of pixel-less zones (virtual zones N + z) go to
    their zone's value group wherever they occur: medians, percentiles and
    custom functions equal the reference's for zones spread over many groups
    and chunks, also when the burner gives chunks in pieces (a tiny budget of
    sparse claims, so that overlapping zones split every chunk they meet)."""
    grid = make_grid((60, 70), "float64", seed=131, nodata=-9999.0)
    geometries = _small_and_large_zones(grid, 131, (11, 13))
    # a zone over everything: every chunk has overlaps
    geometries.append(shapely.box(*grid.bounds()).buffer(-grid.transform.a / 3))
    frame = zones_frame(geometries)
    monkeypatch.setattr(
        "zonal_dask.labels.build.TARGET_CHUNK_PIXELS", 40
    )  # many groups
    split = []
    if in_pieces:
        burnt = sources.polygon_labels

        def polygon_labels(task, all_touched=False):
            out = burnt(task, all_touched)
            split.append(isinstance(out, sources.BurntPieces))
            return out

        monkeypatch.setattr(sources, "sparse_budget", lambda shape: 1)
        monkeypatch.setattr(sources, "polygon_labels", polygon_labels)
    stats = ["count", "median", "p90", "mean"]
    custom = {"spread": lambda v: float(v.max() - v.min())}
    table = zd.zonal_stats(
        frame,
        grid.to_dataarray(),
        stats={**{s: s for s in stats}, **custom},
        small="touched",
        chunks=(11, 13),
        split_every=2,
    )
    centre = reference_table(
        geometries, grid, frame.index, [*stats, "range", "nodata_count"]
    )
    touched = reference_table(
        geometries,
        grid,
        frame.index,
        [*stats, "range", "nodata_count"],
        all_touched=True,
    )
    small = (centre["count"] + centre["nodata_count"] == 0) & (
        touched["count"] + touched["nodata_count"] > 0
    )
    assert small.sum() >= 5
    expected = centre[[*stats, "range"]].copy()
    expected.loc[small] = touched.loc[small, [*stats, "range"]]
    expected = expected.rename(columns={"range": "spread"})
    assert table["small"].tolist() == small.tolist()
    assert_tables_close(table[[*stats, "spread"]], expected)
    assert any(split) == in_pieces


# -- masks GDAL declares -------------------------------------------------------


def _write_masked(path, values, mask, *, kind, nodata=None):
    """A GeoTIFF of ``values`` (bands, rows, cols) whose pixels with ``mask`` 0
    GDAL marks invalid: an internal or external per-dataset mask, or an alpha
    band after the value bands."""
    bands, rows, cols = values.shape
    profile = {
        "driver": "GTiff",
        "height": rows,
        "width": cols,
        "count": bands + (kind == "alpha"),
        "dtype": values.dtype.name,
        "crs": GRID.crs,
        "transform": GRID.transform,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": 16,
        "blockysize": 16,
    }
    if kind == "alpha":
        profile["photometric"] = "RGB"  # three values and an alpha band
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=kind == "internal"):
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(values, indexes=list(range(1, bands + 1)))
            if kind == "alpha":
                dst.write(np.where(mask, 255, 0).astype(values.dtype), bands + 1)
                rgb = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
                dst.colorinterp = [*rgb, ColorInterp.alpha]
            else:
                dst.write_mask(np.where(mask, 255, 0).astype(np.uint8))
    return path


GRID = make_grid((45, 52), "uint8", seed=133, nodata=None)


@pytest.mark.parametrize(
    ("kind", "dtype"),
    [
        ("internal", "uint8"),
        ("internal", "int16"),
        ("external", "float32"),
        ("external", "uint8"),
        ("alpha", "uint8"),  # RGBA imagery (GTiff makes alpha a mask for bytes)
    ],
)
def test_pixels_gdal_masks_are_nodata(tmp_path, kind, dtype):
    rng = np.random.default_rng(134)
    values = rng.integers(1, 200, (3, *GRID.shape)).astype(dtype)
    values[:, rng.random(GRID.shape) < 0.05] = 7  # the nodata value
    mask = rng.random(GRID.shape) > 0.3
    # GDAL's mask is the nodata value when a band has one, else the alpha band:
    # the alpha file has none, and nodata comes as an override
    own = None if kind == "alpha" else 7
    path = _write_masked(tmp_path / "masked.tif", values, mask, kind=kind, nodata=own)
    override = {"nodata": 7} if own is None else {}
    with rasterio.open(path) as src:
        flag = MaskFlags.alpha if kind == "alpha" else MaskFlags.per_dataset
        assert flag in src.mask_flag_enums[0]
    geometries = voronoi_zones(GRID, 12, seed=134)
    frame = zones_frame(geometries)
    stats = ["count", "nodata_count", "mean", "std", "median", "majority"]
    both = zd.zonal_stats(frame, path, stats, band=None, chunks=(16, 16), **override)
    for band in (1, 2):
        # the reference: the same values with the masked pixels NaN
        hidden = np.where(mask, values[band - 1].astype(np.float64), np.nan)
        reference = Grid(hidden, GRID.transform, 7.0)
        expected = reference_table(geometries, reference, frame.index, stats)
        for chunks in (None, (9, 20)):
            actual = zd.zonal_stats(
                frame, path, stats, band=band, chunks=chunks, **override
            )
            assert_tables_close(actual, expected)
        together = both.sel(band=band).to_dataframe()[stats].rename_axis("fid")
        assert_tables_close(together, expected)
    if dtype == "uint8":  # checked against the file's dtype, not the float read
        with pytest.raises(zd.NodataError, match="nodata 300 is not a value of"):
            zd.zonal_stats(frame, path, nodata=300)


def _functions(task):
    """The functions a task calls, nested tasks included."""
    if isinstance(task, Task):
        yield task.func
        task = task.args
    elif type(task) is tuple and task and callable(task[0]):
        yield task[0]
        task = task[1:]
    if isinstance(task, (tuple, list)):
        for part in task:
            yield from _functions(part)


def test_masks_are_read_by_the_workers(tmp_path):
    """The graph holds the mask reads as tasks naming the file, not arrays
    made on the client: its size does not grow with the raster."""
    rng = np.random.default_rng(135)
    sizes = []
    for side in (64, 512):
        values = rng.integers(0, 9, (1, side, side)).astype("uint8")
        grid = Grid(values[0], GRID.transform)
        path = _write_masked(
            tmp_path / f"m{side}.tif", values, values[0] > 0, kind="internal"
        )
        frame = zones_frame(voronoi_zones(grid, 4, seed=135))
        lazy = zd.zonal_stats(frame, path, chunks=64, compute=False)
        graph = dict(lazy.__dask_graph__())
        # nested in each chunk task, beside the read of its values
        assert any(read_mask in set(_functions(task)) for task in graph.values())
        sizes.append(len(cloudpickle.dumps(graph)) / (side // 64) ** 2)
    assert sizes[1] < sizes[0]  # per chunk, the bigger raster's graph is not bigger


def test_a_masked_label_raster_leaves_masked_pixels_without_a_zone(tmp_path):
    rng = np.random.default_rng(136)
    labels = rng.integers(0, 5, (1, *GRID.shape)).astype("int32")
    mask = rng.random(GRID.shape) > 0.2
    path = _write_masked(tmp_path / "labels.tif", labels, mask, kind="internal")
    values = make_grid(GRID.shape, "float32", seed=136, nodata=None)
    actual = zd.zonal_stats(path, values.to_dataarray(), ["count", "sum"])
    for zone in actual.index:
        inside = (labels[0] == zone) & mask
        assert actual.loc[zone, "count"] == inside.sum()
        assert actual.loc[zone, "sum"] == pytest.approx(
            values.values[inside].astype(np.float64).sum(), rel=1e-12
        )


# -- DataArrays as xarray and NetCDF hand them over ----------------------------


@st.composite
def dataarray_layouts(draw):
    """A band stack as a DataArray with its dimensions in any order, named
    y/x, lat/lon or latitude/longitude, north-up or south-up."""
    names = draw(
        st.sampled_from([("y", "x"), ("lat", "lon"), ("latitude", "longitude")])
    )
    order = draw(st.permutations(["band", "y", "x"]))
    south_up = draw(st.booleans())
    with_transform = draw(st.booleans())
    return names, order, south_up, with_transform


LAYERS = make_grid((23, 31), "float32", seed=138, nodata=-9999.0)
LAYER_ZONES = voronoi_zones(LAYERS, 7, seed=138)


@settings(max_examples=25, deadline=None, database=None)
@given(dataarray_layouts(), st.sampled_from([None, (8, 11)]))
def test_dataarrays_in_any_dimension_order_and_names(layout, chunks):
    (ydim, xdim), order, south_up, with_transform = layout
    values = np.stack([LAYERS.values, LAYERS.values * 2 + 1])
    transform = LAYERS.transform
    if south_up:  # rows from the south: the same pixels, flipped
        values = values[:, ::-1]
        transform = (
            transform * Affine.translation(0, LAYERS.shape[0]) * Affine.scale(1, -1)
        )
    array = Grid(values[0], transform, -9999.0).to_dataarray()
    array = xr.concat([array, array.copy(data=values[1])], dim="band")
    array = array.assign_coords(band=[1, 2]).rio.write_crs(LAYERS.crs)
    if with_transform:
        array = array.rio.write_transform(transform)
    array = array.rename({"y": ydim, "x": xdim}).transpose(
        *[{"y": ydim, "x": xdim}.get(d, d) for d in order]
    )
    frame = zones_frame(LAYER_ZONES)
    for band in (1, 2):
        expected = reference_stats(
            LAYER_ZONES,
            Grid(values[band - 1], transform, -9999.0),
            frame.index,
        )
        actual = zd.zonal_stats(frame, array, band=band, chunks=chunks)
        assert_tables_close(actual, expected)


def test_uneven_coordinates_are_refused():
    array = LAYERS.to_dataarray()
    x = array.x.values.copy()
    x[5:] += 0.5 * LAYERS.transform.a  # a Gaussian-like, uneven grid
    uneven = array.assign_coords(x=x)
    uneven.rio.write_transform(LAYERS.transform, inplace=True)
    with pytest.raises(zd.RasterError, match="x coordinates are not the evenly spaced"):
        zd.zonal_stats(zones_frame(LAYER_ZONES), uneven)
    nameless = xr.DataArray(LAYERS.values, dims=("a", "b"))
    with pytest.raises(
        zd.RasterError, match=r"cannot tell its y and x among .*'a', 'b'"
    ):
        zd.zonal_stats(zones_frame(LAYER_ZONES), nameless, assume_same_crs=True)


# -- dtypes numba cannot take ---------------------------------------------------


@pytest.mark.parametrize("dtype", ["float16", "bool"])
def test_float16_and_booleans_are_widened(dtype):
    values = (LAYERS.values / 100).astype(dtype)
    grid = Grid(values, LAYERS.transform, None)
    frame = zones_frame(LAYER_ZONES)
    stats = ["count", "mean", "sum", "majority"]
    actual = zd.zonal_stats(frame, grid.to_dataarray(), stats)
    widened = Grid(values.astype("float32"), LAYERS.transform, None)
    assert_tables_close(
        actual, reference_table(LAYER_ZONES, widened, frame.index, stats)
    )


def test_complex_values_are_refused():
    array = Grid(LAYERS.values.astype("complex64"), LAYERS.transform).to_dataarray()
    with pytest.raises(zd.RasterError, match=r"complex values \(complex64\)"):
        zd.zonal_stats(zones_frame(LAYER_ZONES), array)


# -- integers beyond 2**53, labels beyond 2**63, sums beyond the largest float --


def _write(path, values, nodata=None):
    return Grid(values, GRID.transform, nodata).write(path, blocksize=None)


@pytest.mark.parametrize("dtype", ["int64", "uint64"])
def test_64_bit_integers_beyond_2_53(tmp_path, dtype):
    """Values 2**62 + k: nodata compared exactly (2**62 + 1 is not 2**62), and
    each zone's sum the float64 nearest the exact integer sum, including sums
    that cancel (2**62 + 1 - 2**62 = 1, where float64 values sum to 0)."""
    rng = np.random.default_rng(139)
    base = 2**62
    values = (base + rng.integers(0, 4, GRID.shape)).astype(dtype)
    if dtype == "int64":
        negative = rng.random(GRID.shape) < 0.5
        values[negative] = -base  # cancels the 2**62 of a neighbour
    nodata = base + 1  # as a Python integer: exact
    frame = zones_frame(voronoi_zones(GRID, 9, seed=139))
    path = _write(tmp_path / "big.tif", values)
    actual = zd.zonal_stats(
        frame, path, ["count", "nodata_count", "sum", "min"], nodata=nodata
    )
    for i in range(len(frame)):
        inside = zd.rasterize_zones(frame.iloc[[i]], path).values == 0
        valid = inside & (values != nodata)
        assert actual["count"].iloc[i] == valid.sum()
        assert actual["nodata_count"].iloc[i] == (inside & (values == nodata)).sum()
        exact = sum(int(v) for v in values[valid])
        assert actual["sum"].iloc[i] == float(exact)  # whole zone in one chunk
    # several chunks: each chunk's exact sum and what float64 misses of it,
    # added with compensation
    chunked = zd.zonal_stats(
        frame, path, ["count", "sum"], nodata=nodata, chunks=(7, 9), split_every=2
    )
    assert chunked["count"].tolist() == actual["count"].tolist()
    assert chunked["sum"].tolist() == actual["sum"].tolist()


def test_a_64_bit_nodata_gdal_rounds_is_refused_unless_given(tmp_path):
    values = np.full(GRID.shape, 2**53 + 1, np.int64)
    path = _write(tmp_path / "rounded.tif", values, nodata=2**53 + 1)  # kept as 2**53
    frame = zones_frame(voronoi_zones(GRID, 3, seed=140))
    with pytest.raises(zd.NodataError, match=r"nodata 9007199254740992 of a int64"):
        zd.zonal_stats(frame, path)
    given_ = zd.zonal_stats(frame, path, ["count", "nodata_count"], nodata=2**53 + 1)
    assert (given_["count"] == 0).all() and (given_["nodata_count"] > 0).all()
    out = tmp_path / "out.csv"
    args = [str(tmp_path / "zones.gpkg"), str(path), str(out), "--nodata", str(2**53)]
    frame.to_file(args[0], engine="pyogrio")
    assert main([*args, "--stats", "count"]) == 0
    assert out.read_text().splitlines()[1:] == [
        f"{i},{n}" for i, n in zip(frame.index, given_["nodata_count"], strict=True)
    ]


def test_uint64_labels_beyond_2_63(tmp_path):
    rng = np.random.default_rng(141)
    names = np.array([7, 2**63 - 1, 2**63, 2**63 + 5, 2**64 - 1], np.uint64)
    labels = names[rng.integers(0, names.size, GRID.shape)]
    path = _write(tmp_path / "labels.tif", labels)
    values = make_grid(GRID.shape, "float64", seed=141, nodata=None)
    for chunks in (None, (8, 9)):
        actual = zd.zonal_stats(
            path, values.to_dataarray(), ["count", "sum"], chunks=chunks
        )
        assert actual.index.dtype == np.uint64
        assert actual.index.tolist() == [int(n) for n in names]  # sorted as uint64
        for name in names:
            inside = labels == name
            assert actual.loc[name, "count"] == inside.sum()
            assert actual.loc[name, "sum"] == pytest.approx(
                values.values[inside].sum(), rel=1e-12
            )


def test_sums_beyond_the_largest_float_are_infinite_never_zero():
    """Float sums that overflow are ±inf; finite values further apart than the
    largest float (1.6e308 and -1.6e308) get the compensated sum's mean and an
    infinite std, whatever the chunking (numpy's float64 gives NaN for both)."""
    big = np.finfo(np.float64).max * 0.9
    whole = zones_frame([shapely.box(*GRID.bounds())])
    apart = np.zeros(GRID.shape)
    apart[10, 20:23] = big, -big, 3.0
    x0, y0 = GRID.transform @ (20, 10)
    x1, y1 = GRID.transform @ (23, 11)
    three = zones_frame([shapely.box(x0, y1, x1, y0)])
    for chunks in (None, (5, 7), (45, 1)):
        for sign in (1, -1):
            grid = Grid(np.full(GRID.shape, sign * big), GRID.transform)
            row = zd.zonal_stats(
                whole, grid.to_dataarray(), ["sum", "mean", "std"], chunks=chunks
            ).iloc[0]
            assert row["sum"] == sign * np.inf
            assert row["mean"] == sign * big and row["std"] == 0
        row = zd.zonal_stats(
            three,
            Grid(apart, GRID.transform).to_dataarray(),
            ["count", "sum", "mean", "std"],
            chunks=chunks,
        ).iloc[0]
        assert (row["count"], row["sum"], row["mean"]) == (3, 3.0, 1.0)
        assert row["std"] == np.inf


# -- checkpoints: what their identity covers, damaged files ---------------------


def _vrt(path, source, shape):
    rows, cols = shape
    path.write_text(
        f"""<VRTDataset rasterXSize="{cols}" rasterYSize="{rows}">
  <SRS>{GRID.crs}</SRS>
  <GeoTransform>{", ".join(repr(c) for c in GRID.transform.to_gdal())}</GeoTransform>
  <VRTRasterBand dataType="Float32" band="1">
    <SimpleSource>
      <SourceFilename relativeToVRT="1">{source.name}</SourceFilename>
      <SourceBand>1</SourceBand>
    </SimpleSource>
  </VRTRasterBand>
</VRTDataset>"""
    )
    return path


def test_a_checkpoint_of_a_vrt_covers_the_files_it_reads(tmp_path):
    """Rewriting a file a VRT reads makes another run (the VRT itself did not
    change): refused, never mixed with the old partials."""
    grid = make_grid(GRID.shape, "float32", seed=142, nodata=None)
    source = grid.write(tmp_path / "source.tif")
    vrt = _vrt(tmp_path / "mosaic.vrt", source, grid.shape)
    frame = zones_frame(voronoi_zones(grid, 6, seed=142))
    first = zd.zonal_stats(frame, vrt, chunks=16, checkpoint=tmp_path / "ck")
    assert_tables_close(first, reference_stats(frame.geometry, grid, frame.index))
    manifest = json.loads((tmp_path / "ck" / "checkpoint.json").read_text())
    assert str(source) in manifest["raster"]["files"]
    stat = os.stat(vrt)
    Grid(grid.values + 1, grid.transform).write(source)
    os.utime(vrt, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(zd.CheckpointError, match="differs in raster"):
        zd.zonal_stats(frame, vrt, chunks=16, checkpoint=tmp_path / "ck")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_damaged_checkpoint_chunks_are_computed_again(tmp_path, damage):
    grid = make_grid(GRID.shape, "float32", seed=143)
    raster = grid.write(tmp_path / "grid.tif")
    frame = zones_frame(voronoi_zones(grid, 6, seed=143))
    ck = tmp_path / "ck"
    first = zd.zonal_stats(frame, raster, chunks=16, checkpoint=ck)
    chunks = sorted(ck.glob("chunk-*.npz"))
    for path in chunks[::2]:
        data = path.read_bytes()
        if damage == "truncate":
            path.write_bytes(data[: len(data) // 2])
        elif damage == "garbage":
            path.write_bytes(data[:40] + bytes(len(data) - 40))
        else:
            path.write_bytes(b"")
    with pytest.warns(UserWarning, match="damaged checkpoint chunk; it is computed"):
        again = zd.zonal_stats(frame, raster, chunks=16, checkpoint=ck)
    assert again.equals(first)
    assert sorted(ck.glob("chunk-*.npz")) == chunks  # saved again, whole


def test_a_damaged_checkpoint_manifest_is_one_clear_error(tmp_path):
    grid = make_grid(GRID.shape, "float32", seed=144)
    raster = grid.write(tmp_path / "grid.tif")
    frame = zones_frame(voronoi_zones(grid, 3, seed=144))
    ck = tmp_path / "ck"
    zd.zonal_stats(frame, raster, chunks=16, checkpoint=ck)
    (ck / "checkpoint.json").write_text('{"format": 3, "zon')
    with pytest.raises(zd.CheckpointError, match=r"checkpoint.json: unreadable"):
        zd.zonal_stats(frame, raster, chunks=16, checkpoint=ck)


# -- GeoJSON ids -------------------------------------------------------------------


def _geojson(path, ids, top=None):
    features = [
        {
            "type": "Feature",
            **({} if top is None else {"id": top[i]}),
            "properties": {"id": v, "name": f"z{i}"},
            "geometry": shapely.geometry.mapping(g),
        }
        for i, (v, g) in enumerate(zip(ids, GEOJSON_ZONES, strict=True))
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


GEOJSON_ZONES = voronoi_zones(GRID, 4, seed=145)


@pytest.mark.parametrize(
    ("ids", "top", "names"),
    [
        ([30, 10, 20, 5], None, [30, 10, 20, 5]),  # GDAL's FID: the id property
        ([5, 5, 3, 1], None, [0, 1, 2, 3]),  # repeated: by position, warned
        ([-1, 7, 2, 4], None, [0, 1, 2, 3]),  # negative: by position, warned
        (["a", "b", "c", "d"], None, [0, 1, 2, 3]),  # not integers: by position
        ([3, 1, 2, 0], [9, 8, 7, 6], [9, 8, 7, 6]),  # the top-level id wins
    ],
)
def test_geojson_ids_name_rows_in_input_order(tmp_path, ids, top, names):
    path = _geojson(tmp_path / "zones.geojson", ids, top)
    # GeoJSON says WGS 84; these hold the raster's metres (assume_same_crs)
    grid = Grid(GRID.values, GRID.transform)
    raster = grid.write(tmp_path / "grid.tif")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = zd.zonal_stats(path, raster, ["count", "mean"], assume_same_crs=True)
    renamed = any("named by position" in str(w.message) for w in caught)
    assert renamed == (names == [0, 1, 2, 3] and isinstance(ids[0], int))
    assert table.index.tolist() == names
    expected = reference_stats(GEOJSON_ZONES, grid, table.index)
    assert_tables_close(table, expected[["count", "mean"]])
    named = zd.zonal_stats(
        path, raster, ["count"], zone_id="name", assume_same_crs=True
    )
    assert named.index.tolist() == ["z0", "z1", "z2", "z3"]
