"""What each index and foreign key of ``clip`` costs a bulk record import.

    .venv/bin/python bench/import_costs.py [--rows 300000] [--repeat 2]

The records-only import (app/clips/records.py) COPYs the rows into a temporary table, then
moves them into ``clip`` with one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``. This runs
that import once into an empty ``clip`` (a scratch database, ``cellabel_perf_import``), then
repeats its move from a copy of those rows without each index or foreign key in turn
(dropped, measured, put back), with none but the id and the content-hash key, and with
those alone. Each figure is the PostgreSQL backend's CPU time per row, read from /proc (the
server must run on this machine: on a busy machine wall time says little, CPU time holds),
and the WAL the move wrote (``EXPLAIN (ANALYZE, WAL)``).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DB_NAME = os.environ.get("BENCH_IMPORT_DB", "cellabel_perf_import")
SECTION = "Bulk record import: what each index costs"
KEYS = ("pk_clip", "uq_clip_project_id_content_hash")  # the id and the dedup key: kept
COLUMNS = "filename, storage_key, content_hash, subsets, source_tags, external_id, probe, " \
    "size_bytes, source_id"  # fmt: skip


def backend_cpu(pid: int) -> float:
    """Seconds of CPU the server process ``pid`` has used (user + system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def manifest_rows(count: int) -> Iterator[object]:
    """The rows of bench/labelstudio.py's manifest, as iter_manifest yields them."""
    from app.clips.records import ManifestRow
    from app.clips.service import ClipSpec

    for n in range(count):
        tags, external = {"show": f"show{n % 40}"}, f"ext-{n}"
        yield ManifestRow(f"/data/show{n % 40}/clip{n:07d}.mp4",
                          ClipSpec(subsets=["i2v"], tags=tags, external_id=external))  # fmt: skip


def first_import(count: int) -> tuple[int, str]:
    """The product's import of ``count`` records: its timings, and the project's id."""
    from sqlalchemy import text

    from app.clips.records import import_records
    from app.core.db import session_scope
    from app.projects import service as projects

    with session_scope() as s:
        project = projects.create_project(s, "costs")
        pid = int(s.scalar(text("SELECT pg_backend_pid()")) or 0)
        wall, client, server = time.perf_counter(), time.process_time(), backend_cpu(pid)
        import_records(s, project, manifest_rows(count))  # type: ignore[arg-type]
        s.flush()
        wall, client = time.perf_counter() - wall, time.process_time() - client
        server = backend_cpu(pid) - server
        project_id = project.id
    line = (f"The whole import (COPY, then the move) of {count:,} records into the empty table: "
            f"{wall:.1f} s, {count / wall:,.0f}/s; CPU a row: {client / count * 1e6:.1f} µs in "
            f"Python, {server / count * 1e6:.1f} µs in the server (load {load()}).")  # fmt: skip
    print(line, flush=True)
    return project_id, line


def load() -> float:
    return round(os.getloadavg()[0], 2)


def measure(count: int, project_id: int, repeat: int) -> list[str]:
    """The move again without each index / foreign key: one table row per variant."""
    import psycopg

    from bench._report import scratch_url

    conn = psycopg.connect(scratch_url(DB_NAME).replace("+psycopg", ""), autocommit=True)
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
    conn.execute(f"CREATE TEMP TABLE staged AS SELECT {COLUMNS} FROM clip")
    conn.execute("VACUUM ANALYZE staged")
    insert = (
        f"INSERT INTO clip (project_id, {COLUMNS}, state, has_audio, variable_frame_rate, "
        "held_runs, scores, quality_flags, created_at, updated_at) "
        f"SELECT {project_id}, {COLUMNS}, 'uploaded', false, false, '[]', '{{}}', '{{}}', "
        "now(), now() FROM staged ON CONFLICT (project_id, content_hash) DO NOTHING"
    )
    indexes = dict(conn.execute("SELECT indexname, indexdef FROM pg_indexes "
                                "WHERE tablename = 'clip'").fetchall())  # fmt: skip
    fks = dict(conn.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                            "WHERE conrelid = 'clip'::regclass AND contype = 'f'").fetchall())  # fmt: skip
    secondary = [name for name in indexes if name not in KEYS]
    drop_index = {name: (f"DROP INDEX {name}", indexes[name]) for name in secondary}
    drop_fk = {name: (f"ALTER TABLE clip DROP CONSTRAINT {name}",
                      f"ALTER TABLE clip ADD CONSTRAINT {name} {fks[name]}") for name in fks}  # fmt: skip
    variants: list[tuple[str, list[tuple[str, str]]]] = [("every index and foreign key", [])]
    variants += [(f"without {name}", [change]) for name, change in drop_index.items()]
    variants += [(f"without {name}", [change]) for name, change in drop_fk.items()]
    variants.append(("id and content-hash keys + foreign keys", list(drop_index.values())))
    variants.append(("id and content-hash keys alone", [*drop_index.values(), *drop_fk.values()]))
    rows, base = [], 0.0
    for label, changes in variants:
        runs = []
        for _ in range(repeat):
            conn.execute("TRUNCATE clip CASCADE")
            for drop, _ in changes:
                conn.execute(drop)
            cpu, wall = backend_cpu(pid), time.perf_counter()
            plan = "\n".join(r[0] for r in conn.execute(f"EXPLAIN (ANALYZE, WAL) {insert}"))
            runs.append((backend_cpu(pid) - cpu, time.perf_counter() - wall, plan))
            for _, restore in reversed(changes):
                conn.execute(restore)
        cpu, wall, plan = min(runs)  # the least disturbed run: others' work only adds
        found = re.search(r"WAL: records=(\d+).*?bytes=(\d+)", plan)
        records, size = (int(found[1]), int(found[2])) if found else (0, 0)
        per_row = cpu / count * 1e6
        base = base or per_row
        rows.append(f"| {label} | {per_row:.1f} | {per_row - base:+.1f} | {records / count:.1f} "
                    f"| {size / count:,.0f} | {wall:.1f} | {load()} |")  # fmt: skip
        print(rows[-1], flush=True)
    conn.execute("TRUNCATE clip CASCADE")
    conn.execute("DROP INDEX ix_clip_filename_trgm")
    conn.execute(insert)
    cpu, wall = backend_cpu(pid), time.perf_counter()
    conn.execute(indexes["ix_clip_filename_trgm"])
    wall, cpu = time.perf_counter() - wall, backend_cpu(pid) - cpu
    rows.append(f"| building ix_clip_filename_trgm over the {count:,} rows after the move | "
                f"{cpu / count * 1e6:.1f} | | | | {wall:.1f} | {load()} |")  # fmt: skip
    print(rows[-1], flush=True)
    conn.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each variant (least CPU)")
    args = parser.parse_args()
    from bench._report import drop_database, recreate_database, write_section

    os.environ["DATABASE_URL"] = recreate_database(DB_NAME)
    from app.core.migrate import upgrade_database

    upgrade_database(os.environ["DATABASE_URL"])
    project_id, whole = first_import(args.rows)
    rows = measure(args.rows, project_id, args.repeat)
    drop_database(DB_NAME)
    body = f"""{whole}

The move of the same {args.rows:,} rows into the empty table again, with every index and
foreign key of `clip`, then without one (dropped for the run, put back after); each the
least CPU of {args.repeat} runs. On a shared machine a difference under about 3 µs is noise:
the partial source_id index, which these records never enter, moves by as much.

| move step | server CPU µs/row | vs all | WAL records/row | WAL bytes/row | wall s | load |
|---|---:|---:|---:|---:|---:|---|
""" + "\n".join(rows)
    write_section(SECTION, body, ".venv/bin/python bench/import_costs.py")


if __name__ == "__main__":
    main()
