"""How long "Process now" takes on a bucket source whose sync created many clip records.

A scratch PostgreSQL database gets a source with ``--records`` clip records (as a sync writes
them, no media needed: queueing reads no bucket); then the bulks are taken as the "Process now"
task takes them, each in its own transaction: `source_processing.process_source` (up to 1000
clips: their job rows and each first step's outbox row), the commit, and the sends to Redis after it. Also the
count the sources page shows per source. The Redis database given is emptied at the end.

    .venv/bin/python bench/process_source.py [--records 5000] [--redis redis://127.0.0.1:6379/14]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._report import drop_database, recreate_database, write_section

TITLE = "Process now on a bucket source"
DATABASE = "cellabel_bench_process"


def seed(records: int) -> tuple[int, int]:
    """(project id, source id) of a new project whose source has ``records`` clip records."""
    from app.clips.models import BucketSource
    from app.clips.records import Record, insert_records
    from app.core.db import session_scope
    from app.projects.service import create_project

    with session_scope() as session:
        project = create_project(session, "bench-process")
        source = BucketSource(project_id=project.id, url="s3://bench-bucket/clips/",
                              endpoint_url="", region="", access_key_id="",
                              secret_encrypted="")  # fmt: skip
        session.add(source)
        session.flush()
        rows: list[Record] = [
            (f"c{n}.mp4", f"clips/c{n}.mp4", f"bench-{n:064d}"[-64:], '["i2v"]', "{}", None,
             "{}", 1, source.id)
            for n in range(records)
        ]  # fmt: skip
        insert_records(session, project.id, rows)
        return project.id, source.id


def take_bulk(project_id: int, source_id: int) -> tuple[int, int, float]:
    """One bulk, committed and sent: (clips queued, still waiting, seconds)."""
    from app.core.db import session_scope
    from app.pipeline.source_processing import process_source

    started = time.perf_counter()
    with session_scope() as session:
        done = process_source(session, source_id, project_id)
    return len(done.queued), done.waiting, time.perf_counter() - started


def count_ms(project_id: int, rounds: int = 20) -> float:
    """Median milliseconds of the per-source count the sources page shows."""
    from app.clips.bucket_sources import unprocessed_counts
    from app.core.db import session_scope

    samples = []
    with session_scope() as session:
        for _ in range(rounds):
            started = time.perf_counter()
            unprocessed_counts(session, project_id)
            samples.append((time.perf_counter() - started) * 1000)
    return sorted(samples)[len(samples) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()
    os.environ.update(DATABASE_URL=recreate_database(DATABASE), REDIS_URL=args.redis,
                      SECRET_KEY="bench-process", MEDIA_ROOT=tempfile.mkdtemp())  # fmt: skip
    from app.core.migrate import upgrade_database

    upgrade_database()
    load = os.getloadavg()[0]
    project_id, source_id = seed(args.records)
    before = count_ms(project_id)
    rows, waiting = [], args.records
    while waiting:
        queued, waiting, seconds = take_bulk(project_id, source_id)
        rows.append(f"| {len(rows) + 1} | {queued} | {waiting} | {seconds:.2f} |"
                    f" {queued / seconds:.0f} |")  # fmt: skip
    import redis

    redis.Redis.from_url(args.redis).flushdb()
    from app.core.db import get_engine

    get_engine().dispose()
    drop_database(DATABASE)
    body = "\n".join([
        f"PostgreSQL on the same machine, load average (1 min) {load:.1f} at the start;"
        f" {args.records} clip records of one source, as a sync writes them. \"Process now\" sends"
        " one task, which takes the records a bulk at a time, each"
        " `source_processing.process_source` in its own transaction: up to 1000 clips each get"
        " their job rows (one per step) and their first step's outbox row, then the commit and"
        " the sends to Redis. The sources page's per-source count of clips to process"
        f" (`unprocessed_counts`) took {before:.1f} ms (median of 20) before the first bulk."
        " A bulk queues clip by clip as the clips page's bulk retry does"
        " (`retry_pipelines`: a savepoint and about eight statements per clip), so its time"
        " grows with the clips it queues and with the load: hence 1000 per transaction, in the"
        " background rather than in the request.",
        "", "| bulk | clips queued | still waiting | seconds | clips/s |", "|---:|---:|---:|---:|---:|",
        *rows,
    ])  # fmt: skip
    write_section(TITLE, body, "python bench/process_source.py " + " ".join(sys.argv[1:]))
    print(body)


if __name__ == "__main__":
    main()
