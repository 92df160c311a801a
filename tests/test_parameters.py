"""The one parameter table (``zonal_dask/parameters.py``) and everything that
derives from it or must agree with it: the API's signatures and docstrings,
``Request``'s defaults, the command line's flags, the options of a time
series, the README's signature."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
from pathlib import Path

import numpy as np
import pytest

import zonal_dask as zd
from zonal_dask.cli.options import API_ONLY, FLAGS, build_parser
from zonal_dask.parameters import BY_NAME, DEFAULTS, PARAMETERS, SERIES_OPTIONS
from zonal_dask.request import Request
from zonal_dask.series.zonal_series import OPTIONS
from zonal_dask.statistics.table import DEFAULT_STATS

from .synth import make_grid, voronoi_zones, zones_frame

README = Path(__file__).parent.parent / "README.md"


def _keywords(function) -> dict[str, object]:
    return {
        name: p.default
        for name, p in inspect.signature(function).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def test_zonal_stats_takes_the_table_in_order_with_its_defaults():
    keywords = _keywords(zd.zonal_stats)
    assert list(keywords) == [p.name for p in PARAMETERS]
    assert keywords == DEFAULTS


@pytest.mark.parametrize(
    "function",
    [zd.zonal_pixels, zd.rasterize_zones, zd.ZonePlan.__init__, zd.zonal_series],
    ids=["zonal_pixels", "rasterize_zones", "ZonePlan", "zonal_series"],
)
def test_every_api_keyword_of_the_table_has_its_default(function):
    shared = {k: v for k, v in _keywords(function).items() if k in DEFAULTS}
    assert shared and shared == {k: DEFAULTS[k] for k in shared}


def test_request_fields_take_the_tables_defaults():
    fields = {f.name: f.default for f in dataclasses.fields(Request)}
    shared = set(fields) & set(DEFAULTS) - {"include_cols"}  # held as a tuple
    assert len(shared) > 15
    assert {k: fields[k] for k in shared} == {k: DEFAULTS[k] for k in shared}


def test_every_parameter_is_documented_in_zonal_stats():
    documented = set(re.findall(r"^(\w+)\n", inspect.getdoc(zd.zonal_stats), re.M))
    assert {p.name for p in PARAMETERS} <= documented | {"stats"}


def test_flags_derive_from_the_table():
    assert [f.param for f in FLAGS] == [p.name for p in PARAMETERS if p.flag]
    assert set(API_ONLY) == {p.name for p in PARAMETERS if p.flag is None}
    assert all(API_ONLY.values())
    defaults = build_parser().parse_args(["z.gpkg", "r.tif", "o.csv"])
    for parameter in PARAMETERS:
        if parameter.flag and parameter.name != "stats":
            assert getattr(defaults, parameter.name) == parameter.default
    # a default written once: the help says the table's
    assert "(default 8)" in build_parser().format_help()


def test_the_readme_signature_is_the_api_signature():
    text = README.read_text()
    signature = re.search(r"`zonal_stats\((.*?)\)`", text, re.S)
    assert signature is not None
    written = {}
    for item in " ".join(signature.group(1).split()).split(", "):
        if "=" in item:
            name, value = item.split("=", 1)
            written[name] = (
                DEFAULT_STATS if value == "DEFAULT_STATS" else (ast.literal_eval(value))
            )
    assert list(written) == list(DEFAULTS)
    assert written == DEFAULTS


def test_the_series_options_derive_from_the_table():
    assert OPTIONS == SERIES_OPTIONS
    assert all(BY_NAME[name].series for name in OPTIONS)
    doc = inspect.getdoc(zd.zonal_series)
    listed = doc[doc.index("**options") : doc.index("Returns")]
    assert set(re.findall(r"``(\w+)``", listed)) - {"zonal_stats", "band"} <= set(
        OPTIONS
    )
    assert set(OPTIONS) <= set(re.findall(r"``(\w+)``", listed))


@pytest.fixture(scope="module")
def steps(tmp_path_factory):
    directory = tmp_path_factory.mktemp("steps")
    grid = make_grid((45, 67), "float32", seed=5, nan_fraction=0.02)
    frame = zones_frame(voronoi_zones(grid, 12, seed=5))
    paths = [
        make_grid(grid.shape, "float32", seed=s, nan_fraction=0.05).write(
            directory / f"step{s}.tif"
        )
        for s in (1, 2)
    ]
    return frame, paths


@pytest.mark.parametrize(
    "options",
    [
        {"coverage": "fraction"},
        {"coverage": "area_cartesian", "min_coverage_frac": 0.3},
        {"default_value": 3.0},
    ],
    ids=["coverage", "min_coverage_frac", "default_value"],
)
def test_a_series_option_means_what_it_means_for_zonal_stats(steps, options):
    frame, paths = steps
    stats = ["count", "mean", "median", "max"]
    cube = zd.zonal_series(frame, paths, stats, chunks=(16, 20), **options)
    for t, path in enumerate(paths):
        direct = zd.zonal_stats(frame, path, stats, chunks=(16, 20), **options)
        got = cube.isel(time=t).to_dataframe()[stats].to_numpy()
        np.testing.assert_allclose(got, direct.to_numpy(), rtol=1e-12)


@pytest.mark.parametrize("option", [{"group_by": "name"}, {"checkpoint": "ck"}])
def test_a_series_refuses_what_it_does_not_offer_in_one_line(steps, option):
    frame, paths = steps
    name = next(iter(option))
    with pytest.raises(zd.OptionError, match=f"{name} is not offered for a time"):
        zd.zonal_series(frame, paths, ["mean"], **option)


def test_a_series_refuses_an_unknown_keyword_as_python_does(steps):
    frame, paths = steps
    with pytest.raises(TypeError, match="unexpected keyword 'colour'"):
        zd.zonal_series(frame, paths, ["mean"], colour="red")
