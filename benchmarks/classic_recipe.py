"""The classic per-polygon GDAL recipe, and how its means differ from zonal_dask's.

For each polygon: its bounding-box window computed as the recipe does
(``xoff = int((xmin - x0) / width)``, ``xcount = int((xmax - xmin) / width) + 1``),
the whole layer burnt into that window (the recipe's known leak), the window
read, numpy's mean of the burnt pixels with no nodata mask (the recipe ignores
nodata).

    python benchmarks/classic_recipe.py ZONES RASTER
"""

from __future__ import annotations

import argparse

import geopandas as gpd
import numpy as np
import rasterio
from rasterio import features, windows
from rasterio.errors import WindowError

import zonal_dask as zd


def classic_means(zones: str, raster: str) -> dict:
    frame = gpd.read_file(zones, fid_as_index=True)
    means = {}
    with rasterio.open(raster) as src:
        frame = frame.to_crs(src.crs)
        layer = [(g, 1) for g in frame.geometry]
        full = windows.Window(0, 0, src.width, src.height)
        x0, y0, width, height = src.transform.c, src.transform.f, src.res[0], src.res[1]
        for fid, geometry in frame.geometry.items():
            # the recipe's own window: truncated offsets, lengths + 1
            xmin, ymin, xmax, ymax = geometry.bounds
            window = windows.Window(
                int((xmin - x0) / width),
                int((y0 - ymax) / height),
                int((xmax - xmin) / width) + 1,
                int((ymax - ymin) / height) + 1,
            )
            try:
                window = window.intersection(full)
            except WindowError:  # wholly outside the raster
                means[fid] = np.nan
                continue
            values = src.read(1, window=window)
            burnt = features.rasterize(
                layer, out_shape=values.shape, transform=src.window_transform(window)
            )
            selected = values[burnt == 1].astype(float)
            means[fid] = selected.mean() if selected.size else np.nan
    return means


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zones")
    parser.add_argument("raster")
    args = parser.parse_args()
    ours = zd.zonal_stats(args.zones, args.raster, stats=["mean"])["mean"]
    classic = ours.index.map(classic_means(args.zones, args.raster)).to_numpy(float)
    differs = ~np.isclose(classic, ours.to_numpy(), rtol=1e-6, equal_nan=True)
    with rasterio.open(args.raster) as src:
        nodata = src.nodata
    print(f"zones: {len(ours)}")
    print(f"classic mean differs from zonal_dask's (rtol 1e-6): {differs.sum()}")
    if nodata is not None:
        below = np.sum(classic < np.nanmin(ours.to_numpy()))
        print(f"classic mean below every zonal_dask mean (nodata {nodata}): {below}")
    print(f"median |difference|: {np.nanmedian(np.abs(classic - ours.to_numpy())):.3g}")


if __name__ == "__main__":
    main()
