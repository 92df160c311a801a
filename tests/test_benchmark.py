"""The peer benchmark's quick mode: every tool runs and agrees with zonal_dask.

Times are not checked: only that the table is written with a row per tool and
that every tool computing statistics agrees on every polygon.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path

import pytest

from .background import Background

PEERS = Path(__file__).parent.parent / "benchmarks" / "peers"
# the peer tools: pip install '.[bench]' (.ci/run installs them)
for _tool in ("exactextract", "rasterstats", "flox", "xrspatial", "psutil"):
    pytest.importorskip(_tool, reason="the peer benchmark needs '.[bench]'")


# ``run.py --quick`` runs thirteen tools, each a fresh process: started with the
# session (``start_in_background``), in a directory of its own
QUICK = Background()
DIRECTORY = tempfile.TemporaryDirectory(prefix="peers-")
TABLE = Path(DIRECTORY.name) / "table.md"


def start_in_background(items) -> None:
    _start_quick_run()


def _start_quick_run() -> None:
    command = [sys.executable, str(PEERS / "run.py"), DIRECTORY.name, "--quick"]
    # one tool given its own interpreter (here the same one): the option runs
    command += ["--python", f"zonal_dask={sys.executable}"]
    # run.py imports make_data from its own folder, which PYTHONSAFEPATH
    # (conftest.py) leaves off sys.path
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSAFEPATH"}
    QUICK.start([*command, "--table", str(TABLE)], env=env)


@pytest.fixture(scope="module")
def peers_run() -> tuple[Path, list[dict]]:
    """``run.py --quick``'s table and its JSON rows, once it ran."""
    _start_quick_run()  # unless already started
    code, _, err = QUICK.wait(timeout=280)
    assert code == 0, err[-3000:]
    return TABLE, json.loads(TABLE.with_suffix(".json").read_text())


@pytest.fixture(scope="module")
def registry(monkeypatch_module: pytest.MonkeyPatch) -> list:
    # benchmarks/ is not a package; run.py imports make_data from its folder
    monkeypatch_module.syspath_prepend(str(PEERS))
    spec = importlib.util.spec_from_file_location("peers_run", PEERS / "run.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules
    monkeypatch_module.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module.TOOLS


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.mark.timeout(300)
def test_every_tool_has_a_row(peers_run, registry):
    table, rows = peers_run
    text = table.read_text()
    assert [row["tool"]["name"] for row in rows] == [tool.name for tool in registry]
    for tool in registry:
        assert f"| {tool.label} |" in text


@pytest.mark.timeout(300)
def test_every_tool_ran_and_agrees(peers_run):
    _, rows = peers_run
    for row in rows:
        assert [run["status"] for run in row["runs"]] == ["ok"], row["tool"]["name"]
        if row["tool"]["reference"] is None:
            assert row["agrees"] == "—"
        else:
            assert row["all_agree"], (row["tool"]["name"], row["agrees"])


@pytest.mark.timeout(300)
def test_the_table_names_each_tools_interpreter_and_its_optional_packages(peers_run):
    table, _ = peers_run
    lines = table.read_text().splitlines()
    own = [line for line in lines if line.startswith("* zonal_dask runs in ")]
    rest = [line for line in lines if line.startswith("* every other tool runs in ")]
    assert len(own) == 1 and len(rest) == 1
    assert f"`{Path(sys.executable).absolute()}`" in own[0]
    assert "of scipy, boto3, cffi, holds " in own[0]
