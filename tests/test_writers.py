"""Writing tables: today's text, byte for byte, for every format and dtype.

The text tables' bytes below are those the writer gave before it formatted
whole columns (pandas' ``to_csv``, ``na_rep=""``); pandas remains the
reference for random values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from zonal_dask.io import text_table, writers


def adversarial_tables() -> dict[str, pd.DataFrame]:
    """Tables holding what a statistics table can hold, and worse."""
    fid = pd.Index([1, 2, 2**53 + 1, -7, 2**63 - 1], name="fid")
    stats = pd.DataFrame(
        {
            "count": np.array([3, 0, 2**53 + 1, 1, 7], dtype=np.int64),
            "min": [np.nan, -0.0, 0.0, 5e-324, -1.7976931348623157e308],
            "mean": [np.inf, -np.inf, 1e16, 9999999999999998.0, 1e15],
            "max": [1e-4, 9.999999999999999e-05, 1e-5, 0.1 + 0.2, 123456789012345.0],
            "std": [100.0, 1.0, 2.0**53 + 2, 12345678.9, 1e-7],
            "sum": [1e22, -1e300, 3.0, np.nan, 0.5],
        },
        index=fid,
    )
    text = pd.DataFrame(
        {
            "name": ["a,b", 'say "hi"', "tab\there", "two\nlines", "cr\rlf"],
            "other": ["", None, "éß€😀", "  padded  ", "plain"],
            "flag": [True, False, True, False, True],
            "wide": np.array([2**64 - 1, 0, 1, 2**63, 5], dtype=np.uint64),
            "single": np.array([0.1, np.nan, 16777217.0, 1e-8, -0.0], np.float32),
            "mean": [0.5, np.nan, 2.5, 1.0, 3.0],
        },
        index=pd.Index([10, 20, 30, 40, 50], name="zone"),
    )
    classes = pd.DataFrame(
        {
            "kind": pd.Categorical(["x", "y", None, "x", "z"]),
            "day": pd.to_datetime(
                ["2020-01-01", "2021-06-30", None, "1999-12-31", "2020-02-29"]
            ),
            "majority": [1.0, 2.0, np.nan, 4.0, 5.0],
            "1": [0.25, 0.5, 0.0, 1.0, np.nan],
        },
        index=pd.Index([1, 2, 3, 4, 5], name="fid"),
    )
    bands = pd.MultiIndex.from_tuples([(1, "b1"), (1, "b2")], names=["fid", "band"])
    return {
        "statistics": stats,
        "text": text,
        "classes": classes,
        "numbered": stats.reset_index(drop=True),
        "one column": pd.DataFrame({"mean": [np.nan, 1.0, np.nan]}),
        "unnamed index": pd.DataFrame({"mean": [np.nan, 2.0]}, index=[5, 6]),
        "two levels": pd.DataFrame({"mean": [1.0, np.nan]}, index=bands),
        "empty": stats.iloc[:0],
        "no rows, no index": pd.DataFrame(
            {
                "count": pd.Series([], dtype=np.int64),
                "mean": pd.Series([], dtype=float),
            }
        ),
    }


# dates and categories are left to pandas; every other table is formatted here
LEFT_TO_PANDAS = {"classes"}

TODAYS_BYTES = {
    ("statistics", ".csv"): (
        b"fid,count,min,mean,max,std,sum\n"
        b"1,3,,inf,0.0001,100.0,1e+22\n"
        b"2,0,-0.0,-inf,9.999999999999999e-05,1.0,-1e+300\n"
        b"9007199254740993,9007199254740993,0.0,1e+16,1e-05,"
        b"9007199254740994.0,3.0\n"
        b"-7,1,5e-324,9999999999999998.0,0.30000000000000004,12345678.9,\n"
        b"9223372036854775807,7,-1.7976931348623157e+308,1000000000000000.0,"
        b"123456789012345.0,1e-07,0.5\n"
    ),
    ("statistics", ".txt"): (
        b"count\tmin\tmean\tmax\tstd\tsum\tfid\n"
        b"3\t\tinf\t0.0001\t100.0\t1e+22\t1\n"
        b"0\t-0.0\t-inf\t9.999999999999999e-05\t1.0\t-1e+300\t2\n"
        b"9007199254740993\t0.0\t1e+16\t1e-05\t9007199254740994.0\t3.0\t"
        b"9007199254740993\n"
        b"1\t5e-324\t9999999999999998.0\t0.30000000000000004\t12345678.9\t\t"
        b"-7\n"
        b"7\t-1.7976931348623157e+308\t1000000000000000.0\t"
        b"123456789012345.0\t1e-07\t0.5\t9223372036854775807\n"
    ),
    ("text", ".csv"): (
        b"zone,name,other,flag,wide,single,mean\n"
        b'10,"a,b",,True,18446744073709551615,0.1,0.5\n'
        b'20,"say ""hi""",,False,0,,\n'
        b"30,tab\there,\xc3\xa9\xc3\x9f\xe2\x82\xac\xf0\x9f\x98\x80,True,1,"
        b"1.6777216e+07,2.5\n"
        b'40,"two\n'
        b'lines",  padded  ,False,9223372036854775808,1e-08,1.0\n'
        b"50,cr\r"
        b"lf,plain,True,5,-0.0,3.0\n"
    ),
    ("text", ".txt"): (
        b"name\tother\tflag\twide\tsingle\tmean\tzone\n"
        b"a,b\t\tTrue\t18446744073709551615\t0.1\t0.5\t10\n"
        b'"say ""hi"""\t\tFalse\t0\t\t\t20\n'
        b'"tab\there"\t\xc3\xa9\xc3\x9f\xe2\x82\xac\xf0\x9f\x98\x80\tTrue\t'
        b"1\t1.6777216e+07\t2.5\t30\n"
        b'"two\n'
        b'lines"\t  padded  \tFalse\t9223372036854775808\t1e-08\t1.0\t40\n'
        b"cr\r"
        b"lf\tplain\tTrue\t5\t-0.0\t3.0\t50\n"
    ),
    ("classes", ".csv"): (
        b"fid,kind,day,majority,1\n"
        b"1,x,2020-01-01,1.0,0.25\n"
        b"2,y,2021-06-30,2.0,0.5\n"
        b"3,,,,0.0\n"
        b"4,x,1999-12-31,4.0,1.0\n"
        b"5,z,2020-02-29,5.0,\n"
    ),
    ("classes", ".txt"): (
        b"kind\tday\tmajority\t1\tfid\n"
        b"x\t2020-01-01\t1.0\t0.25\t1\n"
        b"y\t2021-06-30\t2.0\t0.5\t2\n"
        b"\t\t\t0.0\t3\n"
        b"x\t1999-12-31\t4.0\t1.0\t4\n"
        b"z\t2020-02-29\t5.0\t\t5\n"
    ),
    ("numbered", ".csv"): (
        b"count,min,mean,max,std,sum\n"
        b"3,,inf,0.0001,100.0,1e+22\n"
        b"0,-0.0,-inf,9.999999999999999e-05,1.0,-1e+300\n"
        b"9007199254740993,0.0,1e+16,1e-05,9007199254740994.0,3.0\n"
        b"1,5e-324,9999999999999998.0,0.30000000000000004,12345678.9,\n"
        b"7,-1.7976931348623157e+308,1000000000000000.0,123456789012345.0,"
        b"1e-07,0.5\n"
    ),
    ("numbered", ".txt"): (
        b"count\tmin\tmean\tmax\tstd\tsum\n"
        b"3\t\tinf\t0.0001\t100.0\t1e+22\n"
        b"0\t-0.0\t-inf\t9.999999999999999e-05\t1.0\t-1e+300\n"
        b"9007199254740993\t0.0\t1e+16\t1e-05\t9007199254740994.0\t3.0\n"
        b"1\t5e-324\t9999999999999998.0\t0.30000000000000004\t12345678.9\t\n"
        b"7\t-1.7976931348623157e+308\t1000000000000000.0\t"
        b"123456789012345.0\t1e-07\t0.5\n"
    ),
    ("one column", ".csv"): (b'mean\n""\n1.0\n""\n'),
    ("one column", ".txt"): (b'mean\n""\n1.0\n""\n'),
    ("unnamed index", ".csv"): (b",mean\n5,\n6,2.0\n"),
    ("two levels", ".csv"): (b"fid,band,mean\n1,b1,1.0\n1,b2,\n"),
    ("two levels", ".txt"): (b"mean\tfid\tband\n1.0\t1\tb1\n\t1\tb2\n"),
    ("empty", ".csv"): (b"fid,count,min,mean,max,std,sum\n"),
    ("empty", ".txt"): (b"count\tmin\tmean\tmax\tstd\tsum\tfid\n"),
    ("no rows, no index", ".csv"): (b"count,mean\n"),
    ("no rows, no index", ".txt"): (b"count\tmean\n"),
}


