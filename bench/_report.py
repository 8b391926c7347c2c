"""Shared by the benchmark scripts: percentiles and writing one section of BENCHMARKS.md."""

from __future__ import annotations

import os
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


PG_ADMIN = os.environ.get(
    "BENCH_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def scratch_url(name: str) -> str:
    """The URL of a benchmark's own database on the PostgreSQL server."""
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def recreate_database(name: str) -> str:
    """Drop and create a scratch database; returns its URL."""
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return scratch_url(name)


def drop_database(name: str) -> None:
    """Drop a scratch database when a benchmark is done with it."""
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def seeds_of(spec: str) -> list[int]:
    """``"0-59,100-159"`` -> [0, ..., 59, 100, ..., 159]."""
    out: list[int] = []
    for part in spec.split(","):
        first, _, last = part.partition("-")
        out += range(int(first), int(last or first) + 1)
    return out
