"""Lines as zones: the centre rule against coverage weighting (each pixel
weighted by the line's length in it).

``python benchmarks/line_coverage.py make DIR`` writes a 4000² float32 tiled
GeoTIFF and 50,000 random-walk lines (six vertices, steps of about 8 pixels);
``python benchmarks/line_coverage.py run DIR centre|fraction`` computes count
and mean per line and prints the row count and the summed count. Time each
run as a whole process (``/usr/bin/time -v``).
"""

from __future__ import annotations

import sys
from pathlib import Path


def make(out: Path, n: int = 50_000, size: int = 4000) -> None:
    import geopandas as gpd
    import numpy as np
    import rasterio
    import shapely
    from rasterio.transform import from_origin

    rng = np.random.default_rng(0)
    out.mkdir(parents=True, exist_ok=True)
    profile = dict(
        driver="GTiff", width=size, height=size, count=1, dtype="float32",
        tiled=True, blockxsize=512, blockysize=512, crs="EPSG:32633",
        transform=from_origin(0, size, 1, 1),
    )  # fmt: skip
    with rasterio.open(out / "raster.tif", "w", **profile) as dst:
        dst.write(rng.random((size, size), dtype=np.float32), 1)
    start = rng.uniform(0, size, (n, 1, 2))
    walk = start + rng.normal(0, 8, (n, 5, 2)).cumsum(axis=1)
    lines = shapely.linestrings(np.concatenate([start, walk], axis=1))
    frame = gpd.GeoDataFrame(geometry=lines, crs="EPSG:32633")
    frame.to_file(out / "lines.gpkg")


def run(data: Path, rule: str) -> None:
    import zonal_dask as zd

    coverage = None if rule == "centre" else rule
    table = zd.zonal_stats(
        data / "lines.gpkg", data / "raster.tif", ["count", "mean"], coverage=coverage
    )
    print(len(table), table["count"].sum())


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(Path(sys.argv[2]))
    else:
        run(Path(sys.argv[2]), sys.argv[3])
