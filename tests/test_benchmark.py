"""The peer benchmark's quick mode: every tool runs and agrees with zonal_dask.

Times are not checked: only that the table is written with a row per tool and
that every tool computing statistics agrees on every polygon.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

PEERS = Path(__file__).parent.parent / "benchmarks" / "peers"
# the peer tools: pip install '.[bench]' (.ci/run installs them)
for _tool in ("exactextract", "rasterstats", "flox", "xrspatial", "psutil"):
    pytest.importorskip(_tool, reason="the peer benchmark needs '.[bench]'")


@pytest.fixture(scope="module")
def peers_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """Run ``run.py --quick`` once; the table and its JSON rows."""
    directory = tmp_path_factory.mktemp("peers")
    table = directory / "table.md"
    command = [sys.executable, str(PEERS / "run.py"), str(directory), "--quick"]
    subprocess.run([*command, "--table", str(table)], check=True, timeout=240)
    return table, json.loads(table.with_suffix(".json").read_text())


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
