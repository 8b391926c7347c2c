"""Fail when a module under app/ or workers/ grows past MAX_LINES: one concept per file.

Past the limit a module has become several concepts; split it by concept (see
docs/architecture.md) rather than raising the limit. Migrations are exempt.
"""

import sys
from pathlib import Path

MAX_LINES = 600
ROOTS = ("app", "workers")


def oversized(root: Path) -> list[tuple[Path, int]]:
    found = []
    for top in ROOTS:
        for path in sorted((root / top).rglob("*.py")):
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > MAX_LINES:
                found.append((path.relative_to(root), lines))
    return found


if __name__ == "__main__":
    too_long = oversized(Path(__file__).resolve().parent.parent)
    for path, lines in too_long:
        print(f"{path}: {lines} lines (over {MAX_LINES}: split it by concept)")
    sys.exit(1 if too_long else 0)
