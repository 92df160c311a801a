"""docs/architecture.md is drawn from the tree: its module table names every
module of the package, and no module that is gone."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "zonal_dask"


def test_the_module_table_names_every_module_of_the_tree():
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text[text.index("## Modules by sub-package") :]
    section = (
        section[: section.index("\n## ", 1)] if "\n## " in section[1:] else section
    )
    listed = set(re.findall(r"^\| [^|]+ \| `([\w/]+\.py)` \|", section, re.M))
    tree = {
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if not (p.name == "__init__.py" and p.parent != PACKAGE)
    }
    assert listed == tree