@pytest.mark.parametrize(("name", "suffix"), sorted(TODAYS_BYTES))
def test_text_tables_keep_todays_bytes(tmp_path, monkeypatch, name, suffix):
    table = adversarial_tables()[name]
    if name not in LEFT_TO_PANDAS:  # the column formatter wrote it, not pandas

        def refused(*args, **kwargs):
            raise AssertionError("written by pandas")

        monkeypatch.setattr(pd.DataFrame, "to_csv", refused)
    monkeypatch.setattr(text_table, "CELLS_PER_BLOCK", 2)  # blocks of rows too
    path = writers.write_table(table, tmp_path / f"t{suffix}")
    assert path.read_bytes() == TODAYS_BYTES[name, suffix]
    if suffix == ".txt":
        tsv = writers.write_table(table, tmp_path / "t.tsv")
        assert tsv.read_bytes() == TODAYS_BYTES[name, suffix]


@pytest.mark.parametrize("name", sorted(adversarial_tables()))
def test_parquet_tables_read_back_as_written(tmp_path, name):
    table = writers.named_by_text(adversarial_tables()[name])
    path = writers.write_table(table, tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(path), table)


def random_floats(rng: np.random.Generator, n: int) -> np.ndarray:
    """Any float64 bit pattern, and values of every decade, whole or not."""
    bits = rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)
    decades = rng.normal(0, 1, n) * 10.0 ** rng.integers(-30, 30, n)
    edges = np.array([1e-4, 1e16, 1e15, 1e-5, 2.0**53, 5e-324, 0.0, -0.0, np.inf])
    values = np.concatenate([bits.view(np.float64), decades, np.round(decades), edges])
    return rng.permutation(values)


