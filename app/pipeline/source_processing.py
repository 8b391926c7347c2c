"""A bucket source's records through the pipeline: "Process now" on the sources page queues a
background task that takes them a bulk at a time (a 400k-object prefix is hundreds of bulks,
too many for one request), each bulk committed on its own so the page's "To process" count
goes down as it works; the CLI runs the same loop in the foreground."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.clips.bucket_sources import unprocessed_clip_ids, unprocessed_count
from app.clips.models import BucketSource, SyncState
from app.clips.service import MAX_BULK
from app.clips.source_store import get_source
from app.core.db import session_scope
from app.core.errors import Conflict, NotFound
from app.core.jobs import enqueue
from app.pipeline.intake import retry_pipelines

PROCESS_SOURCE_TASK = "cellabel.pipeline.process_source"


@dataclass(frozen=True)
class SourceProcessing:
    """One bulk of a source's records: the clips queued, those left alone (why), and how many
    records still wait (at most `MAX_BULK` are queued at a time)."""

    queued: list[int]
    refused: dict[int, str]
    waiting: int


def process_source(
    session: Session, source_id: int, project_id: int | None = None
) -> SourceProcessing:
    """Queue the pipeline for a bulk of the source's clips it has not taken yet (the records
    its syncs created, read in place from the bucket), as :func:`retry_pipelines` queues any
    clip."""
    source = get_source(session, source_id, project_id)
    ids = unprocessed_clip_ids(session, source.id, MAX_BULK)
    if not ids:
        return SourceProcessing(queued=[], refused={}, waiting=0)
    outcome = retry_pipelines(session, source.project_id, ids)
    waiting = unprocessed_count(session, source.id)
    return SourceProcessing(queued=outcome.done, refused=outcome.refused, waiting=waiting)


def request_processing(session: Session, source_id: int, project_id: int | None = None) -> int:
    """Queue the background processing of every record of the source not processed yet (sent
    through the outbox after commit); how many wait. Refused while the source is listed: its
    records are not all there yet."""
    source = get_source(session, source_id, project_id)
    if source.state in (SyncState.queued, SyncState.syncing):
        raise Conflict(f"{source.url} is being listed: process it once the sync has finished.")
    waiting = unprocessed_count(session, source.id)
    if waiting:
        source.state = SyncState.processing
        enqueue(session, PROCESS_SOURCE_TASK, source.id)
        session.flush()
    return waiting


def run_processing(source_id: int) -> int:
    """Queue the pipeline for all the source's waiting records, a bulk per transaction (each
    bulk's tasks sent after its commit); how many were queued. The body of the task and of the
    CLI's ``--process``; a source deleted meanwhile ends it."""
    queued = 0
    try:
        while True:
            with session_scope() as session:
                done = process_source(session, source_id)
            queued += len(done.queued)
            if not done.queued or not done.waiting:
                break
    except NotFound:
        return queued
    with session_scope() as session:
        source = session.get(BucketSource, source_id)
        if source is not None and source.state == SyncState.processing:  # not re-listed since
            source.state = SyncState.failed if source.error else SyncState.synced
    return queued
