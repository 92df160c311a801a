"""Write a million-zone statistics table, as the command line writes it.

    python benchmarks/write_table.py OUT.txt [--zones 1000000] [--pandas]

The table has the default statistics of a run (count, min, mean, max, std,
sum, indexed by fid, a tenth of the zones without data); OUT's extension
picks the format (``.txt`` in the classic column order, ``.csv``,
``.parquet``). ``--pandas`` writes the text with ``DataFrame.to_csv`` as the
writer did before it formatted whole columns (the same bytes). Prints the
seconds spent writing (wall and CPU); time the whole process from outside.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from zonal_dask.cli.main import _layout
from zonal_dask.io import writers


def statistics_table(zones: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    count = rng.integers(1, 40, zones)
    count[rng.random(zones) < 0.1] = 0
    mean = rng.normal(100.0, 20.0, zones)
    std = np.abs(rng.normal(10.0, 3.0, zones))
    table = pd.DataFrame(
        {
            "count": count,
            "min": mean - 2 * std,
            "mean": mean,
            "max": mean + 2 * std,
            "std": std,
            "sum": mean * count,
        },
        index=pd.RangeIndex(1, zones + 1, name="fid"),
    )
    table.loc[count == 0, ["min", "mean", "max", "std", "sum"]] = np.nan
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--zones", type=int, default=1_000_000)
    parser.add_argument("--pandas", action="store_true")
    args = parser.parse_args()
    table = _layout(statistics_table(args.zones), args.output, None)
    start, cpu = time.perf_counter(), time.process_time()
    if args.pandas:
        sep = "," if args.output.suffix == ".csv" else "\t"
        numbered = table.index.name is None
        table.to_csv(args.output, sep=sep, index=not numbered, na_rep="")
    else:
        writers.write_table(table, args.output, overwrite=True)
    print(
        f"{args.output.name}: {len(table)} rows written in "
        f"{time.perf_counter() - start:.2f} s ({time.process_time() - cpu:.2f} CPU s)"
    )


if __name__ == "__main__":
    main()
