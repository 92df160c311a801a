"""The numbers behind docs/comparisons.md (README: "Coming from another tool").

zonal_dask beside the classic per-polygon recipe, rasterstats and exactextract
on the real data in tests/data: what nodata, shared edges and coverage
weighting do to the results. Small data; runs in a few seconds.

    python benchmarks/compare_tools.py [tests/data]

exactextract is optional (``pip install exactextract``); without it the
coverage section is skipped.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from classic_recipe import classic_means
from rasterio import features, windows
from rasterstats import zonal_stats as rasterstats_zonal_stats

import zonal_dask as zd

SEED = 7
N_CELLS = 40


def nodata_section(data: Path) -> None:
    print("## nodata: rasterstats polygons.shp (2 polygons)")
    zones = data / "rasterstats" / "polygons.shp"
    for name in ("slope.tif", "slope_nodata.tif"):
        raster = data / "rasterstats" / name
        ours = zd.zonal_stats(zones, raster, ["count", "mean"])
        theirs = rasterstats_zonal_stats(
            str(zones), str(raster), stats=["count", "mean", "nodata"]
        )
        classic = classic_means(str(zones), str(raster))
        for (fid, row), rs in zip(ours.iterrows(), theirs, strict=True):
            print(
                f"{name} fid {fid}: nodata pixels {rs['nodata']}, valid {row['count']}"
                f" | mean zonal_dask {row['mean']:.4f}, rasterstats {rs['mean']:.4f}, "
                f"classic {classic[fid]:.4f}"
            )


def voronoi_cells(box: shapely.Polygon, n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    xmin, ymin, xmax, ymax = box.bounds
    points = rng.uniform((xmin, ymin), (xmax, ymax), (n, 2))
    cells = shapely.voronoi_polygons(shapely.multipoints(points), extend_to=box)
    return list(shapely.intersection(shapely.get_parts(cells), box))


def shared_edge_section(data: Path, tmp: Path) -> Path:
    print(f"\n## shared edges: rasterio's box.shp cut into {N_CELLS} Voronoi cells")
    raster = data / "rasterio" / "RGB.byte.tif"
    box = gpd.read_file(data / "rasterio" / "box.shp")
    cells = gpd.GeoDataFrame(
        {"cell": range(N_CELLS)},
        geometry=voronoi_cells(box.geometry.iloc[0], N_CELLS, SEED),
        crs=box.crs,
    )
    zones = tmp / "cells.gpkg"
    cells.to_file(zones, engine="pyogrio")
    ours = zd.zonal_stats(zones, raster, ["count", "mean"])
    theirs = rasterstats_zonal_stats(
        str(zones), str(raster), stats=["count", "mean"], nodata=0
    )
    rs_mean = np.array([t["mean"] for t in theirs], dtype=float)
    rs_count = np.array([t["count"] for t in theirs])
    print(
        f"zonal_dask vs rasterstats: counts equal for "
        f"{np.sum(rs_count == ours['count'].to_numpy())}/{N_CELLS} cells, "
        f"max |mean difference| {np.max(np.abs(rs_mean - ours['mean'])):.2e}"
    )
    classic = ours.index.map(classic_means(str(zones), str(raster))).to_numpy(float)
    differ = ~np.isclose(classic, ours["mean"].to_numpy(), rtol=1e-6)
    diff = np.abs(classic - ours["mean"].to_numpy())
    print(
        f"classic recipe mean differs for {differ.sum()}/{N_CELLS} cells: "
        f"median |difference| {np.median(diff):.2f}, max {diff.max():.2f} "
        f"(zonal_dask means range {ours['mean'].min():.1f}..{ours['mean'].max():.1f})"
    )
    with rasterio.open(raster) as src:
        shape, transform = src.shape, src.transform
    claims = np.zeros(shape, np.int32)
    per_polygon = []
    leaked, missed = [], []
    layer = [(g, 1) for g in cells.geometry]
    for geometry in cells.geometry:
        mask = features.rasterize([(geometry, 1)], out_shape=shape, transform=transform)
        claims += mask
        per_polygon.append(int(mask.sum()))
        # the classic recipe's pixels: the whole layer burnt into the bbox window
        window = windows.from_bounds(*geometry.bounds, transform=transform)
        window = window.round_offsets().round_lengths()
        burnt = np.zeros(shape, np.uint8)
        rows, cols = window.toslices()
        burnt[rows, cols] = features.rasterize(
            layer,
            out_shape=(window.height, window.width),
            transform=windows.transform(window, transform),
        )
        leaked.append(int(np.sum((burnt == 1) & (mask == 0))))
        missed.append(int(np.sum((burnt == 0) & (mask == 1))))
    print(
        f"classic recipe pixels per cell: from neighbours median "
        f"{np.median(leaked):.0f}"
        f" (max {max(leaked)}), own pixels outside its window median "
        f"{np.median(missed):.0f} (max {max(missed)}), of median "
        f"{np.median(per_polygon):.0f} own pixels"
    )
    one_raster = features.rasterize(
        [(g, i + 1) for i, g in enumerate(cells.geometry)],
        out_shape=shape,
        transform=transform,
    )
    single = np.bincount(one_raster.ravel(), minlength=N_CELLS + 1)[1:]
    print(
        f"pixels given to 2+ cells when each is rasterized alone: "
        f"{int(np.sum(claims > 1))} of {int(np.sum(claims > 0))}; "
        f"cells whose pixel count differs in one shared label raster: "
        f"{int(np.sum(single != np.array(per_polygon)))}"
    )
    return zones


def coverage_section(data: Path, cells: Path) -> None:
    try:
        from exactextract import exact_extract
        from exactextract.raster import RasterioRasterSource
    except ImportError:
        print("\n## coverage weighting: skipped (pip install exactextract)")
        return
    print("\n## coverage weighting: exactextract (default ops) vs zonal_dask (default)")
    slope = data / "rasterstats" / "slope.tif"
    cases = [
        ("polygons.shp / slope.tif", data / "rasterstats" / "polygons.shp", slope),
        (
            "polygons_partial_overlap.shp / slope.tif",
            data / "rasterstats" / "polygons_partial_overlap.shp",
            slope,
        ),
        (
            f"{N_CELLS} cells / RGB.byte.tif band 1",
            cells,
            data / "rasterio" / "RGB.byte.tif",
        ),
    ]
    for label, zones, raster in cases:
        ours = zd.zonal_stats(zones, raster, ["count", "mean", "min", "max"])
        frame = gpd.read_file(zones)
        with rasterio.open(raster) as src:
            theirs = exact_extract(
                RasterioRasterSource(src, 1),
                frame,
                ["count", "mean", "min", "max"],
                output="pandas",
            )
        rel = np.abs(theirs["mean"].to_numpy() - ours["mean"].to_numpy()) / np.abs(
            ours["mean"].to_numpy()
        )
        count_ratio = theirs["count"].to_numpy() / ours["count"].to_numpy()
        wider = np.sum(
            (theirs["min"].to_numpy() < ours["min"].to_numpy())
            | (theirs["max"].to_numpy() > ours["max"].to_numpy())
        )
        print(
            f"{label} ({len(ours)} zones): |mean difference| / mean median "
            f"{np.median(rel):.2%}, max {rel.max():.2%}; exactextract count / "
            f"zonal_dask count {count_ratio.min():.3f}..{count_ratio.max():.3f}; "
            f"min or max wider for {wider} zones"
        )
        weighted = zd.zonal_stats(zones, raster, ["count", "mean"], weights="coverage")
        print(
            "  zonal_dask weights='coverage' vs exactextract: max |count difference| "
            f"{np.max(np.abs(weighted['count'].to_numpy() - theirs['count'])):.1e}, "
            "max |mean difference| / mean "
            f"{np.max(np.abs(weighted['mean'].to_numpy() / theirs['mean'] - 1)):.1e}"
        )
        for i in range(min(2, len(ours))):
            print(
                f"  zone {i}: count {theirs['count'].iloc[i]:.2f} vs "
                f"{ours['count'].iloc[i]}, mean {theirs['mean'].iloc[i]:.3f} vs "
                f"{ours['mean'].iloc[i]:.3f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).parents[1] / "tests" / "data"
    parser.add_argument("data", nargs="?", type=Path, default=default)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        nodata_section(args.data)
        cells = shared_edge_section(args.data, Path(tmp))
        coverage_section(args.data, cells)


if __name__ == "__main__":
    main()
