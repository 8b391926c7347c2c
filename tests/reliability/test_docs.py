"""docs/reliability.md and the tests in this folder name each other (the table cannot drift)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOC = HERE.parents[1] / "docs" / "reliability.md"


def test_the_reliability_table_names_exactly_the_tests_that_exist() -> None:
    existing = {
        f"{path.name}::{node.name}"
        for path in HERE.glob("test_*.py")
        if path.name != Path(__file__).name
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    }
    cited = set(re.findall(r"`(test_\w+\.py::test_\w+)`", DOC.read_text()))
    assert cited - existing == set(), "the doc cites tests that do not exist"
    assert existing - cited == set(), "tests missing from docs/reliability.md"