def random_text(rng: np.random.Generator, n: int) -> list[str | None]:
    alphabet = list('ab ,\t"\n\r;é€😀')
    words: list[str | None] = [
        "".join(rng.choice(alphabet, rng.integers(0, 6))) for _ in range(n)
    ]
    words[::7] = [None] * len(words[::7])
    return words


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(("suffix", "sep"), [(".csv", ","), (".txt", "\t")])
def test_random_values_as_pandas_writes_them(tmp_path, monkeypatch, seed, suffix, sep):
    rng = np.random.default_rng(seed)
    n = 30_000
    table = pd.DataFrame(
        {
            "count": rng.integers(-(2**63), 2**63 - 1, n, endpoint=True),
            "mean": random_floats(rng, n)[:n],
            "std": random_floats(rng, n)[:n],
            "name": random_text(rng, n),
        },
        index=pd.Index(rng.permutation(n), name="fid"),
    )
    monkeypatch.setattr(text_table, "CELLS_PER_BLOCK", 4096 * 4)
    path = writers.write_table(table, tmp_path / f"t{suffix}")
    if suffix == ".txt":
        table = table.reset_index()[[*table.columns, "fid"]]
    reference = tmp_path / "reference"
    table.to_csv(reference, sep=sep, index=suffix == ".csv", na_rep="")
    assert path.read_bytes() == reference.read_bytes()


def test_text_is_formatted_in_blocks_of_a_bounded_number_of_fields(
    tmp_path, monkeypatch
):
    # a wide table gets fewer rows a block: the text held at once is bounded
    # by the fields, not the rows; the bytes are pandas' whatever the blocks
    rng = np.random.default_rng(3)
    rows, width = 5_000, 40
    table = pd.DataFrame(
        {f"p{i}": rng.normal(0, 1e3, rows) for i in range(width)},
        index=pd.Index(np.arange(rows) * 3, name="fid"),
    )
    table.iloc[::11, 4] = np.nan
    blocks: list[int] = []
    lines = text_table._lines

    def counted(texts, sep):
        blocks.append(len(texts) * len(texts[0]))
        return lines(texts, sep)

    monkeypatch.setattr(text_table, "_lines", counted)
    monkeypatch.setattr(text_table, "CELLS_PER_BLOCK", 20_000)
    path = writers.write_table(table, tmp_path / "t.csv")
    fields = blocks[1:]  # the header's first
    assert sum(fields) == rows * (width + 1)
    assert len(fields) > 1 and max(fields) <= 20_000
    reference = tmp_path / "reference.csv"
    table.to_csv(reference, na_rep="")
    assert path.read_bytes() == reference.read_bytes()


def test_float_text_is_numpys():
    values = random_floats(np.random.default_rng(2), 200_000)
    printed = values.astype(str)
    printed[np.isnan(values)] = "null"
    text = text_table.float_text(values).fill_null("null")
    assert text.to_pylist() == printed.tolist()
