"""Shared by the benchmark scripts: percentiles and writing one section of BENCHMARKS.md."""

from __future__ import annotations

import platform
import re
from datetime import date
from pathlib import Path

import numpy as np

BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    arr = np.asarray(samples_ms, dtype=float)
    return {
        "p50": float(np.percentile(arr, 50)),
        "p95": float(np.percentile(arr, 95)),
        "p99": float(np.percentile(arr, 99)),
        "n": float(len(arr)),
    }


def machine() -> str:
    import os

    return f"{platform.machine()} Linux, {os.cpu_count()} cores, Python {platform.python_version()}"


def write_section(title: str, body: str, command: str) -> None:
    """Replace (or append) the `## title` section of BENCHMARKS.md."""
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n"
    section = (
        f"## {title}\n\nCommand: `{command}`  \nDate: {date.today().isoformat()}  \n"
        f"Machine: {machine()}\n\n{body.strip()}\n"
    )
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(section + "\n", text)
    else:
        text = text.rstrip() + "\n\n" + section
    BENCHMARKS.write_text(text)
