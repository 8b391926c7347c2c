"""The body of the bucket-listing task (and of the CLI's sync): a session of its own,
committed after each COPY chunk so the sources page shows the count growing."""

from __future__ import annotations

from collections.abc import Callable

from app.clips.bucket_sources import SyncResult, sync_failed, sync_source
from app.clips.models import BucketSource, SyncState
from app.core.db import session_scope
from app.core.errors import DomainError


def run_sync(
    source_id: int, progress: Callable[[BucketSource], None] | None = None
) -> SyncResult | None:
    """List the source and create its new clip records; None when it is gone (deleted after
    the task was sent). A failure is recorded on the source and raised again."""
    with session_scope() as session:
        source = session.get(BucketSource, source_id)
        if source is None:
            return None
        source.state, source.error = SyncState.syncing, None
    try:
        with session_scope() as session:

            def committed(source: BucketSource) -> None:
                session.commit()  # the records so far stay, whatever happens to the rest
                if progress is not None:
                    progress(source)

            return sync_source(session, source_id, progress=committed)
    except DomainError as exc:
        with session_scope() as session:
            sync_failed(session, source_id, exc.message)
        raise
