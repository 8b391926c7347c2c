"""The progress of very large batches, cached per process and recounted on a background
thread: the one place in batches that opens a session of its own (a runner, not a service).

Progress of a very large batch reads every clip and assignment of it (about a second at 400k
clips), so each process reuses it; small batches are always live. Older than FRESH, the cached
value is still shown while a background thread recomputes it (no request waits for the
recount); older than STALE_MAX (nobody looked for a while), the request recomputes.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from time import monotonic

from sqlalchemy.orm import Session

from app.batches.progress import BatchProgress, count_progress
from app.batches.service import get_batch
from app.core.db import session_scope, utcnow

log = logging.getLogger(__name__)

PROGRESS_CACHE_CLIPS = 50_000
PROGRESS_FRESH_SECONDS = 15.0
PROGRESS_STALE_MAX_SECONDS = 300.0
_progress_cache: dict[int, tuple[float, BatchProgress]] = {}
_progress_refreshing: set[int] = set()
_progress_lock = threading.Lock()


def batch_progress(session: Session, batch_id: int, now: datetime | None = None) -> BatchProgress:
    """Per batch and per annotator: assignment states, throughput and median time per clip
    (batches of ``PROGRESS_CACHE_CLIPS`` clips or more: up to ``PROGRESS_FRESH_SECONDS`` old,
    or a little older while a recount runs)."""
    batch = get_batch(session, batch_id)
    cached = _progress_cache.get(batch.id)
    if now is None and cached:
        age = monotonic() - cached[0]
        if age < PROGRESS_FRESH_SECONDS:
            return cached[1]
        if age < PROGRESS_STALE_MAX_SECONDS:
            _recount_in_background(batch.id)
            return cached[1]
    progress = count_progress(session, batch, now or utcnow())
    if progress.clips >= PROGRESS_CACHE_CLIPS:
        _progress_cache[batch.id] = (monotonic(), progress)
    return progress


def _recount_in_background(batch_id: int) -> None:
    """Recompute a cached batch's progress on a thread with its own session (one at a time
    per batch and process)."""
    with _progress_lock:
        if batch_id in _progress_refreshing:
            return
        _progress_refreshing.add(batch_id)

    def recount() -> None:
        try:
            with session_scope() as session:
                batch = get_batch(session, batch_id)
                progress = count_progress(session, batch, utcnow())
            _progress_cache[batch_id] = (monotonic(), progress)
        except Exception:  # the stale value stays; the next view tries again
            log.exception("recounting the progress of batch %s failed", batch_id)
        finally:
            with _progress_lock:
                _progress_refreshing.discard(batch_id)

    threading.Thread(target=recount, name=f"batch-progress-{batch_id}", daemon=True).start()
