"""Word-level differences between two captions (for the workspace and adjudication)."""

from __future__ import annotations

import difflib


def word_diff(a: str, b: str) -> list[tuple[str, str]]:
    """Word-level diff of two captions as (op, text): op is equal, del (only a) or ins (only b)."""
    left, right = a.split(), b.split()
    out: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=left, b=right).get_opcodes():
        if op == "equal":
            out.append(("equal", " ".join(left[i1:i2])))
            continue
        if i2 > i1:
            out.append(("del", " ".join(left[i1:i2])))
        if j2 > j1:
            out.append(("ins", " ".join(right[j1:j2])))
    return out
